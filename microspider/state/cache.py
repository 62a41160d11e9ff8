"""The success cache of one spider: which seeds succeeded, and when.

Exact: it holds each succeeded seed's whole 12-byte ``Seed.cache_key``, so a
seed is skipped only if that very fingerprint succeeded.  Small: the keys live
in many small Redis hashes ("buckets") that the server keeps in its compact
encoding (ziplist on Redis 6, listpack on 7), about 17-19 bytes per
fingerprint instead of ~59 in a plain set.

- A bucket is addressed by the fingerprint's leading bits (linear hashing: a
  level L and a split pointer s; buckets below s use L + 1 bits).  Its fields
  are the fingerprints without the leading bytes the address implies; its
  values the success times as 16-bit integers (4 bytes) relative to the
  bucket's own epoch (its field ""): to the minute for about two weeks around
  it, in hours further back (about two years), "ancient" beyond.  A value means
  the earliest minute it may stand for, so a success is never taken for younger
  than it is.  A bucket written past its fine window moves its epoch forward and
  re-encodes its few hundred values.
- The bucket count grows with the cache: whenever the mean fill passes
  ``FILL`` of the server's compact-encoding entry limit (``CONFIG GET
  hash-max-*-entries``, read once), the bucket under the pointer splits in two.
  A bucket that fills up anyway (a skewed set of URLs) splits at once and is
  marked, so no bucket ever leaves the compact encoding.
- Every operation is one Lua script (``lua/cache.lua``) on keys of the
  spider's hash tag: a check never sees a half-split bucket, and a batch of
  checks is one round trip.
- The 0.1 cache (a set at ``microspider:{NAME}:cache``) is read as long as it
  exists, its members counting as fresh, and ``adopt_legacy`` moves it into
  the buckets in chunks (``run`` does so as it starts).

With ``recrawl``, a seed counts as cached while its success (as stored) is at
most ``recrawl`` seconds old: never kept past its time; it may come back up to
a minute early (an hour for successes older than about a week, when their
bucket has moved on).  A ``recrawl`` shorter than that minute (``RESOLUTION``)
is refused (ValueError; the CLI says so and exits 2): it would bring seeds back
at any age, even at once.
"""
import math
import random
import time
from pathlib import Path

from . import keys

CHUNK = 1000
RESOLUTION = 60        # seconds: success times are kept to the minute, the shortest recrawl
FILL = 0.35            # mean entries per bucket, as a share of the server's limit
DEFAULT_ENTRIES = 128  # compact-encoding limit assumed when CONFIG is not allowed
SAMPLE = 64            # buckets sampled to estimate how many cached seeds are due again
EXACT_BELOW = 20000    # ... or all of them, below this many fingerprints
MAX_DEPTH = 48
FINE, ANCIENT = 16384, -32768   # as in lua/cache.lua

_SCRIPT = (Path(__file__).parent / "lua" / "cache.lua").read_text(encoding="utf-8")


