"""Every read and write of spider state the dashboard and the alerts make, in one place.

A thin adapter over the state gateway, ``stat``, the store and the failure and
relay operations.  Nothing else under microspider/web/ touches Redis.
"""
import collections
import time

from ..config import BY_NAME
from ..crawl.relay import Relay, relay_once, seed_age
from ..crawl.status import counts, waiting_on
from ..ops import stats
from ..ops.failures import retry
from ..spider import NAME_RE
from ..state import SpiderState, is_known
from ..state import spiders as known_spiders
from ..state.gateway import PAGE_BUCKET as BUCKET

HISTORY = 3600             # seconds of pages/s history the chart shows
BACKLOG_SCAN_CAP = 100000  # backlog members read to count by age on one page view
STATES = ("running", "waiting", "finished", "stopped")


def spiders(redis):
    """Names of every spider Redis knows, sorted."""
    return known_spiders(redis)


def known(redis, name):
    return bool(NAME_RE.match(name)) and is_known(redis, name)


def stat(redis, store, name):
    """The ``stat --json`` object of one spider (exactly STAT_KEYS)."""
    return stats.stat(redis, store, name)


def queue_counts(redis, name, now=None):
    """The Redis side of ``stat`` (work, backlog_due, in_flight, workers, pages_per_s, ...)."""
    return counts(redis, name, now)


def counters(redis, name):
    """The spider's cumulative counters (ok, parse_failures, items, ...)."""
    return SpiderState(redis, name).counters()


def state(redis, name, workers, now=None):
    """(state, reason): state is one of STATES; reason what it waits on, or ''.

    finished: per status.waiting_on; waiting: only its upstream keeps it open;
    running: live workers; stopped: no live worker but unfinished.
    """
    reason = waiting_on(redis, name)
    if reason is None:
        return "finished", ""
    if reason.startswith("upstream "):
        return "waiting", reason[len("upstream "):]
    own = reason[len(name) + 1:] if reason.startswith(name + " ") else reason
    return ("running" if workers else "stopped"), own


def upstreams(redis, names):
    """{spider: sorted names of its upstream spiders}."""
    return {name: SpiderState(redis, name).upstreams() for name in names}


def pages_history(redis, name, now=None, span=HISTORY):
    """Pages done per BUCKET seconds over the last `span` seconds, oldest first (the current,
    unfinished bucket left out)."""
    now = time.time() if now is None else now
    current = int(now // BUCKET)
    first = current - span // BUCKET
    done = SpiderState(redis, name).pages_done()
    return [done.get(b, 0) for b in range(first, current)]


def last_page_at(redis, name):
    """End time of the latest bucket in which a page was done, or None (none in the last hour)."""
    done = [k for k, v in SpiderState(redis, name).pages_done().items() if v > 0]
    return (max(done) + 1) * BUCKET if done else None


def run_settings(redis, name):
    """What the spider's last run recorded: relay_mode, max_age, started (missing ones left out)."""
    meta = SpiderState(redis, name).meta()
    out = {}
    for field, kind in (("relay_mode", int), ("max_age", int), ("started", float)):
        try:
            out[field] = kind(float(meta[field])) if kind is int else kind(meta[field])
        except (KeyError, ValueError):
            pass
    return out


def backlog_by_age(redis, name, cap=BACKLOG_SCAN_CAP):
    """({age: seeds}, {age: parked seeds}, complete): the backlog counted by age.

    Reads at most `cap` members; `complete` is False when it stopped there.
    A malformed member counts under age -1.
    """
    ages, parked, n = collections.Counter(), collections.Counter(), 0
    for chunk in SpiderState(redis, name).backlog.scan():
        for raw, score in chunk:
            age = seed_age(raw)
            age = -1 if age is None else age
            ages[age] += 1
            if score == float("inf"):
                parked[age] += 1
            n += 1
            if n >= cap:
                return dict(ages), dict(parked), False
    return dict(ages), dict(parked), True


def failures(store, limit=50):
    """Up to `limit` stored failure documents, oldest first."""
    return list(store.iter_failures(limit=limit))


def failure(store, fingerprint):
    """One stored failure document by its _id (fingerprint), or None."""
    for doc in store.iter_failures():
        if doc["_id"] == fingerprint:
            return doc
    return None


# -- actions ------------------------------------------------------------------------
def retry_failures(redis, store, name):
    """Send the seeds of every stored failure back to the work queue; (sent, malformed, unbacklogged)."""
    return retry(redis, store, name)


def relay_now(redis, name):
    """Move the backlog to the work queue now, with the max-age the last run used; (moved, stayed)."""
    found = run_settings(redis, name)
    max_age = found.get("max_age", BY_NAME["max_age"].default)
    return relay_once(SpiderState(redis, name), max_age, BY_NAME["relay_delay"].default)


def unpark(redis, name, max_age):
    """Give parked backlog seeds of age <= max_age a due time again; returns how many."""
    relay = Relay(SpiderState(redis, name), max_age=max_age, relay_delay=BY_NAME["relay_delay"].default)
    total = 0
    while True:
        changed = relay.unpark(max_age)
        total += changed
        if not changed:
            return total


# -- alerts -------------------------------------------------------------------------
def alert_once(redis, name, kind, now, quiet=3600):
    """True if no `kind` alert of this spider went out in the last `quiet` seconds (by `now`,
    as every process sees it), and records this one; atomic, so several processes agree."""
    return SpiderState(redis, name).alert_once(kind, now, quiet)
