"""Work queue, in-flight records, backlog, cache, quarantine and counters of one spider.

Delivery is at-least-once: ``take`` moves seeds from the head of the work list
into the worker's own in-flight list in one Lua call; an ``Outcome`` batch
(cached, backlogged, stored, quarantined) is written in one pipeline that ends
by removing the seeds from in-flight.  A worker that dies leaves its in-flight
list behind, and ``reclaim_dead`` puts it back at the head of the work queue
once the worker's heartbeat has expired.
"""
import math
import time

from . import keys

RELAY_DELAY_CAP = 300.0
HEARTBEAT_TTL = 15.0

# KEYS: work, inflight. ARGV: n. Returns the seeds taken (oldest first).
TAKE = """
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {} end
for i = 1, #items, 2000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 1999, #items)))
end
return items
"""

# KEYS: inflight, work. Puts the in-flight seeds back at the head of work, in order.
REQUEUE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #items, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
redis.call('DEL', KEYS[1])
return #items
"""

# KEYS: inflight, work. ARGV: the seeds the worker holds. Requeues any other in-flight seed
# (taken by a call whose reply was lost).
REQUEUE_UNHELD = """
local held = {}
for i = 1, #ARGV do held[ARGV[i]] = (held[ARGV[i]] or 0) + 1 end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local moved = 0
for i = #items, 1, -1 do
  local raw = items[i]
  if (held[raw] or 0) > 0 then
    held[raw] = held[raw] - 1
  else
    redis.call('LREM', KEYS[1], 1, raw)
    redis.call('LPUSH', KEYS[2], raw)
    moved = moved + 1
  end
end
return moved
"""

# KEYS: workers, work. ARGV: now, inflight key prefix. Requeues the seeds of expired workers.
RECLAIM = """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local moved = 0
for _, w in ipairs(dead) do
  local k = ARGV[2] .. w
  local items = redis.call('LRANGE', k, 0, -1)
  for i = #items, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
  moved = moved + #items
  redis.call('DEL', k)
  redis.call('ZREM', KEYS[1], w)
end
return moved
"""


def retry_delay(age, base):
    """Seconds before a seed of this age comes back from the backlog."""
    if age <= 0 or base <= 0:
        return 0.0
    return min(base * 2 ** min(age - 1, 30), RELAY_DELAY_CAP)


def backlog_score(age, max_age, base, now):
    """Due time of a backlogged seed; +inf parks it (over max-age)."""
    return math.inf if age > max_age else now + retry_delay(age, base)


class Queues:
    """The Redis side of one spider.  `redis` is a connection.Redis (three roles)."""

    def __init__(self, redis, name):
        self.redis = redis
        self.name = name
        self.work_key = keys.work(name)
        self._take = redis.work.register_script(TAKE)
        self._requeue = redis.work.register_script(REQUEUE)
        self._reclaim = redis.work.register_script(RECLAIM)
        self._requeue_unheld = redis.work.register_script(REQUEUE_UNHELD)

    # -- workers -------------------------------------------------------------
    def register_worker(self, worker, now=None):
        self.heartbeat([worker], now)
        self.redis.work.sadd(keys.SPIDERS, self.name)

    def heartbeat(self, workers, now=None):
        if workers:
            expiry = (now or time.time()) + HEARTBEAT_TTL
            self.redis.work.zadd(keys.workers(self.name), {w: expiry for w in workers})

    def unregister_worker(self, worker):
        self.requeue_inflight(worker)
        self.redis.work.zrem(keys.workers(self.name), worker)

    def live_workers(self, now=None):
        return self.redis.work.zcount(keys.workers(self.name), now or time.time(), "+inf")

    def take(self, worker, n):
        """Move up to n seeds from work into the worker's in-flight list; return them."""
        return self._take(keys=[self.work_key, keys.inflight(self.name, worker)], args=[n])

    def requeue_inflight(self, worker):
        """Put a worker's in-flight seeds back at the head of the work queue."""
        return self._requeue(keys=[keys.inflight(self.name, worker), self.work_key])

    def requeue_unheld(self, worker, held):
        """Requeue this worker's in-flight seeds that it does not hold (lost take replies)."""
        return self._requeue_unheld(keys=[keys.inflight(self.name, worker), self.work_key], args=held)

    def reclaim_dead(self, now=None):
        """Requeue the in-flight seeds of workers whose heartbeat expired; returns how many."""
        prefix = keys.inflight(self.name, "")
        return self._reclaim(keys=[keys.workers(self.name), self.work_key],
                             args=[now or time.time(), prefix])

    def in_flight(self):
        workers = self.redis.work.zrange(keys.workers(self.name), 0, -1)
        if not workers:
            return 0
        pipe = self.redis.work.pipeline(transaction=False)
        for w in workers:
            pipe.llen(keys.inflight(self.name, w.decode()))
        return sum(pipe.execute())

    # -- cache -----------------------------------------------------------------
    def cached(self, cache_keys):
        """Which of these cache keys are cached (list of bools); one round trip."""
        if not cache_keys:
            return []
        return [bool(x) for x in self.redis.cache.smismember(keys.cache(self.name), cache_keys)]

    # -- pushes ----------------------------------------------------------------
    def push(self, seeds, target=None, pipe=None):
        """Append seeds to a work queue (this spider's by default)."""
        raws = [s.to_json() for s in seeds]
        if raws:
            (pipe or self.redis.work).rpush(keys.work(target or self.name), *raws)
        return len(raws)


