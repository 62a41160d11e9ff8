"""What a rendered page's network did: the events the browser transport builds its Response from.

Status, final URL and headers come from the browser's own network events
(the tab's DevTools events: ``Network.responseReceived`` of the
main frame's document); ``microspider.transport.browser`` adds the DOM after
the page loaded and the spider's ``render_wait`` was met.
"""
import json

from ..errors import FetchError

XHR_TYPES = frozenset(["XHR", "Fetch"])


class Events:
    """The network events of one navigation, as the tab's DevTools socket reports them."""

    def __init__(self, entries, frame):
        self.frame = frame
        self.document = None      # requestId of the main frame's document
        self.response = None      # its last response (after redirects)
        self.raw = None           # its raw answer (Set-Cookie included), when Chromium gave it
        self.asked = {}           # the headers Chromium meant to send for it (its last hop's)
        self.wire = {}            # requestId -> headers as sent on the wire (Cookie included)
        self.failed = None        # errorText when the document did not load
        self.xhr = {}             # requestId -> {url, status}, in order
        self.finished = set()
        for entry in entries:
            message = json.loads(entry["message"])["message"]
            self.read(message["method"], message.get("params") or {})

    def read(self, method, params):
        """Take one network event of the page into account."""
        rid = params.get("requestId")
        if method == "Network.requestWillBeSent":
            if params.get("type") == "Document" and params.get("frameId") == self.frame:
                if rid != self.document:
                    self.document, self.response, self.raw, self.failed = rid, None, None, None
                self.asked = (params.get("request") or {}).get("headers") or {}
        elif method == "Network.requestWillBeSentExtraInfo":
            self.wire[rid] = params.get("headers") or {}   # may come before requestWillBeSent
        elif method == "Network.responseReceived":
            if rid == self.document:
                self.response = params["response"]
            elif params.get("type") in XHR_TYPES:
                self.xhr[rid] = {"url": params["response"]["url"],
                                 "status": params["response"]["status"]}
        elif method == "Network.responseReceivedExtraInfo" and rid == self.document:
            self.raw = params   # one per hop of a redirect chain; the last is the final answer
        elif method == "Network.loadingFailed" and rid == self.document:
            self.failed = params.get("errorText") or "loading failed"
        elif method == "Network.loadingFinished":
            self.finished.add(rid)

    @property
    def sent(self):
        """The headers of the document's request: as on the wire when Chromium told, else as meant."""
        return self.wire.get(self.document) or self.asked

    def check(self, url):
        """FetchError unless the navigation to ``url`` got a document answer."""
        if self.failed:
            raise FetchError("%s: %s" % (url, self.failed))
        if self.response is None or not self.response.get("status"):   # Lightpanda: status 0
            raise FetchError("%s: the browser saw no answer for the page" % url)


def xhr_bodies(tab, events):
    """[{url, status, body}] of the XHR/fetch answers the page got; body None if unavailable."""
    out = []
    for rid, record in events.xhr.items():
        body = None
        if rid in events.finished:
            try:
                got = tab.send("Network.getResponseBody", {"requestId": rid})
                body = _body_bytes(got)
            except Exception:  # evicted from the browser's buffer, or the answer had no body
                body = None
        out.append(dict(record, body=body))
    return out


def _body_bytes(got):
    if got.get("base64Encoded"):
        import base64

        return base64.b64decode(got["body"])
    return got["body"].encode("utf-8")
