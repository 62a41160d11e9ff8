"""A bounded set of browsers per process, one page each, keyed by proxy.

At most ``pages`` browsers live at once; a caller waits for a free slot.  A
free browser with the wanted proxy is reused; otherwise an idle browser with
another proxy makes room and a new one starts.  A browser is replaced after
``recycle`` pages, and at once when its caller says it broke.

The slot is a threading semaphore: cooperative in a gevent-patched worker,
real in tests and benchmarks that run without patching.
"""
import threading

from ..errors import FetchError


class BrowserPool:
    """Lends browsers: ``acquire(proxy)`` -> Browser, ``release(browser, broken)``."""

    def __init__(self, launch, pages=2, recycle=200):
        self.launch = launch          # proxy URL or None -> a new Browser
        self.pages = pages
        self.recycle = recycle
        self.slots = threading.BoundedSemaphore(pages)
        self.idle = []                # free browsers, least recently used first
        self.busy = set()
        self.started = 0              # browsers launched, for the stats and tests
        self.closed = False

    def acquire(self, proxy=None):
        """A browser going through ``proxy``; FetchError if one cannot be started."""
        self.slots.acquire()
        try:
            browser = self._take_idle(proxy) or self._start(proxy)
        except BaseException:
            self.slots.release()
            raise
        self.busy.add(browser)
        return browser

    def _take_idle(self, proxy):
        for browser in self.idle:
            if browser.proxy == proxy:
                self.idle.remove(browser)
                return browser
        if self.idle and len(self.idle) + len(self.busy) >= self.pages:
            self.idle.pop(0).kill()   # room for a browser with the wanted proxy
        return None

    def _start(self, proxy):
        if self.closed:
            raise FetchError("the browser pool is closed")
        self.started += 1
        return self.launch(proxy)

    def release(self, browser, broken=False):
        """Give a browser back; a broken or worn-out one is killed (the slot frees either way)."""
        self.busy.discard(browser)
        try:
            browser.pages += 1
            if broken or self.closed or browser.pages >= self.recycle:
                browser.kill()
            else:
                self.idle.append(browser)
        finally:
            self.slots.release()

    def browsers(self):
        return list(self.idle) + list(self.busy)

    def close(self):
        """Kill every browser, busy ones included (their callers get errors and give up)."""
        self.closed = True
        for browser in self.browsers():
            browser.kill()
        self.idle = []
