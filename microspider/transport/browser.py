"""The browser transport: Fetcher's retries, proxies, bans and rate limits, with a browser tab per attempt.

Only ``_request`` differs from the plain fetcher, so everything around one
fetch (each attempt through another proxy, ``spider.is_banned``, RETRYABLE
statuses, rate limiters, proxy health reports, ``retries`` for the stats) is
the same code.  An attempt borrows a tab of a browser bound to the attempt's
proxy from the process's pool and renders the page in it (``tabs.render_page``:
navigate, wait as ``render.wait`` says or as the spider's ``render_wait`` asks,
read); a browser that crashed, hung past ``--timeout`` or was interrupted is
killed and replaced, and the attempt counts as a failed fetch.

Browser calls are DevTools messages on a socket; in a worker (gevent-patched)
they yield to the event loop while the browser works, so the flusher and the
heartbeat keep running.  No gevent import here either.  Driving the engines
(launching Chromium or Lightpanda, the pool, reading their network events) is
``microspider.render``'s; this module adapts them to the Fetcher interface,
falls back from Lightpanda to Chromium, and builds the Response.
"""
import logging
import threading
import time

from ..errors import FetchError
from ..identity import language_of, of_browser
from ..render.cdp import BrowserGone
from ..render.engines import chromium_available, engine_of, launcher, pages_of, tabs_of
from ..render.pool import BrowserPool
from ..render.tabs import render_page
from .fetcher import Fetcher
from .response import make_response, sent_request

log = logging.getLogger("microspider")


class Unsettled(FetchError):
    """The default wait reached --timeout with requests of the page still in flight."""


# the body is the serialised DOM, not what the server sent: these would describe the wrong bytes
DROPPED_HEADERS = ("Content-Length", "Content-Encoding", "Transfer-Encoding")