class Outcome:
    """What a batch of finished seeds changes in Redis, written by ``commit``.

    Collect with the add_* methods, then ``commit(queues, worker)``: the cache,
    backlog, sends, quarantine and counters go first (pipelined per db, one
    MULTI when all roles share a db), the in-flight removal last.
    """

    def __init__(self, name):
        self.name = name
        self.done = []            # raw seeds to remove from in-flight
        self.cache_adds = []
        self.backlog = {}         # raw -> score
        self.sends = {}           # target -> [raw]
        self.quarantine = []
        self.stats = {}
        self.pages = 0
        self.links = []           # downstream spiders to record (first send only)

    def __len__(self):
        return len(self.done)

    def count(self, field, n=1):
        self.stats[field] = self.stats.get(field, 0) + n

    def finish(self, raw):
        self.done.append(raw)

    def cache(self, seed):
        self.cache_adds.append(seed.cache_key)

    def to_backlog(self, seed, score):
        self.backlog[seed.to_json()] = score

    def send(self, target, seed):
        self.sends.setdefault(target, []).append(seed.to_json())

    def link(self, target):
        self.links.append(target)

    def to_quarantine(self, raw):
        self.quarantine.append(raw)

    def commit(self, queues, worker, now=None):
        redis, name = queues.redis, self.name
        now = now or time.time()
        pipes = {}

        def pipe(client):
            key = id(client)
            if key not in pipes:
                pipes[key] = client.pipeline(transaction=redis.single)
            return pipes[key]

        if self.cache_adds:
            pipe(redis.cache).sadd(keys.cache(name), *self.cache_adds)
        if self.backlog:
            pipe(redis.backlog).zadd(keys.backlog(name), self.backlog)
        work = pipe(redis.work)
        for target, raws in self.sends.items():
            work.rpush(keys.work(target), *raws)
        for target in self.links:
            work.sadd(keys.upstream(target), name)
            work.sadd(keys.SPIDERS, target)
        if self.quarantine:
            work.rpush(keys.quarantine(name), *self.quarantine)
        for field, n in self.stats.items():
            work.hincrby(keys.stats(name), field, n)
        if self.pages:
            work.hincrby(keys.pages(name), int(now // 5), self.pages)
        order = [p for k, p in pipes.items() if p is not work] + [work]
        for p in order[:-1]:
            p.execute()
        inflight = keys.inflight(name, worker)
        for raw in self.done:
            work.lrem(inflight, 1, raw)
        work.execute()
