"""Cool-downs of throttled hosts, shared by every process and machine of a spider.

A host that answered 429 (or 503 with ``Retry-After``) through one proxy
("direct" is one) cools down: no request goes to it through that proxy until
the cool-down ends.  One Lua script (``lua/throttle.lua``) keeps a sorted set
of cool-down ends, in the Redis server's time, so skewed clocks agree::

    cooldowns = SpiderState(redis, "ctrip_hotel").cooldowns()
    left, doubling = cooldowns.check("hotels.ctrip.com|direct")   # seconds left (0.0: go)
    wait = cooldowns.throttle("hotels.ctrip.com|direct", retry_after=2.0, cap=600.0)
    cooldowns.recover("hotels.ctrip.com|direct")   # a success after a doubling cool-down

Without ``Retry-After`` the cool-down doubles from 1 s to 60 s while 429s go
on; an answer to a request that was sent before the window began does not
double it, but the window lasts at least the current step from that answer.  The gateway (SpiderState) names the keys.
"""
import time
from pathlib import Path

_SCRIPT = (Path(__file__).parent / "lua" / "throttle.lua").read_text(encoding="utf-8")
NO_RETRY_AFTER = -1


class Cooldowns:
    """The cool-downs of one spider: `cooling` zset and `steps` hash keys."""

    def __init__(self, client, cooling, steps):
        self.client = client
        self.keys = [cooling, steps]
        self._script = client.register_script(_SCRIPT)

    def check(self, member):
        """(seconds left of `member`'s cool-down, 0.0 when none; whether a doubling step is set)."""
        left, step = self._script(keys=self.keys, args=["check", member])
        return int(left) / 1000.0, bool(int(step))

    def throttle(self, member, retry_after, cap):
        """Start or extend `member`'s cool-down; `retry_after` seconds or None; returns its seconds."""
        ms = NO_RETRY_AFTER if retry_after is None else int(max(retry_after, 0) * 1000)
        return int(self._script(keys=self.keys, args=["throttle", member, ms, int(cap * 1000)])) / 1000.0

    def recover(self, member):
        """Forget `member`'s doubling step: it answered normally again."""
        self._script(keys=self.keys, args=["recover", member])

    def cooling(self, now=None):
        """How many hosts (per proxy) are cooling down now."""
        now = time.time() if now is None else now
        return self.client.zcount(self.keys[0], "(%d" % int(now * 1000), "+inf")
