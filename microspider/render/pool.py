"""A bounded set of browser tabs per process, keyed by proxy: several tabs per browser.

At most ``pages`` tabs live at once; a caller waits for a free slot.  A free tab
of a browser with the wanted proxy is reused; else a new tab opens in a browser
with that proxy that has room (fewer than ``tabs`` tabs), else a new browser
starts.  When all slots are taken by tabs of other proxies, an idle one makes
room (and its browser goes with its last tab).  A browser takes no new pages
after ``recycle`` and is killed when its last tab is back; a broken one is
killed at once (its other tabs' callers get errors and retry).

The slot is a threading semaphore: cooperative in a gevent-patched worker,
real in tests and benchmarks that run without patching.
"""
import threading

from ..errors import FetchError


class BrowserPool:
    """Lends tabs: ``acquire(proxy)`` -> Tab (``tab.browser`` is its Browser), ``release(tab)``."""

    def __init__(self, launch, pages, recycle, tabs, **tab_options):
        self.launch = launch          # proxy URL or None -> a new Browser
        self.pages = pages
        self.recycle = recycle
        self.tabs = tabs
        self.tab_options = tab_options   # for Tab: media, verify, visible
        self.slots = threading.BoundedSemaphore(pages)
        self.lock = threading.RLock()   # opening a tab yields; two callers must not race for room
        self.live = []                # browsers, oldest first
        self.idle = []                # free tabs, least recently used first
        self.busy = set()
        self.started = 0              # browsers launched, for the stats and tests
        self.closed = False

    def acquire(self, proxy=None):
        """A tab going through ``proxy``; FetchError if no browser can give one."""
        self.slots.acquire()
        try:
            with self.lock:
                tab = self._take_idle(proxy) or self._open(proxy)
        except BaseException:
            self.slots.release()
            raise
        self.busy.add(tab)
        return tab

    def _take_idle(self, proxy):
        for tab in self.idle:
            if tab.browser.proxy == proxy:
                self.idle.remove(tab)
                return tab
        if self.idle and len(self.idle) + len(self.busy) >= self.pages:
            self._drop(self.idle.pop(0))   # room for a tab with the wanted proxy
        return None

    def _open(self, proxy):
        if self.closed:
            raise FetchError("the browser pool is closed")
        browser = next((b for b in self.live if b.proxy == proxy and self._has_room(b)), None)
        if browser is None:
            self.started += 1
            browser = self.launch(proxy)
            self.live.append(browser)
        try:
            return browser.open_tab(**self.tab_options)
        except FetchError:
            self._kill(browser)
            raise

    def _has_room(self, browser):
        return len(browser.tabs) < self.tabs and browser.pages < self.recycle

    def release(self, tab, broken=False):
        """Give a tab back; a broken browser is killed, a worn-out one once its tabs are back."""
        self.busy.discard(tab)
        browser = tab.browser
        try:
            with self.lock:
                browser.pages += 1
                if broken or self.closed or browser not in self.live:
                    self._kill(browser)
                elif browser.pages >= self.recycle:
                    self._drop(tab)
                else:
                    self.idle.append(tab)
        finally:
            self.slots.release()

    def _drop(self, tab):
        """Close a tab; its browser goes too when that was its last one and no page is due."""
        browser = tab.browser
        browser.close_tab(tab)
        if not browser.tabs:
            self._kill(browser)

    def _kill(self, browser):
        if browser in self.live:
            self.live.remove(browser)
        self.idle = [tab for tab in self.idle if tab.browser is not browser]
        browser.kill()

    def browsers(self):
        return list(self.live)

    def close(self):
        """Kill every browser, busy ones included (their callers get errors and give up)."""
        self.closed = True
        with self.lock:
            for browser in self.browsers():
                self._kill(browser)
