"""What a run shows while it works (a live line on a terminal, log lines otherwise) and its summary."""
import logging
import time

from .status import counts
from ..state import SpiderState

log = logging.getLogger("microspider")
SUMMARY_FIELDS = ("ok", "retried", "backlogged", "parse_failures", "fetch_failures", "cached",
                  "items", "dropped", "quarantined", "store_errors")


def progress_line(name, c, waiting=None):
    """One line of a run's progress, from ``counts``."""
    got = c["counters"].get
    return ("%s: work %d | in flight %d | backlog %d (due %d, waiting %d, over age %d) | ok %d | items %d"
            " | failures %d | %.1f pages/s%s" % (
                name, c["work"], c["in_flight"], c["backlog"], c["backlog_due"], c["backlog_waiting"],
                c["backlog_over_age"], got("ok", 0), got("items", 0), got("parse_failures", 0),
                c["pages_per_s"],
                " | waiting on %s" % waiting if waiting and waiting.startswith("upstream") else ""))


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
