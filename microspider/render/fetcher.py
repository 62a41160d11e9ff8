"""The render fetcher: Fetcher's retries, proxies, bans and rate limits, with a browser tab per attempt.

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
heartbeat keep running.  No gevent import here either.
"""
import functools
import threading
import time

from ..errors import FetchError
from ..crawl.fetcher import Fetcher
from .browser import Browser, find_browser, find_driver
from .cdp import BrowserGone
from .pool import BrowserPool
from .tabs import render_page


class RenderFetcher(Fetcher):
    """Fetches seeds by rendering them in headless Chromium; same interface as Fetcher."""

    def __init__(self, spider, settings, proxies=None, limiter=None, host_limiter=None,
                 sleep=time.sleep, launch=None):
        super().__init__(spider, settings, proxies=proxies, limiter=limiter,
                         host_limiter=host_limiter, sleep=sleep)
        if launch is None:
            browser = find_browser(settings.browser)
            launch = functools.partial(Browser, browser, find_driver(browser),
                                       timeout=settings.timeout)
        self.pool = BrowserPool(launch, settings.render_pages, settings.render_recycle,
                                settings.render_tabs, verify=bool(spider.verify),
                                media=bool(getattr(spider, "render_media", False)))
        self.turns = threading.BoundedSemaphore(settings.render_pages)
        self.page_timeout = settings.timeout
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
        if seed.method != "GET" or seed.data:
            raise FetchError("%s: only GET seeds without a body can be rendered" % seed.url)
        tab = self.pool.acquire(proxy.url if proxy else None)
        broken = True
        try:
            response = self._render(tab, seed)
            broken = False
            return response
        except BrowserGone as exc:
            raise FetchError("browser: %s" % exc) from None
        except FetchError:
            broken = False   # the page failed (refused, DNS...), the browser is fine
            raise
        finally:
            self.pool.release(tab, broken)

    def _render(self, tab, seed):
        shot = self.want_screenshot or bool(seed.meta.get("screenshot"))
        return render_page(tab, seed.request_url(), self._headers(seed), seed.cookies, self.wait,
                           self.page_timeout, screenshot=shot, xhr=self.want_xhr)

    def _headers(self, seed):
        """The headers the seed is sent with: the spider's, the seed's, a User-Agent."""
        headers = dict(self.spider.headers or {}, **(seed.headers or {}))
        agent = headers.pop("User-Agent", None) or (next(self._agents) if self._agents else None)
        return dict(headers, **({"User-Agent": agent} if agent else {}))

    def close(self):
        self.pool.close()
        super().close()
