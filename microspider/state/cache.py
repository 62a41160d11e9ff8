"""The frontier of one spider: every seed it ever queued, and which succeeded when.

One entry per fingerprint, one state per entry: the success time (done, the
"cache"), or SEEN: queued, in flight, in the backlog or stored as a failure.
Every seed a spider yields, sends or is pushed is *admitted* by one Lua call
that reads the state and queues only the seeds it does not know (``admit``); a
success turns SEEN into its time (``add``).  So a URL linked from a thousand
pages is queued once, and a broken link once.

Exact: it holds each seed's whole 12-byte ``Seed.cache_key``, so a seed is
skipped only if that very fingerprint was queued or succeeded.  Small: the keys live
in many small Redis hashes ("buckets") that the server keeps in its compact
encoding (ziplist on Redis 6, listpack on 7), about 17-19 bytes per
fingerprint instead of ~59 in a plain set.

- A bucket is addressed by the fingerprint's leading bits (linear hashing: a
  level L and a split pointer s; buckets below s use L + 1 bits).  Its fields
  are the fingerprints without the leading bytes the address implies; its
  values the success times as 16-bit integers (4 bytes) relative to the
  bucket's own epoch (its field ""): to the minute for about two weeks around
  it, in hours further back (about two years), "ancient" beyond; or "q" for
  SEEN (3 bytes in the compact encoding, less than a time).  A value means
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
from .queue import with_library

CHUNK = 1000
RESOLUTION = 60        # seconds: success times are kept to the minute, the shortest recrawl
FILL = 0.35            # mean entries per bucket, as a share of the server's limit
DEFAULT_ENTRIES = 128  # compact-encoding limit assumed when CONFIG is not allowed
SEEN = b"q"            # the state of a fingerprint queued and not done (as in lua/cache.lua)
SAMPLE = 64            # buckets sampled to estimate how many cached seeds are due again
EXACT_BELOW = 20000    # ... or all of them, below this many fingerprints
MAX_DEPTH = 48
FINE, ANCIENT = 16384, -32768   # as in lua/cache.lua

# admit queues the seeds it lets through with the work queue's library (one list per priority)
_SCRIPT = with_library((Path(__file__).parent / "lua" / "cache.lua").read_text(encoding="utf-8"))


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
        """How many fingerprints are cached (done: buckets and a 0.1 set), one round trip."""
        n, seen, legacy = self._counts()
        return n - seen + legacy

    def known(self):
        """How many fingerprints the frontier holds, done or not."""
        n, _, legacy = self._counts()
        return n + legacy

    def _counts(self):
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys[0], "n", "seen")
        pipe.scard(self.keys[2])
        (n, seen), legacy = pipe.execute()
        return int(n or 0), int(seen or 0), legacy

    def due(self, recrawl, now=None, rng=random):
        """(cached seeds whose success is older than `recrawl`, exact?): exact below
        EXACT_BELOW fingerprints, else estimated from SAMPLE buckets (0.1 entries count
        as fresh)."""
        since = _since(recrawl, now)
        n, seen, _ = self._counts()
        n -= seen
        if n < EXACT_BELOW:
            return sum(1 for _, t in self.entries() if t is not None and minute(t) < since), True
        spots = [rng.getrandbits(MAX_DEPTH) for _ in range(SAMPLE)]
        total, old = self._run("due", [since] + spots)
        return (round(n * old / total) if total else 0), False

    # -- admission --------------------------------------------------------------------
    def admit(self, pairs, work_key, stats_key, force=False, now=None, pipe=None, work_db=None,
              recrawl=None):
        """Queue the seeds of (cache key, raw) `pairs` that the frontier does not know yet.

        One script: the seeds whose fingerprint is new (or done longer ago than
        the spider's recrawl, or any with `force`) become SEEN and are appended
        to `work_key`; the others are counted as ``duplicates`` in `stats_key`.
        Returns [queued, duplicates], or queues the call into `pipe` (a pipeline
        or ConfirmedWrites).  `work_db`: the work queue's db when it is not this
        cache's (one server, ``-o`` and ``-c`` apart); `recrawl` (seconds)
        overrides the one the spider's run recorded.
        """
        limit = self.entry_limit()
        args = [limit, max(1, int(limit * FILL)), repr(float(time.time() if now is None else now)),
                work_key, stats_key, "1" if force else "0", "" if work_db is None else work_db,
                "" if recrawl is None else int(recrawl)]
        for k, raw in pairs:
            args += [k, raw]
        return self._run("admit", args, pipe)

    def see(self, cache_keys):
        """Mark these fingerprints SEEN where the frontier knows nothing of them (seeds queued
        by hand, as ``migrate`` does)."""
        if cache_keys:
            limit = self.entry_limit()
            self._run("see", [limit, max(1, int(limit * FILL))] + list(cache_keys))

    def unsee(self, cache_keys):
        """Forget these fingerprints where they are SEEN (their seeds were cleared from the queues)."""
        return self._run("unsee", cache_keys) if cache_keys else 0

    def record_settings(self, recrawl=None, no_cache=False):
        """Tell admissions (by any sender) this spider's recrawl (seconds) and --no-cache."""
        pipe = self.client.pipeline(transaction=False)
        if recrawl is None:
            pipe.hdel(self.keys[0], "recrawl")
        else:
            pipe.hset(self.keys[0], "recrawl", int(recrawl))
        pipe.hset(self.keys[0], "nocache", 1 if no_cache else 0)
        pipe.execute()

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

    def remove(self, cache_keys, pipe=None):
        """Forget these seeds (done or not), so they are queued and fetched again when met."""
        if cache_keys:
            return self._run("remove", cache_keys, pipe)
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
        """(key, success time, epoch s) of every done seed, one at a time: the earliest second its value may mean,
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
                if value == SEEN:
                    continue
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
        """Forget every seed, done or not (the whole frontier); returns how many were cached."""
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
