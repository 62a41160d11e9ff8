"""Backlog -> work: the three relay modes, max-age and the retry delay.

The backlog (``state.backlog``) is a sorted set scored by due time; seeds over
max-age are parked at +inf when they enter it, so the relay only moves members
scored <= now and never decodes a seed on the hot path.
"""
import json
import math
import time

from ..backoff import doubling

CONTINUOUS, WHEN_EMPTY, NEVER = 0, 1, 2
BATCH = 2000
RELAY_DELAY_CAP = 300.0


def retry_delay(age, base):
    """Seconds before a seed of this age comes back from the backlog."""
    if age <= 0 or base <= 0:
        return 0.0
    return doubling(base, RELAY_DELAY_CAP, age - 1)


def backlog_score(age, max_age, base, now):
    """Due time of a backlogged seed; +inf parks it (over max-age)."""
    return math.inf if age > max_age else now + retry_delay(age, base)


class Relay:
    """Moves due backlog seeds of one spider back to its work queue."""

    def __init__(self, state, mode=CONTINUOUS, max_age=5, relay_delay=1.0):
        self.backlog = state.backlog
        self.mode, self.max_age, self.relay_delay = mode, max_age, relay_delay

    def move_due(self, now=None, limit=None):
        """Move every due seed (per mode); returns how many moved."""
        if self.mode == NEVER:
            return 0
        now = time.time() if now is None else now
        total = 0
        while True:
            moved = self.backlog.move_due(now, BATCH, only_when_empty=self.mode == WHEN_EMPTY)
            total += moved
            if moved < BATCH or (limit and total >= limit):
                return total

    def unpark(self, max_age=None, now=None, wait=30.0):
        """Give parked seeds whose age is now within max_age a due time; returns how many."""
        max_age = self.max_age if max_age is None else max_age
        now = time.time() if now is None else now
        changed = 0
        start = 0  # members that stay parked are skipped; unparked ones leave the range
        with self.backlog.lock(wait):
            while True:
                raws = self.backlog.parked(start, BATCH)
                if not raws:
                    return changed
                updates = {}
                for raw in raws:
                    age = seed_age(raw)
                    if age is not None and age <= max_age:
                        updates[raw] = backlog_score(age, max_age, self.relay_delay, now)
                self.backlog.rescore(updates)
                changed += len(updates)
                start += len(raws) - len(updates)

    def park_over_age(self, max_age=None):
        """Score +inf the backlog seeds whose age is over max_age; returns how many."""
        max_age = self.max_age if max_age is None else max_age
        parked = 0
        for chunk in self.backlog.scan():
            over = {raw: math.inf for raw, score in chunk
                    if score != math.inf and (seed_age(raw) or 0) > max_age}
            self.backlog.rescore(over, only_existing=True)
            parked += len(over)
        return parked

    def move_all(self, reset_age=False):
        """Move every backlog seed, over-age ones included; optionally reset age to 0."""
        moved = 0
        with self.backlog.lock():
            while True:
                raws = self.backlog.head(BATCH)
                if not raws:
                    return moved
                self.backlog.move(raws, [_with_age(r, 0) for r in raws] if reset_age else None)
                moved += len(raws)


def relay_once(state, max_age, relay_delay=1.0, clear=False):
    """Move backlog seeds to the work queue now (``microspider relay``); returns (moved, stayed).

    Without `clear` every seed whose age is <= max_age moves, whether its retry
    delay has passed or not (a user relaying by hand wants them now); older
    seeds are parked (+inf) and stay.  With `clear` every seed moves, over-age
    ones included, its age reset to 0.
    """
    relay = Relay(state, CONTINUOUS, max_age, relay_delay)
    if clear:
        moved = relay.move_all(reset_age=True)
    else:
        while relay.unpark(max_age):
            pass  # one unpark pass can skip parked seeds past its first batch: repeat until none left
        relay.park_over_age(max_age)
        moved = relay.move_due(now="(inf")  # an exclusive bound: every finite score, no parked one
    return moved, state.backlog.size()


def seed_age(raw):
    """The age of a raw seed; None when it cannot be read (malformed seeds move as they are)."""
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
