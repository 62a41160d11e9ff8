"""What a run shows while it works (a live line on a terminal, log lines otherwise) and its summary."""
import logging
import time

from ..ops.stats import counts, progress_line
from ..state import SpiderState

log = logging.getLogger("microspider")
SUMMARY_FIELDS = ("ok", "retried", "backlogged", "parse_failures", "fetch_failures", "cached",
                  "items", "dropped", "quarantined", "store_errors")


class Progress:
    """Progress of one spider's run, drawn on `out` (a terminal) or logged."""

    def __init__(self, redis, name, out, clock=time.monotonic):
        self.redis, self.name, self.out, self.clock = redis, name, out, clock
        self.tty = out.isatty()
        self.before, self.started = {}, clock()

    def begin(self, counters):
        self.before, self.started = counters, self.clock()

    def show(self, waiting):
        line = progress_line(self.name, counts(self.redis, self.name), waiting)
        if self.tty:
            self.out.write("\r\033[K" + line)
            self.out.flush()
        else:
            log.info(line)

    def summary(self, reason, where):
        """Log what this run did (counter deltas) and return them."""
        if self.tty:
            self.out.write("\n")
        after = SpiderState(self.redis, self.name).counters()
        delta = {k: after.get(k, 0) - self.before.get(k, 0) for k in set(after) | set(self.before)}
        elapsed = max(self.clock() - self.started, 1e-6)
        text = ", ".join("%s %d" % (f.replace("_", " "), delta.get(f, 0)) for f in SUMMARY_FIELDS
                         if delta.get(f, 0) or f in ("ok", "items"))
        log.info("%s %s after %.1fs: %s; %.1f pages/s (Redis %s)", self.name, reason, elapsed,
                 text, delta.get("ok", 0) / elapsed, where)
        return delta
