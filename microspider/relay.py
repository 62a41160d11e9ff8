"""Backlog -> work: the three relay modes, max-age and the retry delay.

The backlog is a sorted set scored by due time; seeds over max-age are parked
at +inf when they enter it, so the relay only moves members scored <= now and
never decodes a seed on the hot path.  Every move is one Lua call (atomic, so
concurrent relays on many machines never move a seed twice).  When the work
queue and the backlog live in different dbs a script cannot span them: the move
then runs under a lock and copies before it deletes (a crash may duplicate, never lose).
"""
import json
import time
import uuid

from . import keys
from .queues import backlog_score

CONTINUOUS, WHEN_EMPTY, NEVER = 0, 1, 2
BATCH = 2000

# KEYS: backlog, work. ARGV: now, limit, only_when_empty.
MOVE_DUE = """
if ARGV[3] == '1' and redis.call('LLEN', KEYS[2]) > 0 then return 0 end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(due))
redis.call('RPUSH', KEYS[2], unpack(due))
return #due
"""


class Relay:
    """Moves due backlog seeds of one spider back to its work queue."""

    def __init__(self, redis, name, mode=CONTINUOUS, max_age=5, relay_delay=1.0):
        self.redis, self.name = redis, name
        self.mode, self.max_age, self.relay_delay = mode, max_age, relay_delay
        self.backlog_key, self.work_key = keys.backlog(name), keys.work(name)
        self._move = redis.work.register_script(MOVE_DUE) if redis.backlog is redis.work else None

    def move_due(self, now=None, limit=None):
        """Move every due seed (per mode); returns how many moved."""
        if self.mode == NEVER:
            return 0
        now = time.time() if now is None else now
        total = 0
        while True:
            moved = self._move_batch(now, BATCH)
            total += moved
            if moved < BATCH or (limit and total >= limit):
                return total

    def _move_batch(self, now, n):
        when_empty = "1" if self.mode == WHEN_EMPTY else "0"
        if self._move:
            return self._move(keys=[self.backlog_key, self.work_key], args=[now, n, when_empty])
        if when_empty == "1" and self.redis.work.llen(self.work_key):
            return 0
        with _Lock(self.redis.backlog, keys.relaylock(self.name)):
            due = self.redis.backlog.zrangebyscore(self.backlog_key, "-inf", now, start=0, num=n)
            if due:
                self.redis.work.rpush(self.work_key, *due)
                self.redis.backlog.zrem(self.backlog_key, *due)
            return len(due)

    def unpark(self, max_age=None, now=None):
        """Give parked seeds whose age is now within max_age a due time; returns how many."""
        max_age = self.max_age if max_age is None else max_age
        now = time.time() if now is None else now
        changed = 0
        start = 0  # members that stay parked are skipped; unparked ones leave the range
        with _Lock(self.redis.backlog, keys.relaylock(self.name)):
            while True:
                raws = self.redis.backlog.zrangebyscore(self.backlog_key, "+inf", "+inf",
                                                        start=start, num=BATCH)
                if not raws:
                    return changed
                updates = {}
                for raw in raws:
                    age = _age(raw)
                    if age is not None and age <= max_age:
                        updates[raw] = backlog_score(age, max_age, self.relay_delay, now)
                if updates:
                    self.redis.backlog.zadd(self.backlog_key, updates)
                    changed += len(updates)
                start += len(raws) - len(updates)

    def move_all(self, reset_age=False):
        """Move every backlog seed, over-age ones included; optionally reset age to 0."""
        moved = 0
        with _Lock(self.redis.backlog, keys.relaylock(self.name)):
            while True:
                raws = self.redis.backlog.zrange(self.backlog_key, 0, BATCH - 1)
                if not raws:
                    return moved
                out = [_with_age(r, 0) for r in raws] if reset_age else raws
                self.redis.work.rpush(self.work_key, *out)
                self.redis.backlog.zrem(self.backlog_key, *raws)
                moved += len(raws)

    def counts(self, now=None):
        """(due, waiting, over_age) members of the backlog."""
        now = time.time() if now is None else now
        pipe = self.redis.backlog.pipeline(transaction=False)
        pipe.zcount(self.backlog_key, "-inf", now)
        pipe.zcount(self.backlog_key, "(%r" % now, "(inf")
        pipe.zcount(self.backlog_key, "inf", "inf")
        return tuple(pipe.execute())


def _age(raw):
    try:
        age = json.loads(raw).get("age", 0)
        return age if isinstance(age, int) else None
    except (ValueError, AttributeError):
        return None


def _with_age(raw, age):
    try:
        obj = json.loads(raw)
        obj["age"] = age
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, TypeError):
        return raw  # malformed: moved as is, the worker quarantines it


class _Lock:
    """A SET NX PX lock with an owner token; released only by its owner."""

    RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

    def __init__(self, client, key, ttl_ms=30000, wait=30.0):
        self.client, self.key, self.ttl_ms, self.wait = client, key, ttl_ms, wait
        self.token = uuid.uuid4().hex

    def __enter__(self):
        deadline = time.monotonic() + self.wait
        while not self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            if time.monotonic() > deadline:
                raise TimeoutError("the relay lock %s is held elsewhere" % self.key)
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.client.eval(self.RELEASE, 1, self.key, self.token)
