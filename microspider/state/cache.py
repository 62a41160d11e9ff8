"""The success cache of one spider: the fingerprints of seeds that succeeded.

Exact (a member is only ever added after its seed succeeded), checked in one
round trip per batch.  Stored as one Redis set of 12-byte fingerprints.
"""
from . import keys

CHUNK = 1000


class Cache:
    """Cache membership of one spider's seeds, by ``Seed.cache_key``."""

    def __init__(self, client, name):
        self.client = client
        self.key = keys.cache(name)

    def contains(self, cache_keys):
        """Which of these cache keys are cached (list of bools); one round trip."""
        if not cache_keys:
            return []
        return [bool(x) for x in self.client.smismember(self.key, cache_keys)]

    def add(self, cache_keys, pipe=None):
        if cache_keys:
            (pipe or self.client).sadd(self.key, *cache_keys)

    def remove(self, cache_keys):
        """Forget these seeds' success, so they are fetched again when met."""
        if cache_keys:
            self.client.srem(self.key, *cache_keys)

    def size(self):
        return self.client.scard(self.key)

    def chunks(self):
        """Lists of cached keys (bytes), CHUNK at a time, for migrate."""
        batch = []
        for member in self.client.sscan_iter(self.key, count=CHUNK):
            batch.append(member)
            if len(batch) >= CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch

    def load(self, cache_keys):
        self.add(cache_keys)

    def clear(self):
        """Forget every success; returns how many were cached."""
        pipe = self.client.pipeline(transaction=True)
        pipe.scard(self.key)
        pipe.unlink(self.key)
        return pipe.execute()[0]
