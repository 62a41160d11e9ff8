"""A local page that reports what the browser says about itself, and a server that records headers.

``/probe`` (HTML) runs a script that writes, as JSON into ``pre#report``, what
a WAF's script reads: ``navigator.userAgent``, ``webdriver``, ``platform``,
``language``, ``userAgentData`` (brands, platform, mobile) and the
high-entropy values (``fullVersionList``, ``platformVersion``); ``/plain`` is a
page for the plain fetchers.  ``requests`` records each request's path and
headers as the server got them (the browser's and the fetchers' alike).
"""
import threading

from tests.servers import Site

PROBE = """<html><head><title>probe</title></head><body><pre id="report"></pre><script>
(async function () {
  var d = navigator.userAgentData, high = null;
  if (d) { high = await d.getHighEntropyValues(["fullVersionList", "platformVersion"]); }
  document.getElementById('report').textContent = JSON.stringify({
    userAgent: navigator.userAgent, webdriver: navigator.webdriver, platform: navigator.platform,
    language: navigator.language,
    userAgentData: d ? {brands: d.brands, platform: d.platform, mobile: d.mobile} : null,
    high: high});
})();
</script></body></html>"""


class IdentitySite:
    """The probe site on 127.0.0.1; ``requests`` is [(path, {header: value})]."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.http = Site(self._route)

    @property
    def url(self):
        return self.http.url

    def start(self):
        self.http.start()
        return self

    def stop(self):
        self.http.stop()

    def headers_of(self, path):
        """The headers of every request for `path`, in order."""
        with self.lock:
            return [headers for got, headers in self.requests if got == path]

    def _route(self, handler, path, attempt):
        with self.lock:
            self.requests.append((path, dict(handler.headers.items())))
        if path.startswith("/probe"):
            return 200, {"Content-Type": "text/html; charset=utf-8"}, PROBE.encode()
        if path.startswith("/plain"):
            return 200, {"Content-Type": "text/html"}, b"<html><h1>plain</h1></html>"
        return 404, {}, b"not found"
