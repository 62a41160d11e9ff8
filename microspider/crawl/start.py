"""The start seeds of a fresh crawl, pushed once however many processes start it."""
from ..errors import ConfigError
from ..spider import collect
from ..state import SpiderState


def push_start_seeds(redis, spider):
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
        try:
            _, sends = collect(spider, spider.start_seeds)
        except Exception as exc:
            raise ConfigError("%s.start_seeds failed: %s: %s"
                              % (type(spider).__name__, type(exc).__name__, exc)) from None
        state.push_start(sends)
        return len(sends)
    finally:
        lock.release()
