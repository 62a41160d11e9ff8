"""The start seeds of a crawl: pushed once per fresh crawl however many processes start it,
and again every ``--every`` seconds for a periodic one."""
from ..errors import ConfigError
from ..spider import collect
from ..state import SpiderState


def push_start_seeds(redis, spider, now=None):
    """Push the spider's start seeds if the crawl is fresh; returns how many (None: not fresh).

    Under the seeding lock, so `-w N` and several machines seed a crawl once.
    """
    state = SpiderState(redis, spider.name)
    lock = state.seeding_lock()
    if not lock.acquire(wait=0):
        return None  # another process is seeding this crawl
    try:
        if not state.is_fresh():
            return None
        sends = _start_sends(spider)
        state.push_start(sends, now=now)
        return len(sends)
    finally:
        lock.release()


def push_again(redis, spider, every, now):
    """Push the start seeds again if they were last pushed `every` seconds ago or more (or
    never); returns how many (None: not due yet, or another process is pushing them).

    They are taken out of the cache first, so they are fetched again whatever
    their age.  The time of the last push lives in Redis, so a restarted run
    keeps the period, and several machines push once per period.
    """
    state = SpiderState(redis, spider.name)
    last = state.last_start_push()
    if last is not None and now - last < every:
        return None
    lock = state.seeding_lock()
    if not lock.acquire(wait=0):
        return None
    try:
        last = state.last_start_push()
        if last is not None and now - last < every:
            return None
        sends = _start_sends(spider)
        state.push_start(sends, force=True, now=now)
        return len(sends)
    finally:
        lock.release()


def _start_sends(spider):
    try:
        _, sends = collect(spider, spider.start_seeds)
    except Exception as exc:
        raise ConfigError("%s.start_seeds failed: %s: %s"
                          % (type(spider).__name__, type(exc).__name__, exc)) from None
    return sends
