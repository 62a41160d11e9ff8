"""What a spider's crawl looks like now, and when it is finished.

A spider is finished when, cluster-wide, its work queue is empty, nothing is
in flight, no start seeds are being pushed, no backlog seed will come back (per
its relay mode; parked over-age seeds do not count) and every upstream spider
is finished.  A spider that never ran is not finished.
"""
import time

from ..state import SpiderState
from .relay import NEVER

PAGES_WINDOW = 60


def counts(redis, name, now=None):
    """The Redis side of ``stat`` for one spider (plus its counters), a few round trips."""
    now = time.time() if now is None else now
    state = SpiderState(redis, name)
    due, waiting, over_age = state.backlog.counts(now)
    work, quarantined, workers, sessions, pages, counters = state.sizes(now)
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
        "sessions": sessions,
        "sessions_retired": counters.get("sessions_retired", 0),
        "duplicates": counters.get("duplicates", 0),
        "throttled": counters.get("throttled", 0),
        "cooling": state.cooldowns().cooling(now),
        "robots_denied": counters.get("robots_denied", 0),
        "render_fallbacks": counters.get("render_fallbacks", 0),
        "pages_per_s": round(recent / float(PAGES_WINDOW), 2),
        "counters": counters,
    }


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
