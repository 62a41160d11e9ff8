"""``microspider stop``: the embedded Redis of this folder, ended cleanly."""
from .. import embedded
from ..errors import ConfigError


def stop_embedded(force=False, base=None):
    """Stop the embedded Redis under `base` (default: the current folder); returns what happened.

    ConfigError while workers of any spider are alive, unless `force`."""
    url = embedded.current_url(base)
    if not url or not embedded.answers(url):
        return "no embedded Redis is running in %s" % embedded.home(base)
    if not force:
        live = _live_workers(url)
        if live:
            raise ConfigError("%s: stop the runs first (or stop --force)"
                              % ", ".join("%s has %d live workers" % kv for kv in live))
    pid = embedded.pid(base)
    embedded.stop(base)
    return "embedded Redis stopped (pid %s); its data stays in %s" % (pid, embedded.home(base))


def _live_workers(url):
    from ..state import SpiderState, spiders
    from ..state.connection import Redis

    redis = Redis(url, cluster=False)
    found = [(name, SpiderState(redis, name).live_workers()) for name in spiders(redis)]
    return [(name, n) for name, n in found if n]
