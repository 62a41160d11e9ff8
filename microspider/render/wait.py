"""When a rendered page is ready to read: its load event fired and its requests went quiet.

``Settle`` follows one navigation from the tab's network events and answers
``ready(now)``: the load event has fired and no counted request of the page
has been in flight for ``QUIET`` seconds.  Which requests count:

- every request of the page and its frames (document, scripts, XHR, fetch,
  styles...), from ``Network.requestWillBeSent`` until ``loadingFinished`` or
  ``loadingFailed``;
- not EventSource streams nor WebSockets (WebSockets have no
  ``requestWillBeSent`` at all): they stay open by design;
- a request open longer than ``LONG`` seconds stops counting (long polling, a
  fetch that streams or never ends): the page is then read ``QUIET`` seconds
  after that, well before ``--timeout``, with what the page has written.

The caller caps the whole wait at ``--timeout`` and reads what is there then.
Time is injected (``now``), so the rule is tested without a browser.
"""
QUIET = 0.5           # seconds without a counted request in flight
LONG = 5.0            # seconds after which an open request no longer holds the page
UNCOUNTED = frozenset(["EventSource", "WebSocket"])


class Settle:
    """The in-flight requests and load state of one navigation."""

    def __init__(self, now, quiet=QUIET, long=LONG):
        self.quiet = quiet
        self.long = long
        self.loaded = False
        self.open = {}         # requestId -> when it started
        self.last_end = now    # when the last counted request ended (or the navigation began)

    def started(self, request_id, kind, now):
        """A request began (a redirect keeps its id and its start)."""
        if kind not in UNCOUNTED:
            self.open.setdefault(request_id, now)

    def ended(self, request_id, now):
        if self.open.pop(request_id, None) is not None:
            self.last_end = max(self.last_end, now)

    def busy_until(self, now):
        """When the page last had a counted request in flight (``now`` if it has one)."""
        until = self.last_end
        for began in self.open.values():
            if now - began < self.long:
                return now
            until = max(until, began + self.long)   # stopped counting then
        return until

    def ready(self, now):
        return self.loaded and now - self.busy_until(now) >= self.quiet

    def next_look(self, now):
        """Seconds until ``ready`` may turn true by time alone (events wake the caller sooner)."""
        if not self.loaded:
            return self.quiet
        busy = self.busy_until(now)
        if busy >= now:   # a counted request in flight: look again when it turns long
            oldest = min(began for began in self.open.values() if now - began < self.long)
            return max(0.01, oldest + self.long - now)
        return max(0.01, busy + self.quiet - now)
