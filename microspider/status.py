"""What a spider's crawl looks like now (``stat``), and when it is finished.

A spider is finished when, cluster-wide, its work queue is empty, nothing is
in flight, no start seeds are being pushed, no backlog seed will come back (per
its relay mode; parked over-age seeds do not count) and every upstream spider
is finished.  A spider that never ran is not finished.
"""
import time

from . import keys
from .queues import Queues
from .relay import NEVER, Relay

PAGES_WINDOW = 60


def counts(redis, name, now=None):
    """The Redis side of ``stat`` for one spider, one pipeline per db."""
    now = time.time() if now is None else now
    due, waiting, over_age = Relay(redis, name).counts(now)
    pipe = redis.work.pipeline(transaction=False)
    pipe.llen(keys.work(name))
    pipe.llen(keys.quarantine(name))
    pipe.zcount(keys.workers(name), now, "+inf")
    pipe.hgetall(keys.pages(name))
    pipe.hgetall(keys.stats(name))
    work, quarantined, workers, pages, stats = pipe.execute()
    bucket = int(now // 5)
    recent = sum(int(v) for k, v in pages.items() if bucket - PAGES_WINDOW // 5 <= int(k) < bucket)
    return {
        "work": work,
        "backlog": due + waiting + over_age,
        "backlog_due": due,
        "backlog_waiting": waiting,
        "backlog_over_age": over_age,
        "in_flight": Queues(redis, name).in_flight(),
        "quarantined": quarantined,
        "cached": redis.cache.scard(keys.cache(name)),
        "workers": workers,
        "pages_per_s": round(recent / float(PAGES_WINDOW), 2),
        "counters": {k.decode(): int(v) for k, v in stats.items()},
    }


def is_finished(redis, name, now=None, _seen=frozenset()):
    """True when the crawl of `name` and all its upstreams is over (see module doc)."""
    return waiting_on(redis, name, now, _seen) is None


def waiting_on(redis, name, now=None, _seen=frozenset()):
    """None if finished, else a short reason such as 'work 12' or 'upstream ctrip_city'."""
    now = time.time() if now is None else now
    pipe = redis.work.pipeline(transaction=False)
    pipe.hgetall(keys.meta(name))
    pipe.exists(keys.seeding(name))
    pipe.llen(keys.work(name))
    pipe.smembers(keys.upstream(name))
    meta, seeding, work, upstream = pipe.execute()
    if not meta:
        return "%s never ran" % name
    if seeding:
        return "%s start seeds" % name
    if work:
        return "%s work %d" % (name, work)
    flying = Queues(redis, name).in_flight()
    if flying:
        return "%s in flight %d" % (name, flying)
    if int(meta.get(b"relay_mode", 0)) != NEVER:
        coming = redis.backlog.zcount(keys.backlog(name), "-inf", "(inf")
        if coming:
            return "%s backlog %d" % (name, coming)
    seen = _seen | {name}
    for up in sorted(u.decode() for u in upstream):
        if up not in seen:
            reason = waiting_on(redis, up, now, seen)
            if reason:
                return reason if reason.startswith("upstream ") else "upstream " + reason
    return None


def spiders(redis):
    """Names of every spider that ever ran or was sent seeds, sorted."""
    return sorted(n.decode() for n in redis.work.smembers(keys.SPIDERS))
