"""The browser transport: Fetcher's retries, proxies, bans and rate limits, with a browser per attempt.

Only ``_request`` differs from the plain fetcher, so everything around one
fetch (each attempt through another proxy, ``spider.is_banned``, RETRYABLE
statuses, rate limiters, proxy health reports, ``retries`` for the stats) is
the same code.  An attempt borrows a browser bound to the attempt's proxy from
the process's pool, navigates, waits, and reads the page; a browser that
crashed, hung past ``--timeout`` or was interrupted is killed and replaced, and
the attempt counts as a failed fetch.

Browser calls are HTTP requests to chromedriver; in a worker (gevent-patched)
they yield to the event loop while the browser works, so the flusher and the
heartbeat keep running.  No gevent import here either.  Driving Chromium
(launching, the pool, reading its network events) is ``microspider.render``'s;
this module adapts it to the Fetcher interface and builds the Response.
"""
import functools
import threading
import time

import urllib3

from ..errors import FetchError
from ..render.browser import Browser, _first_line, find_browser, find_driver
from ..render.page import Events, xhr_bodies
from ..render.pool import BrowserPool
from .fetcher import Fetcher
from .response import make_response, sent_request

NET_ERROR = "net::ERR_"   # Chromium's name for a page that did not load; the browser is fine
# the body is the serialised DOM, not what the server sent: these would describe the wrong bytes
DROPPED_HEADERS = ("Content-Length", "Content-Encoding", "Transfer-Encoding")


class RenderFetcher(Fetcher):
    """Fetches seeds by rendering them in headless Chromium; same interface as Fetcher."""

    # chromedriver is called over HTTP with urllib3: a hung browser is a urllib3 read timeout
    transport_errors = Fetcher.transport_errors + (urllib3.exceptions.HTTPError,)

    def __init__(self, spider, settings, proxies=None, limiter=None, host_limiter=None,
                 sleep=time.sleep, launch=None, sessions=None):
        from selenium.common.exceptions import WebDriverException

        super().__init__(spider, settings, proxies=proxies, limiter=limiter,
                         host_limiter=host_limiter, sleep=sleep, sessions=sessions)
        if sessions is not None:
            sessions.render_with(self, every_page=True)  # each page's cookies go to its session
        if launch is None:
            browser = find_browser(settings.browser)
            launch = functools.partial(Browser, browser, find_driver(browser),
                                       timeout=settings.timeout)
        self.pool = BrowserPool(launch, settings.render_pages, settings.render_recycle)
        self.turns = threading.BoundedSemaphore(settings.render_pages)
        self.page_timeout = settings.timeout
        self.browser_errors = (WebDriverException,)
        self.wait = getattr(spider, "render_wait", None)
        self.want_xhr = bool(getattr(spider, "render_xhr", False))
        self.want_screenshot = bool(getattr(spider, "render_screenshot", False))

    def fetch(self, seed):
        """Fetcher.fetch, one seed per browser page at a time.

        Waiting here, before the first attempt, keeps the proxy choice and the rate limiters'
        reservations next to the request they are for, however many greenlets wait.
        """
        with self.turns:
            return super().fetch(seed)

    def _request(self, seed, proxy):
        return self._in_browser(seed, proxy, self._render)

    def warm(self, seed, proxy):
        """Render `seed` through `proxy` with no cookie but the seed's own; (Response, browser cookies).

        The cookies are Chromium's after the page (``Network.getAllCookies``: name,
        value, domain with a leading dot for a domain cookie).  A session's first
        page (``session_warmup = "render"``): browsers are shared by proxy, so the
        jar is emptied first and no session's cookies reach another.
        """
        def render(browser, seed):
            browser.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
            response = self._render(browser, seed)
            return response, browser.driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]

        return self._in_browser(seed, proxy, render)   # the browser pool bounds the pages at once

    def _in_browser(self, seed, proxy, render):
        """``render(browser, seed)`` in a browser through `proxy`, replaced if it broke."""
        if seed.method != "GET" or seed.data:
            raise FetchError("%s: only GET seeds without a body can be rendered" % seed.url)
        browser = self.pool.acquire(proxy.url if proxy else None)
        broken = True
        try:
            result = render(browser, seed)
            broken = False
            return result
        except FetchError:
            broken = False   # the page failed (refused, DNS...), the browser is fine
            raise
        except self.browser_errors as exc:
            if NET_ERROR in str(exc):   # chromedriver reports some page errors this way
                broken = False
            raise FetchError("browser: %s" % _first_line(exc)) from None
        finally:
            self.pool.release(browser, broken)

    def _render(self, browser, seed):
        driver = browser.driver
        url = seed.request_url()
        driver.get_log("performance")   # forget what the previous page did after we left it
        headers = self._prepare(browser, seed, url)
        driver.get(url)
        self._wait_rendered(driver)
        shot = None
        if self.want_screenshot or seed.meta.get("screenshot"):
            shot = driver.get_screenshot_as_png()
        html = driver.page_source
        events = Events(driver.get_log("performance"), browser.frame)
        events.check(url)
        xhr = xhr_bodies(driver, events) if self.want_xhr else None
        return rendered_response(events, html, url, headers, screenshot=shot, xhr=xhr)

    def _prepare(self, browser, seed, url):
        """Headers, User-Agent and cookies of the seed, set in the browser before it navigates."""
        headers = dict(self.spider.headers or {}, **(seed.headers or {}))
        agent = headers.pop("User-Agent", None) or (next(self._agents) if self._agents else None)
        if agent and agent != getattr(browser, "agent", None):
            browser.driver.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": agent})
            browser.agent = agent
        if headers != getattr(browser, "headers", {}):
            browser.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})
            browser.headers = headers
        for name, value in (seed.cookies or {}).items():
            browser.driver.execute_cdp_cmd("Network.setCookie",
                                           {"name": name, "value": str(value), "url": url})
        return dict(headers, **({"User-Agent": agent} if agent else {}))

    def _wait_rendered(self, driver):
        """Wait for the spider's ``render_wait``: seconds, or a CSS selector (up to --timeout)."""
        wait = self.wait
        if not wait:
            return
        if isinstance(wait, (int, float)):
            self.sleep(wait)
            return
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(driver, self.page_timeout, poll_frequency=0.05).until(
                expected_conditions.presence_of_element_located((By.CSS_SELECTOR, wait)))
        except TimeoutException:
            pass  # parse (or is_banned) sees the page as it is and decides

    def close(self):
        self.pool.close()
        super().close()


def rendered_response(events, html, request_url, sent_headers, **extras):
    """The Response of a page the browser rendered: its answer's head, the DOM as UTF-8 HTML.

    Status, final URL and headers come from the browser's network events for
    the main document; ``request.headers`` are the headers the browser was
    told to send (`sent_headers`), not the answer's.
    """
    answer = events.response
    headers = answer.get("headers") or {}
    if events.raw and events.raw.get("statusCode") == answer.get("status"):
        headers = events.raw.get("headers") or headers   # has Set-Cookie, which the other hides
    headers = {k: v for k, v in headers.items() if k.title() not in DROPPED_HEADERS}
    set_cookie = next((v for k, v in headers.items() if k.lower() == "set-cookie"), None)
    return make_response(
        answer.get("status"), answer.get("url") or request_url, headers, html.encode("utf-8"),
        sent_request("GET", request_url, sent_headers), reason=answer.get("statusText") or "",
        encoding="utf-8",
        set_cookie=set_cookie.split("\n") if set_cookie else None,  # Chromium joins repeats with newlines
        **extras)
