"""``microspider stat``: the figures of one spider or of all, as JSON or text, once or watched."""
import time

from ..crawl.status import counts, waiting_on
from ..state import SpiderState, spiders

STAT_KEYS = ("work", "backlog", "backlog_due", "backlog_waiting", "backlog_over_age", "in_flight",
             "quarantined", "cached", "failures", "failures_by_error", "items", "workers",
             "pages_per_s", "sessions", "sessions_retired", "duplicates", "throttled", "cooling",
             "robots_denied", "render_fallbacks")

__all__ = ["STAT_KEYS", "counts", "stat", "stat_all", "cache_due", "format_stat", "waiting_on", "spiders",
           "watch"]


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


def cache_due(redis, name, recrawl, now=None):
    """(cached seeds whose success is older than `recrawl` seconds, exact?) of spider `name`."""
    return SpiderState(redis, name).cache.due(recrawl, now)


def format_stat(name, s, due=None, recrawl=None):
    """The text of ``microspider stat`` for one spider; `due` = cache_due(...) with --recrawl."""
    errors = ", ".join("%s %d" % kv for kv in sorted(s["failures_by_error"].items())) or "none"
    again = ""
    if due is not None:
        again = " (%s%d due again with --recrawl %s%s)" % (
            "" if due[1] else "~", due[0], _duration(recrawl), "" if due[1] else ", estimated")
    text = ("%s\n  work %d | in flight %d | quarantined %d\n"
            "  backlog %d (due %d, waiting %d, over age %d)\n"
            "  cached %d%s | duplicates %d | items %d | failures %d (%s)\n"
            "  workers %d | %.2f pages/s (last minute)" % (
                name, s["work"], s["in_flight"], s["quarantined"], s["backlog"], s["backlog_due"],
                s["backlog_waiting"], s["backlog_over_age"], s["cached"], again, s["duplicates"], s["items"],
                s["failures"], errors, s["workers"], s["pages_per_s"]))
    if s["sessions"] or s["sessions_retired"]:
        text += "\n  sessions %d live, %d retired" % (s["sessions"], s["sessions_retired"])
    if s["throttled"] or s["cooling"] or s["robots_denied"]:
        text += "\n  throttled %d (hosts cooling now %d) | robots.txt denied %d" % (
            s["throttled"], s["cooling"], s["robots_denied"])
    if s["render_fallbacks"]:
        text += "\n  render fallbacks %d (pages rendered again in Chromium)" % s["render_fallbacks"]
    return text


def _duration(seconds):
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return "%d%s" % (seconds // size, unit)
    return "%gs" % seconds


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
