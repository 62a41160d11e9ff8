"""A page in real headless Chromium for tests, driven over DevTools (no driver process).

The dashboard tests read and click pages the way a user does; this is the few
calls they need, on microspider's own Browser and Tab (``microspider.render``)::

    page = DevtoolsPage()
    page.get(url)
    page.text('[data-key="work"]'); page.click("form button"); page.script("return 1 + 1")
    page.close()
"""
import json
import time

from microspider.render.browser import Browser
from microspider.render.cdp import CommandFailed

CHROMIUM = "/usr/bin/chromium"
LOAD_TIMEOUT = 30.0


class DevtoolsPage:
    """One visible tab of its own Chromium; scripts run in the top page or in one frame."""

    def __init__(self, browser=CHROMIUM):
        self.browser = Browser(browser, timeout=LOAD_TIMEOUT)
        self.tab = self.browser.open_tab(visible=True)
        self.frame = None          # the id of the frame scripts run in (switch_to_frame), or None
        self.frames = {}           # frame id -> DevTools session attached to it

    def get(self, url):
        """Navigate to `url` and wait for its load event."""
        self.frame = None
        deadline = time.monotonic() + LOAD_TIMEOUT
        self.tab.navigate(url, deadline)
        self.tab.wait_loaded(deadline)
        self.tab.finish()

    def script(self, body):
        """The value of a function body (``return ...``) run in the page or the current frame."""
        params = {"expression": "(function () { %s })()" % body, "returnByValue": True,
                  "awaitPromise": True}
        session = self.tab.session
        if self.frame is not None:
            session = self._frame_session()
        answer = self.tab.cdp.send("Runtime.evaluate", params, session)
        if "exceptionDetails" in answer:
            raise AssertionError("script failed: %s" % answer["exceptionDetails"].get("text"))
        return answer.get("result", {}).get("value")

    def count(self, selector):
        """How many elements `selector` matches (0 while the current frame is not loaded yet)."""
        try:
            return self._count(selector)
        except CommandFailed:
            return 0

    def _count(self, selector):
        return self.script("return document.querySelectorAll(%s).length" % json.dumps(selector))

    def text(self, selector):
        """The rendered text of the first element `selector` matches (AssertionError if none)."""
        found = self.script("var e = document.querySelector(%s); return e ? [e.innerText] : null"
                            % json.dumps(selector))
        if found is None:
            raise AssertionError("no element matches %s" % selector)
        return found[0].strip()

    def attribute(self, selector, name):
        return self.script("return document.querySelector(%s).getAttribute(%s)"
                           % (json.dumps(selector), json.dumps(name)))

    def click(self, selector):
        """Click every element `selector` matches, in document order; how many."""
        return self.script("var all = document.querySelectorAll(%s); all.forEach(e => e.click()); "
                           "return all.length" % json.dumps(selector))

    def type(self, selector, text):
        self.script("document.querySelector(%s).value = %s" % (json.dumps(selector), json.dumps(text)))

    @property
    def url(self):
        return self.tab.send("Target.getTargetInfo", {"targetId": self.tab.target})["targetInfo"]["url"]

    def switch_to_frame(self, selector):
        """Run later scripts inside the frame `selector` names (in its own page's world)."""
        found = self.tab.send("Runtime.evaluate", {"expression": "document.querySelector(%s)"
                                                   % json.dumps(selector)})["result"]
        node = self.tab.send("DOM.describeNode", {"objectId": found["objectId"]})["node"]
        self.frame = node["frameId"]

    def _frame_session(self):
        """The DevTools session of the frame: a sandboxed frame runs in a process of its own
        (a target of its own, whose id is the frame's); attached once it exists."""
        if self.frame not in self.frames:
            targets = self.tab.cdp.send("Target.getTargets")["targetInfos"]
            if not any(t["targetId"] == self.frame for t in targets):
                raise CommandFailed("the frame has no target yet")
            self.frames[self.frame] = self.tab.cdp.send(
                "Target.attachToTarget", {"targetId": self.frame, "flatten": True})["sessionId"]
        return self.frames[self.frame]

    def switch_to_page(self):
        self.frame = None

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(self.tab.screenshot())

    def close(self):
        self.browser.kill()
