"""A request rate shared by every process and machine of a spider (``--rate``).

A token bucket lives in one Redis hash and is updated by one Lua script
(``lua/ratelimit.lua``) that reads the server's ``TIME``, so machines with
skewed clocks agree.  :meth:`RateLimiter.reserve` takes its tokens at once and
answers how long to wait before using them; the bucket may go negative, which
means slots already promised to waiting callers.  Callers therefore queue up in
the order they asked, each sleeping its own wait, with no polling and one round
trip per reservation::

    limiter = SpiderState(redis, "ctrip_hotel").rate_limiter(20)
    wait = limiter.reserve()
    if wait:
        time.sleep(wait)          # gevent.sleep in the worker
    send_the_request()

At high rates (hundreds per second) a caller may reserve ``n`` tokens at once
and send ``n`` requests after the wait, to save round trips; the long-run rate
is the same, only the spacing inside the batch is lost.

``burst`` is how many requests may go out back to back after an idle spell;
the default, 1, spaces requests evenly.  :class:`HostRateLimiter` keeps one
bucket per target host for ``--rate-per-host``.  The gateway (SpiderState) names the keys.
"""
import math
from pathlib import Path

__all__ = ["RateLimiter", "HostRateLimiter", "check_rate"]

_SCRIPT = (Path(__file__).parent / "lua" / "ratelimit.lua").read_text(encoding="utf-8")


def check_rate(rate, what="rate"):
    """`rate` as a positive finite float, or ValueError saying what to give instead."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        value = None
    if isinstance(rate, bool) or value is None or not math.isfinite(value) or value <= 0:
        raise ValueError("%s must be a positive number of requests per second (e.g. 20 or 0.5), got %r"
                         % (what, rate))
    return value


def _check_burst(burst):
    if burst is None:
        return 1.0
    try:
        value = float(burst)
    except (TypeError, ValueError):
        value = None
    if isinstance(burst, bool) or value is None or not math.isfinite(value) or value < 1:
        raise ValueError("burst must be a number of requests, at least 1, got %r" % (burst,))
    return value


class _Bucket:
    """The rate, burst and registered script shared by both limiters."""

    def __init__(self, redis, rate, burst):
        self.rate = check_rate(rate)
        self.burst = _check_burst(burst)
        self._script = redis.register_script(_SCRIPT)

    def _reserve(self, key, n):
        if n < 1:
            raise ValueError("reserve at least 1 token, got %r" % (n,))
        return float(self._script(keys=[key], args=[repr(self.rate), repr(self.burst), int(n)]))


class RateLimiter(_Bucket):
    """One token bucket at `key`, refilled at `rate` tokens per second up to `burst`."""

    def __init__(self, redis, key, rate, burst=None):
        super().__init__(redis, rate, burst)
        self.key = key

    def reserve(self, n=1):
        """Take `n` tokens; return the seconds to wait before sending (0.0 = now)."""
        return self._reserve(self.key, n)


class HostRateLimiter(_Bucket):
    """One bucket per target host, each at `rate` per second; `key_for(host)` names its key."""

    def __init__(self, redis, key_for, rate, burst=None):
        super().__init__(redis, rate, burst)
        self.key_for = key_for
        self._redis = redis

    def for_host(self, host):
        """A :class:`RateLimiter` on `host`'s bucket (no round trip to make one)."""
        return RateLimiter(self._redis, self.key_for(host), self.rate, self.burst)

    def reserve(self, host, n=1):
        """Take `n` tokens of `host`'s bucket; return the seconds to wait."""
        return self._reserve(self.key_for(host), n)