class RenderFetcher(Fetcher):
    """Fetches seeds by rendering them in a browser (``render_engine``); same interface as Fetcher.

    With Lightpanda, a page it fails on (the engine crashed, hung or dropped the
    connection, the page errored, or the default wait reached ``--timeout`` with
    requests still in flight) is rendered again in Chromium within the same
    attempt, when Chromium is installed and ``render_fallback`` is on; so is a
    page whose ``parse`` raised on Lightpanda's DOM (``rerender``, called by the
    worker).  ``fallbacks`` counts them for the stats (``render_fallbacks``).
    """

    def __init__(self, spider, settings, proxies=None, limiter=None, host_limiter=None,
                 sleep=time.sleep, launch=None, sessions=None):
        super().__init__(spider, settings, proxies=proxies, limiter=limiter,
                         host_limiter=host_limiter, sleep=sleep, sessions=sessions)
        if sessions is not None:
            sessions.render_with(self, every_page=True)  # each page's cookies go to its session
        self.settings = settings
        self.engine = engine_of(settings)
        self.pool = self._pool(self.engine, launch)
        self.turns = threading.BoundedSemaphore(pages_of(settings))
        self.fallback = None   # Chromium's pool when another engine falls back to it (made on first use)
        self.can_fall_back = (self.engine != "chromium" and settings.render_fallback
                              and chromium_available(settings))
        self.rerendering = set()   # fingerprints of seeds rendered again after their parse raised
        self.page_timeout = settings.timeout
        self.wait = getattr(spider, "render_wait", None)
        self.want_xhr = bool(getattr(spider, "render_xhr", False))
        self.want_screenshot = bool(getattr(spider, "render_screenshot", False))
        self._own_identity = None

    def _pool(self, engine, launch=None):
        verify = bool(self.spider.verify)
        media = bool(getattr(self.spider, "render_media", False))
        if launch is None:
            launch = launcher(self.settings, engine, verify=verify, media=media)
        return BrowserPool(launch, pages_of(self.settings, engine), self.settings.render_recycle,
                           tabs_of(self.settings, engine), verify=verify, media=media,
                           visible=bool(getattr(self.spider, "render_visible", False)))

    def fetch(self, seed):
        """Fetcher.fetch, one seed per browser page at a time.

        Waiting here, before the first attempt, keeps the proxy choice and the rate limiters'
        reservations next to the request they are for, however many greenlets wait.
        """
        with self.turns:
            return super().fetch(seed)

    def _request(self, seed, proxy):
        if seed.fingerprint in self.rerendering:
            return self._in_browser(self._chromium(), seed, proxy, self._render)
        if not self.can_fall_back:
            return self._in_browser(self.pool, seed, proxy, self._render)
        try:
            return self._in_browser(self.pool, seed, proxy, self._render_settled)
        except FetchError as exc:
            log.debug("%s: %s failed (%s); rendering it in Chromium", seed.url, self.engine, exc)
        self.fallbacks += 1
        return self._in_browser(self._chromium(), seed, proxy, self._render)

    def rerender(self, seed, response):
        """`seed` rendered again in Chromium after parse raised on `response` (another engine's);
        None when there is no fallback or Chromium failed too."""
        if not self.can_fall_back or getattr(response, "render_engine", None) == "chromium":
            return None
        self.rerendering.add(seed.fingerprint)
        try:
            again = self.fetch(seed)
        except FetchError as exc:
            log.debug("%s: Chromium could not render it again either: %s", seed.url, exc)
            return None
        finally:
            self.rerendering.discard(seed.fingerprint)
        self.fallbacks += 1
        return again

    def _chromium(self):
        if self.fallback is None:
            self.fallback = self._pool("chromium")
        return self.fallback

    def warm(self, seed, proxy, identity=None):
        """Render `seed` through `proxy` with no cookie but the seed's own; (Response, browser cookies).

        `identity` is the session's (microspider.identity): the tab presents it
        exactly, so the fetcher that goes on with the cookies is the same client.

        The cookies are the tab's after the page (``Network.getAllCookies`` in the
        tab's own browser context: name, value, domain with a leading dot for a
        domain cookie).  A session's first page (``session_warmup = "render"``):
        each page starts from an empty jar, so no session's cookies reach another.
        """
        def render(tab, seed):
            response = self._render(tab, seed, identity)
            return response, tab.send("Network.getAllCookies")["cookies"]

        return self._in_browser(self.pool, seed, proxy, render)   # the pool bounds the pages at once

    def _in_browser(self, pool, seed, proxy, render):
        """``render(tab, seed)`` in a tab of `pool` through `proxy`; a broken browser is replaced."""
        if seed.method != "GET" or seed.data:
            raise FetchError("%s: only GET seeds without a body can be rendered" % seed.url)
        tab = pool.acquire(proxy.url if proxy else None)
        broken = True
        try:
            result = render(tab, seed)
            broken = False
            return result
        except BrowserGone as exc:
            raise FetchError("browser: %s" % exc) from None
        except FetchError:
            broken = False   # the page failed (refused, DNS...), the browser is fine
            raise
        finally:
            pool.release(tab, broken)

    def _render(self, tab, seed, identity=None, settled=False):
        shot = self.want_screenshot or bool(seed.meta.get("screenshot"))
        url, sent = seed.request_url(), self._headers(seed)
        page = render_page(tab, url, sent, seed.cookies, self.wait, self.page_timeout,
                           screenshot=shot, xhr=self.want_xhr, identity=identity)
        if settled and not page.settled:
            raise Unsettled("%s: requests still in flight at --timeout" % url)
        return rendered_response(page.events, page.html, url, sent, screenshot=page.screenshot,
                                 xhr=page.xhr, render_engine=tab.browser.name)

    def _render_settled(self, tab, seed):
        """``_render``, failing a page read at the cap with requests in flight (it falls back)."""
        return self._render(tab, seed, settled=True)

    def own_identity(self):
        """The identity of this fetcher's Chromium, without its headless tell (starts one if none)."""
        if self._own_identity is None:
            tab = self.pool.acquire(None)
            try:
                self._own_identity = of_browser(tab.browser.user_agent, language_of(self.spider.headers))
            finally:
                self.pool.release(tab)
        return self._own_identity

    def _headers(self, seed):
        """The headers the seed is sent with: the spider's, the seed's, a User-Agent."""
        headers = dict(self.spider.headers or {}, **(seed.headers or {}))
        agent = headers.pop("User-Agent", None) or (next(self._agents) if self._agents else None)
        return dict(headers, **({"User-Agent": agent} if agent else {}))

    def close(self):
        self.pool.close()
        if self.fallback is not None:
            self.fallback.close()
        super().close()


def rendered_response(events, html, request_url, sent_headers, **extras):
    """The Response of a page the browser rendered: its answer's head, the DOM as UTF-8 HTML.

    Status, final URL and headers come from the browser's network events for
    the main document; ``request.headers`` are the headers the browser sent
    (its own User-Agent and ``sec-ch-ua*`` included), else `sent_headers`.
    """
    answer = events.response
    headers = answer.get("headers") or {}
    if events.raw and events.raw.get("statusCode") == answer.get("status"):
        headers = events.raw.get("headers") or headers   # has Set-Cookie, which the other hides
    headers = {k: v for k, v in headers.items() if k.title() not in DROPPED_HEADERS}
    set_cookie = next((v for k, v in headers.items() if k.lower() == "set-cookie"), None)
    return make_response(
        answer.get("status"), answer.get("url") or request_url, headers, html.encode("utf-8"),
        sent_request("GET", request_url, events.sent or sent_headers), reason=answer.get("statusText") or "",
        encoding="utf-8",
        set_cookie=set_cookie.split("\n") if set_cookie else None,  # Chromium joins repeats with newlines
        **extras)