def minute(now):
    return int(now // RESOLUTION)


class Cache:
    """The success cache of spider `name`, by ``Seed.cache_key`` (12 bytes)."""

    def __init__(self, client, name):
        self.client = client
        self.name = name
        self.keys = [keys.cache_meta(name), keys.cache_splits(name), keys.cache(name)]
        self.prefix = keys.cache_bucket(name, "")
        self._script = client.register_script(_SCRIPT)
        self._limit = None

    def _run(self, op, args, pipe=None):
        args = [op, self.prefix] + list(args)
        if pipe is not None:  # EVAL, not the Script: that costs a SCRIPT EXISTS round trip per batch
            return pipe.eval(_SCRIPT, len(self.keys), *self.keys, *args)
        return self._script(keys=self.keys, args=args)

    # -- checks -----------------------------------------------------------------------
    def contains(self, cache_keys, recrawl=None, now=None):
        """Which of these keys are cached (list of bools), in one round trip.

        With `recrawl` (seconds), a key whose success is older than that counts
        as not cached.
        """
        if not cache_keys:
            return []
        since = "" if recrawl is None else _since(recrawl, now)
        return [bool(x) for x in self._run("contains", [since] + list(cache_keys))]

    def size(self):
        """How many fingerprints are cached (buckets and a 0.1 set), one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.keys[0], "n")
        pipe.scard(self.keys[2])
        n, legacy = pipe.execute()
        return int(n or 0) + legacy

    def due(self, recrawl, now=None, rng=random):
        """(cached seeds whose success is older than `recrawl`, exact?): exact below
        EXACT_BELOW fingerprints, else estimated from SAMPLE buckets (0.1 entries count
        as fresh)."""
        since = _since(recrawl, now)
        n = int(self.client.hget(self.keys[0], "n") or 0)
        if n < EXACT_BELOW:
            return sum(1 for _, t in self.entries() if t is not None and minute(t) < since), True
        spots = [rng.getrandbits(MAX_DEPTH) for _ in range(SAMPLE)]
        total, old = self._run("due", [since] + spots)
        return (round(n * old / total) if total else 0), False

    # -- writes -----------------------------------------------------------------------
    def add(self, cache_keys, pipe=None, now=None):
        """Record these keys as succeeded at `now` (into `pipe` if given: one script call)."""
        if cache_keys:
            at = minute(time.time() if now is None else now)
            self._add([(k, at) for k in cache_keys], pipe)

    def _add(self, pairs, pipe=None):
        limit = self.entry_limit()
        args = [limit, max(1, int(limit * FILL))]
        for k, at in pairs:
            args += [k, at]
        return self._run("add", args, pipe)

    def remove(self, cache_keys):
        """Forget these seeds' success, so they are fetched again when met."""
        if cache_keys:
            return self._run("remove", cache_keys)
        return 0

    def adopt_legacy(self, now=None, chunk=CHUNK):
        """Move one chunk of the 0.1 set into the buckets; returns how many moved (0: done)."""
        members = self.client.srandmember(self.keys[2], chunk)
        if not members:
            return 0
        limit = self.entry_limit()
        at = minute(time.time() if now is None else now)
        return self._run("adopt", [limit, max(1, int(limit * FILL)), at] + members)

    def has_legacy(self):
        return bool(self.client.exists(self.keys[2]))

    def entry_limit(self):
        """The server's compact-encoding entry limit for hashes (read once)."""
        if self._limit is None:
            import redis

            try:
                found = self.client.config_get("hash-max-*-entries")
            except redis.ResponseError:  # CONFIG renamed or refused (managed Redis)
                found = {}
            value = found.get("hash-max-listpack-entries", found.get("hash-max-ziplist-entries"))
            self._limit = int(value) if value is not None else DEFAULT_ENTRIES
        return self._limit

    # -- migrate and clear ------------------------------------------------------------
    def entries(self):
        """(key, success time, epoch s) one at a time: the earliest second its value may mean,
        0 for a success older than the values reach (about two years), None for a 0.1 entry."""
        names = []
        for name in self.client.scan_iter(match=self.prefix + "[0-9a-f]*", count=CHUNK):
            names.append(name)
            if len(names) >= 100:
                yield from self._bucket_entries(names)
                names = []
        yield from self._bucket_entries(names)
        for member in self.client.sscan_iter(self.keys[2], count=CHUNK):
            yield member, None

    def _bucket_entries(self, names):
        if not names:
            return
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(name)
        for name, fields in zip(names, pipe.execute()):
            node = int(name[len(self.prefix):], 16)
            depth = node.bit_length() - 1
            whole = depth // 8
            head = ((node - (1 << depth)) >> (depth - 8 * whole)).to_bytes(whole, "big") if whole else b""
            epoch = int(fields.pop(b"", 0))
            for tail, value in fields.items():
                found = decode(int(value))
                yield head + tail, 0 if found is None else (epoch + found) * 60

    def chunks(self):
        """Lists of (key, success time or None), CHUNK at a time, for migrate."""
        batch = []
        for entry in self.entries():
            batch.append(entry)
            if len(batch) >= CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch

    def load(self, entries, now=None):
        """Add (key, success time or None = now) entries (migrate)."""
        at = minute(time.time() if now is None else now)
        pairs = [(k, at if t is None else minute(t)) for k, t in entries]
        for start in range(0, len(pairs), CHUNK):
            self._add(pairs[start:start + CHUNK])

    def clear(self):
        """Forget every success; returns how many were cached."""
        n = self.size()
        found = list(self.keys)
        for name in self.client.scan_iter(match=self.prefix + "[0-9a-f]*", count=CHUNK):
            found.append(name)
            if len(found) >= CHUNK:
                self.client.unlink(*found)
                found = []
        if found:
            self.client.unlink(*found)
        return n


def decode(value):
    """A bucket value -> the earliest minute it may mean, from the bucket's epoch (None: ancient).

    The inverse of lua/cache.lua's encode: to the minute within FINE minutes,
    in hours further back, ANCIENT past that.
    """
    if value >= -FINE:
        return value
    if value <= ANCIENT:
        return None
    return -FINE - (-FINE - value) * 60


def _since(recrawl, now):
    """The first success minute that is still fresh under `recrawl` seconds (at least RESOLUTION)."""
    check_recrawl(recrawl)
    return math.ceil(((time.time() if now is None else now) - recrawl) / RESOLUTION)


def check_recrawl(recrawl):
    """ValueError for a `recrawl` (seconds) the cache cannot honour: one shorter than its resolution."""
    if recrawl < RESOLUTION:
        raise ValueError("must be at least 1m: the cache keeps success times to the minute, so a "
                         "shorter recrawl would fetch seeds again at any age")
