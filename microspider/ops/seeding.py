"""Seeds into a crawl: the start seeds of a fresh crawl, and ``microspider push``."""
import json

from ..errors import ConfigError
from ..seed import Seed
from ..spider import collect
from ..state import SpiderState

PUSH_BATCH = 1000


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


def read_seeds(urls, seed_file=None):
    """Validate every URL / JSON line first; ConfigError listing the bad lines."""
    seeds, bad = [], []
    for n, url in enumerate(urls, 1):
        try:
            seeds.append(Seed(url))
        except ValueError as exc:
            bad.append("argument %d: %s" % (n, exc))
    if seed_file is not None:
        for n, line in enumerate(seed_file, 1):
            if not line.strip():
                continue
            try:
                seeds.append(Seed.from_dict(json.loads(line)))
            except (ValueError, TypeError) as exc:
                bad.append("line %d: %s" % (n, exc))
    if bad:
        more = " (and %d more)" % (len(bad) - 3) if len(bad) > 3 else ""
        raise ConfigError("nothing pushed; bad seeds: %s%s" % ("; ".join(bad[:3]), more))
    return seeds


def push_seeds(redis, name, seeds, force=False):
    """Push seeds to a work queue; returns (pushed, skipped as cached).

    Cached seeds are skipped; with `force` they are taken out of the cache and
    pushed, so they are fetched again.
    """
    state = SpiderState(redis, name)
    state.register()
    pushed = skipped = 0
    for start in range(0, len(seeds), PUSH_BATCH):
        batch = seeds[start:start + PUSH_BATCH]
        if force:
            state.cache.remove([s.cache_key for s in batch])
        else:
            flags = state.cache.contains([s.cache_key for s in batch])
            skipped += sum(flags)
            batch = [s for s, hit in zip(batch, flags) if not hit]
        pushed += state.push(batch)
    return pushed, skipped
