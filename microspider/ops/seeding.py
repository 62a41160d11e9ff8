"""``microspider push``: seeds from the command line or a JSON-lines file into a work queue."""
import json

from ..errors import ConfigError
from ..seed import Seed
from ..state import SpiderState

PUSH_BATCH = 1000


def read_seeds(urls, seed_file=None, priority=None):
    """Validate every URL / JSON line first; ConfigError listing the bad lines.

    `priority` (None: 0) is given to the URLs and to the file's seeds that
    carry no ``priority`` of their own (a line's own, even 0, wins).
    """
    seeds, bad = [], []
    for n, url in enumerate(urls, 1):
        try:
            seeds.append(Seed(url, priority=priority or 0))
        except ValueError as exc:
            bad.append("argument %d: %s" % (n, exc))
    if seed_file is not None:
        for n, line in enumerate(seed_file, 1):
            if not line.strip():
                continue
            try:
                seeds.append(Seed.from_dict(_with_priority(json.loads(line), priority)))
            except (ValueError, TypeError) as exc:
                bad.append("line %d: %s" % (n, exc))
    if bad:
        more = " (and %d more)" % (len(bad) - 3) if len(bad) > 3 else ""
        raise ConfigError("nothing pushed; bad seeds: %s%s" % ("; ".join(bad[:3]), more))
    return seeds


def push_seeds(redis, name, seeds, force=False, recrawl=None, now=None):
    """Push seeds to a work queue through its frontier; returns (pushed, skipped as known).

    A seed the spider already knows (queued, in flight, in the backlog, stored
    as a failure, or done within its recrawl) is skipped and counted as a
    duplicate; with `force` every seed is pushed, so it is fetched again.
    `recrawl` (seconds) overrides the one the spider's last run recorded.
    """
    state = SpiderState(redis, name)
    state.register()
    pushed = skipped = 0
    for start in range(0, len(seeds), PUSH_BATCH):
        queued, known = state.admit(seeds[start:start + PUSH_BATCH], force=force, now=now,
                                    recrawl=recrawl)
        pushed += queued
        skipped += known
    return pushed, skipped


def _with_priority(obj, priority):
    if priority is None or not isinstance(obj, dict) or "priority" in obj:
        return obj
    return dict(obj, priority=priority)
