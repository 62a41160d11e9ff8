"""The work queue of one spider: one Redis list per priority level, moved only by Lua.

A seed's ``priority`` (``Seed(..., priority=N)``, default 0) picks its list:
level 0 is the work list of old (``microspider:{NAME}:work``, so a queue
written before priorities existed needs no migration), every other level its
own list, and a small sorted set records the non-zero levels that may hold
seeds.  A take pops the highest level first and FIFO within a level, in one
Lua call; the lists are scanned, not a sorted set of seeds, because a ZSET
orders equal scores by the member's bytes and would lose FIFO.

``lua/queue.lua`` is the one place that routes a seed to its level: every
script that writes or reads the queue starts with it (``with_library``), and
the Python side never pushes to a level list by itself (a push racing a take
could otherwise leave a list whose level is not recorded).  ``push`` queues
that script on anything with redis-py's ``eval`` signature: a client, a
pipeline, a transaction, or ``ConfirmedWrites`` on a cluster.

>>> q = WorkQueue(redis_client, "ctrip_hotel")           # doctest: +SKIP
>>> q.push([Seed("http://a/", priority=5).to_json()])     # doctest: +SKIP
>>> q.length(), q.levels()                                # doctest: +SKIP
(1, [5, 0])
"""
from pathlib import Path

from . import keys
from .chunking import by_index

LIBRARY = (Path(__file__).parent / "lua" / "queue.lua").read_text(encoding="utf-8")
CHUNK = 1000


def with_library(body):
    """A script: the queue library, then `body`, which may call its functions."""
    return LIBRARY + "\n" + body


# KEYS: a work queue. ARGV: seeds (JSON). Appends each to the tail of its level.
PUSH = with_library("return enqueue_all(KEYS[1], ARGV, false)")

# KEYS: a work queue. Seeds waiting at every level.
LENGTH = with_library("return queue_length(KEYS[1])")

# KEYS: a work queue. Deletes every level; returns how many seeds went.
CLEAR = with_library("return queue_clear(KEYS[1])")


def push(pipe, work_key, raws):
    """Queue, on `pipe` (anything with redis-py's ``eval``), the push of `raws` to `work_key`."""
    if raws:
        pipe.eval(PUSH, 1, work_key, *raws)
    return pipe


class WorkQueue:
    """The work queue of spider `name` on `client`: every level of it."""

    def __init__(self, client, name):
        self.client, self.name = client, name
        self.key = keys.work(name)
        self._push = client.register_script(PUSH)
        self._length = client.register_script(LENGTH)
        self._clear = client.register_script(CLEAR)

    def push(self, raws):
        """Append seeds (JSON) to the tails of their levels, in one call."""
        if raws:
            self._push(keys=[self.key], args=raws)

    def length(self):
        """Seeds waiting, every level counted."""
        return self._length(keys=[self.key])

    def levels(self):
        """The levels that may hold seeds, highest first; 0 is always one of them."""
        found = {int(level) for level in self.client.zrange(keys.work_levels(self.name), 0, -1)}
        return sorted(found | {0}, reverse=True)

    def chunks(self):
        """Lists of raw seeds in take order (highest level first, FIFO within), CHUNK at a time."""
        for level in self.levels():
            key = keys.work_level(self.name, level)
            yield from by_index(lambda a, b, key=key: self.client.lrange(key, a, b), CHUNK)

    def clear(self):
        """Delete every level; returns how many seeds went."""
        return self._clear(keys=[self.key])
