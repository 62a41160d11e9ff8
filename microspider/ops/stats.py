"""What a spider's crawl looks like now (``stat``), and when it is finished.

A spider is finished when, cluster-wide, its work queue is empty, nothing is
in flight, no start seeds are being pushed, no backlog seed will come back (per
its relay mode; parked over-age seeds do not count) and every upstream spider
is finished.  A spider that never ran is not finished.
"""
import time

from ..crawl.relay import NEVER
from ..state import SpiderState, spiders

PAGES_WINDOW = 60
STAT_KEYS = ("work", "backlog", "backlog_due", "backlog_waiting", "backlog_over_age", "in_flight",
             "quarantined", "cached", "failures", "failures_by_error", "items", "workers",
             "pages_per_s")

__all__ = ["STAT_KEYS", "counts", "stat", "stat_all", "format_stat", "progress_line", "waiting_on",
           "spiders", "watch"]


def counts(redis, name, now=None):
    """The Redis side of ``stat`` for one spider (plus its counters), a few round trips."""
    now = time.time() if now is None else now
    state = SpiderState(redis, name)
    due, waiting, over_age = state.backlog.counts(now)
    work, quarantined, workers, pages, counters = state.sizes(now)
    bucket = int(now // 5)
    recent = sum(v for k, v in pages.items() if bucket - PAGES_WINDOW // 5 <= k < bucket)
    return {
        "work": work,
        "backlog": due + waiting + over_age,
        "backlog_due": due,
        "backlog_waiting": waiting,
        "backlog_over_age": over_age,
        "in_flight": state.in_flight(),
        "quarantined": quarantined,
        "cached": state.cache.size(),
        "workers": workers,
        "pages_per_s": round(recent / float(PAGES_WINDOW), 2),
        "counters": counters,
    }


def stat(redis, store, name, now=None):
    """The ``stat --json`` object of one spider: exactly STAT_KEYS."""
    found = counts(redis, name, now)
    found["failures"] = store.count_failures()
    found["failures_by_error"] = store.failures_by_error()
    found["items"] = store.count_items()
    return {k: found[k] for k in STAT_KEYS}


def stat_all(redis, open_store, now=None):
    """{name: stat} of every spider Redis knows; `open_store(name)` opens its store."""
    out = {}
    for name in spiders(redis):
        store = open_store(name)
        try:
            out[name] = stat(redis, store, name, now)
        finally:
            store.close()
    return out


def format_stat(name, s):
    """The text of ``microspider stat`` for one spider."""
    errors = ", ".join("%s %d" % kv for kv in sorted(s["failures_by_error"].items())) or "none"
    return ("%s\n  work %d | in flight %d | quarantined %d\n"
            "  backlog %d (due %d, waiting %d, over age %d)\n"
            "  cached %d | items %d | failures %d (%s)\n"
            "  workers %d | %.2f pages/s (last minute)" % (
                name, s["work"], s["in_flight"], s["quarantined"], s["backlog"], s["backlog_due"],
                s["backlog_waiting"], s["backlog_over_age"], s["cached"], s["items"], s["failures"],
                errors, s["workers"], s["pages_per_s"]))


def progress_line(name, c, waiting=None):
    """One line of a run's progress, from ``counts``."""
    got = c["counters"].get
    return ("%s: work %d | in flight %d | backlog %d (due %d, waiting %d, over age %d) | ok %d | items %d"
            " | failures %d | %.1f pages/s%s" % (
                name, c["work"], c["in_flight"], c["backlog"], c["backlog_due"], c["backlog_waiting"],
                c["backlog_over_age"], got("ok", 0), got("items", 0), got("parse_failures", 0),
                c["pages_per_s"],
                " | waiting on %s" % waiting if waiting and waiting.startswith("upstream") else ""))


def waiting_on(redis, name, _seen=frozenset()):
    """None if finished, else a short reason such as 'work 12' or 'upstream ctrip_city'."""
    state = SpiderState(redis, name)
    meta, seeding, work, upstream = state.progress()
    if not meta:
        return "%s never ran" % name
    if seeding:
        return "%s start seeds" % name
    if work:
        return "%s work %d" % (name, work)
    flying = state.in_flight()
    if flying:
        return "%s in flight %d" % (name, flying)
    if int(meta.get("relay_mode", 0)) != NEVER:
        coming = state.backlog.coming()
        if coming:
            return "%s backlog %d" % (name, coming)
    seen = _seen | {name}
    for up in upstream:
        if up not in seen:
            reason = waiting_on(redis, up, seen)
            if reason:
                return reason if reason.startswith("upstream ") else "upstream " + reason
    return None


def watch(render, interval, out, tty, count=None, plain=False, sleep=time.sleep, now=time.time):
    """Print ``render()`` every `interval` seconds until Ctrl-C (or `count` times).

    On a terminal the screen is redrawn in place; elsewhere each refresh is
    appended, headed by its time, so a log of it reads top to bottom.  `plain`
    prints the bare text (a JSON line per refresh).  Returns the refreshes.
    """
    n = 0
    try:
        while not count or n < count:
            if n:
                sleep(interval)
            text = render()
            if tty:
                out.write("\033[H\033[2J")
            elif n and not plain:
                out.write("\n")
            if not plain:
                out.write("%s (every %gs, Ctrl-C ends)\n"
                          % (time.strftime("%H:%M:%S", time.localtime(now())), interval))
            out.write(text + "\n")
            out.flush()
            n += 1
    except KeyboardInterrupt:  # the way a watch ends: not an error
        pass
    return n
