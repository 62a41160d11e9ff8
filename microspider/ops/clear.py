"""``microspider clear``: remove parts of a spider's state, or all of it."""
from ..errors import ConfigError
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
    clearers = {"cache": state.cache.clear, "backlog": state.backlog.clear,
                "work": state.clear_work, "quarantine": state.clear_quarantine,
                "failures": lambda: store.clear_failures(), "items": lambda: store.clear_items()}
    removed = {part: clearers[part]() for part in parts}
    if everything:
        removed["other keys"] = state.forget()
    return removed
