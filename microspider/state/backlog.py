"""The backlog of one spider: failed seeds in a sorted set scored by due time.

A score is the epoch second a seed may come back; ``+inf`` parks a seed over
``--max-age`` (it stays, visible, and is never moved by the relay).  Moving due
seeds to the work queue is one Lua call when both live in one db (atomic, so
relays on many machines never move a seed twice); across dbs a script cannot
span them, so the move runs under the relay lock and copies before it deletes
(a crash may duplicate, never lose).
"""
from . import keys
from .chunking import batched, by_index
from .locks import Lock
from .queue import WorkQueue, with_library

CHUNK = 2000

# KEYS: backlog, work. ARGV: now, limit, only_when_empty. Each seed goes to its priority's level.
MOVE_DUE = with_library("""
if ARGV[3] == '1' and queue_length(KEYS[2]) > 0 then return 0 end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(due))
return enqueue_all(KEYS[2], due, false)
""")


class Backlog:
    """Backlog operations of one spider; `redis` holds the work and backlog clients."""

    def __init__(self, redis, name):
        self.client = redis.backlog
        self.key, self.work_key = keys.backlog(name), keys.work(name)
        self.work = WorkQueue(redis.work, name)
        self.lock_key = keys.relaylock(name)
        self._move = self.client.register_script(MOVE_DUE) if redis.backlog is redis.work else None

    def add(self, scored, pipe=None):
        """Add {raw seed: due score}."""
        if scored:
            (pipe or self.client).zadd(self.key, scored)

    def lock(self, wait=30.0):
        """The relay lock: held while parked seeds are rescored or everything is moved."""
        return Lock(self.client, self.lock_key, wait=wait)

    def move_due(self, now, n, only_when_empty=False):
        """Move up to n seeds due by `now` (a score or a Redis bound) to the work queue."""
        flag = "1" if only_when_empty else "0"
        if self._move:
            return self._move(keys=[self.key, self.work_key], args=[now, n, flag])
        if only_when_empty and self.work.length():
            return 0
        with self.lock():
            due = self.client.zrangebyscore(self.key, "-inf", now, start=0, num=n)
            if due:
                self.work.push(due)
                self.client.zrem(self.key, *due)
            return len(due)

    def move(self, raws, out=None):
        """Move these members to the work queue (as `out`, e.g. with a new age); caller holds the lock."""
        if raws:
            self.work.push(out or raws)
            self.client.zrem(self.key, *raws)

    def parked(self, start, n):
        """Up to n parked (+inf) members, from index `start` among the parked."""
        return self.client.zrangebyscore(self.key, "+inf", "+inf", start=start, num=n)

    def rescore(self, scored, only_existing=False):
        """Set new scores; `only_existing` never re-adds a member moved meanwhile."""
        if scored:
            self.client.zadd(self.key, scored, xx=only_existing)

    def head(self, n):
        """The first n members in due order."""
        return self.client.zrange(self.key, 0, n - 1)

    def chunks(self, withscores=False):
        """Every member in due order, CHUNK at a time (by index)."""
        return by_index(lambda a, b: self.client.zrange(self.key, a, b, withscores=withscores), CHUNK)

    def scan(self):
        """(member, score) pairs, CHUNK at a time, stable under concurrent changes (ZSCAN)."""
        return batched(self.client.zscan_iter(self.key, count=CHUNK), CHUNK)

    def remove(self, raws):
        return self.client.zrem(self.key, *raws) if raws else 0

    def counts(self, now):
        """(due, waiting, over_age) members."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcount(self.key, "-inf", now)
        pipe.zcount(self.key, "(%r" % now, "(inf")
        pipe.zcount(self.key, "inf", "inf")
        return tuple(pipe.execute())

    def coming(self):
        """Members that will come back some day (every finite score)."""
        return self.client.zcount(self.key, "-inf", "(inf")

    def size(self):
        return self.client.zcard(self.key)

    def clear(self):
        pipe = self.client.pipeline(transaction=True)
        pipe.zcard(self.key)
        pipe.unlink(self.key)
        return pipe.execute()[0]
