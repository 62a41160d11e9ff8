"""``microspider clear``: remove parts of a spider's state, or all of it."""
from ..errors import ConfigError
from ..seed import cache_keys_of
from ..state import SpiderState

CLEARABLE = ("cache", "failures", "items", "work", "backlog", "quarantine")


def clear(redis, store, name, parts, everything=False):
    """Remove the named parts of a spider's state; returns {part: how many removed}.

    `everything` also removes in-flight records, heartbeats, counters, settings
    and upstream links (both ways), and forgets the spider; it is refused while
    workers live.
    """
    state = SpiderState(redis, name)
    if everything:
        live = state.live_workers()
        if live:
            raise ConfigError("%s has %d live workers: stop its run before clear --all" % (name, live))
        parts = CLEARABLE
    clearers = {"cache": state.cache.clear, "backlog": lambda: _clear_queue(state, "backlog"),
                "work": lambda: _clear_queue(state, "work"), "quarantine": state.clear_quarantine,
                "failures": lambda: store.clear_failures(), "items": lambda: store.clear_items()}
    removed = {part: clearers[part]() for part in parts}
    if everything:
        removed["other keys"] = state.forget()
    return removed


def _clear_queue(state, queue):
    """Empty the work queue or the backlog; their seeds' URLs leave the frontier (where not done),
    so a later link to them queues them again."""
    for chunk in state.queue_chunks(queue):
        state.cache.unsee(cache_keys_of(chunk))
    return state.clear_work() if queue == "work" else state.backlog.clear()
