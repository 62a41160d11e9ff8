"""A tab of a browser, in a browser context of its own, and one page rendered in it.

Each Tab is a page target in its own browser context (its own cookie jar,
cache and storage, like an incognito window), attached over the browser's one
DevTools socket.  Before each page its cookies are cleared, so no seed sees
another seed's cookies.  Images, fonts and media are failed at request time
(``Fetch.requestPaused`` -> ``BlockedByClient``) unless the spider sets
``render_media = True``: a crawler reads the DOM, not the pixels.

Nor does it paint them: each tab's window is minimized, so its page is hidden
as a background tab is (``document.visibilityState == "hidden"``): scripts,
timers and requests run, layout is computed when a script asks, but no frame
is painted or composited, which was half of Chromium's CPU per page.
``render_visible = True`` keeps the windows shown, for pages that build
their content in ``requestAnimationFrame`` or wait for ``IntersectionObserver``.
A screenshot shows the window for the time of the capture.

The tab follows its own network events (``Network.*``, ``Page.loadEventFired``)
as they arrive: they feed the page's ``Events`` (status, headers, XHR) and its
``Settle`` (when the page is ready to read), so waiting costs no polling.
"""
import base64
import collections
import threading
import time

from ..errors import FetchError
from ..identity import agent_of, from_agent, language_of, of_browser, without_owned
from .cdp import BrowserGone, CommandFailed
from .page import Events, xhr_bodies
from .wait import Settle

BLOCKED_TYPES = ("Image", "Font", "Media")
SIZE = {"width": 1280, "height": 1024}
HTML = "document.documentElement ? document.documentElement.outerHTML : ''"
SELECTOR_POLL = 0.05   # seconds between looks for render_wait's selector


class Tab:
    """One page target in its own browser context; renders one page at a time."""

    def __init__(self, browser, media=False, verify=True, visible=False):
        self.browser = browser
        self.cdp = browser.connect()   # the browser's one socket, or one of its own (engine's choice)
        try:
            self._open(media, verify, visible)
        except BaseException:
            browser.disconnect(self.cdp)
            raise

    def _open(self, media, verify, visible):
        browser = self.browser
        self.context = self.cdp.send("Target.createBrowserContext",
                                     {"disposeOnDetach": True})["browserContextId"]
        self.target = self.cdp.send("Target.createTarget", dict(
            SIZE, url="about:blank", browserContextId=self.context))["targetId"]
        # None: the page is shown (or, in an engine that paints nothing, has no window)
        self.window = None if visible or not browser.windows else self._minimize()
        self.session = self.cdp.send("Target.attachToTarget",
                                     {"targetId": self.target, "flatten": True})["sessionId"]
        self.changed = threading.Condition()
        self.events = self.settle = None
        self.gone = False
        self.identity, self.headers = None, {}
        self.cdp.listen(self.session, self._event)
        self.send("Page.enable")
        self.send("Network.enable")
        if not verify:   # the spider's verify = False: any certificate, as for every fetcher
            self.send("Security.setIgnoreCertificateErrors", {"ignore": True})
        if not media:
            self.send("Fetch.enable", {"patterns": [{"resourceType": kind, "requestStage": "Request"}
                                                    for kind in BLOCKED_TYPES]})

    def send(self, method, params=None, timeout=None):
        return self.cdp.send(method, params, self.session, timeout)

    def _event(self, method, params):
        """Runs in the socket's reader: must not wait for the browser."""
        if method == "Fetch.requestPaused":
            self.cdp.post("Fetch.failRequest", {"requestId": params["requestId"],
                                                "errorReason": "BlockedByClient"}, self.session)
            return
        with self.changed:
            if method is None:
                self.gone = True
            elif self.events is not None:
                self.events.read(method, params)
                self._follow(method, params, time.monotonic())
            self.changed.notify_all()

    def _follow(self, method, params, now):
        if method == "Network.requestWillBeSent":
            self.settle.started(params.get("requestId"), params.get("type"), now)
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            self.settle.ended(params.get("requestId"), now)
        elif method == "Page.loadEventFired":
            self.settle.loaded = True

    # -- one page -------------------------------------------------------------------------
    def prepare(self, url, headers, identity, cookies):
        """A clean cookie jar, then the identity (microspider.identity), the seed's headers and cookies.

        The identity goes in through ``Emulation.setUserAgentOverride`` with its
        client hints, so the User-Agent and ``sec-ch-ua*`` headers, ``navigator.userAgent``,
        ``navigator.platform`` and ``navigator.userAgentData`` all say the same.
        """
        self.send("Network.clearBrowserCookies")
        if identity != self.identity:
            for method, params in self.browser.identity_commands(identity, self.identity):
                self.send(method, params)
            self.identity = identity
        if headers != self.headers:
            self.send("Network.setExtraHTTPHeaders", {"headers": headers})
            self.headers = headers
        for name, value in (cookies or {}).items():
            self.send("Network.setCookie", {"name": name, "value": str(value), "url": url})

    def navigate(self, url, deadline):
        """Start loading ``url``; its events are recorded from here on."""
        with self.changed:
            self.events = Events((), self.target)
            self.settle = Settle(time.monotonic())
        try:
            answer = self.send("Page.navigate", {"url": url},
                               timeout=max(0.1, deadline - time.monotonic()))
        except BrowserGone:
            if self.cdp.gone:
                raise
            self._check_alive()   # a browser that answers is fine: the site is slow
            raise FetchError("%s: no answer within --timeout" % url) from None
        if answer.get("errorText"):   # refused, DNS, certificate...: the browser is fine
            raise FetchError("%s: %s" % (url, answer["errorText"]))

    def _check_alive(self):
        self.cdp.send("Target.getTargets", timeout=min(self.cdp.timeout, 5.0))

    def wait_quiet(self, deadline):
        """Until loaded and quiet (see render.wait), the document failed, or ``deadline``."""
        self._wait(lambda now: self.settle.ready(now), deadline)

    def wait_loaded(self, deadline):
        self._wait(lambda now: self.settle.loaded, deadline)

    def _wait(self, done, deadline):
        with self.changed:
            while True:
                now = time.monotonic()
                if self.gone or self.events.failed or done(now) or now >= deadline:
                    break
                self.changed.wait(min(self.settle.next_look(now), deadline - now))
        if self.gone:
            raise BrowserGone(self.cdp.gone or "the browser went away")

    def wait_selector(self, selector, deadline):
        """After the load event, until ``selector`` matches or ``deadline``."""
        self.wait_loaded(deadline)
        script = "!!document.querySelector(%s)" % _js_string(selector)
        while time.monotonic() < deadline and not self.events.failed:
            if self.evaluate(script):
                return
            time.sleep(SELECTOR_POLL)

    def evaluate(self, expression):
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return answer.get("result", {}).get("value")

    def html(self):
        return self.evaluate(HTML) or ""

    def screenshot(self):
        if self.visible:
            return self._capture()
        self._set_window(self.window, "normal")   # a minimized window paints nothing
        try:
            return self._capture()
        finally:
            self._set_window(self.window, "minimized")

    def _capture(self):
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])

    @property
    def visible(self):
        return self.window is None

    def _minimize(self):
        """The tab's window, minimized; None if the browser has no window control (page shown)."""
        try:
            window = self.cdp.send("Browser.getWindowForTarget", {"targetId": self.target})["windowId"]
            self._set_window(window, "minimized")
        except CommandFailed:
            return None
        return window

    def _set_window(self, window, state):
        self.cdp.send("Browser.setWindowBounds", {"windowId": window,
                                                  "bounds": {"windowState": state}})

    def finish(self):
        """The recorded events of the page just read; the tab stops recording."""
        with self.changed:
            events, self.events, self.settle = self.events, None, None
        return events

    def close(self):
        """Close the target and its context (the browser may already be gone)."""
        self.cdp.listen(self.session, None)
        try:
            for method, params in (("Target.closeTarget", {"targetId": self.target}),
                                   ("Target.disposeBrowserContext", {"browserContextId": self.context})):
                self.cdp.send(method, params, timeout=min(self.cdp.timeout, 5.0))
        except FetchError:
            pass
        finally:
            self.browser.disconnect(self.cdp)


def _js_string(text):
    import json

    return json.dumps(text)


def identity_for(browser, sent):
    """The identity of a page without a session: its User-Agent's, else the browser's own."""
    agent, language = agent_of(sent), language_of(sent)
    return from_agent(agent, language) if agent else of_browser(browser.user_agent, language)


def render_page(tab, url, sent, cookies, wait, timeout, screenshot=False, xhr=False,
                identity=None):
    """``url`` rendered in ``tab``, read as ``wait`` says, within ``timeout``: a RenderedPage.

    ``sent`` are the headers the seed asks for; ``identity`` the one to present (None: the one
    ``sent``'s User-Agent names, else the browser's own without its headless tell);
    ``wait`` is the spider's ``render_wait``: None for the default (loaded and quiet),
    seconds, or a CSS selector.  The browser transport turns the page into the Response.
    """
    deadline = time.monotonic() + timeout
    tab.prepare(url, without_owned(sent), identity or identity_for(tab.browser, sent), cookies)
    tab.navigate(url, deadline)
    settled = True
    if not wait:
        tab.wait_quiet(deadline)
        settled = tab.settle.ready(time.monotonic())   # False: read at the cap, requests in flight
    elif isinstance(wait, (int, float)):
        tab.wait_loaded(deadline)
        time.sleep(max(0.0, min(wait, deadline - time.monotonic())))
    else:
        tab.wait_selector(wait, deadline)
    tab.events.check(url)
    shot = tab.screenshot() if screenshot else None
    html = tab.html()
    events = tab.finish()
    return RenderedPage(events, html, shot, xhr_bodies(tab, events) if xhr else None, settled)


class RenderedPage(collections.namedtuple("RenderedPage", "events html screenshot xhr settled")):
    """What the browser made of a page: its network events, the DOM as HTML, the extras asked for.

    ``settled`` is False when the default wait reached ``--timeout`` with requests still in flight.
    """
    __slots__ = ()
