"""The site's anti-crawling behaviour: per-request faults and a per-IP rate limit.

Faults are a pure function of ``(seed, path, attempt)``, so a test or a demo
can tell in advance which answer a request gets, and two sites with the same
seed misbehave identically.  Only the first ``FAULTY_ATTEMPTS`` requests for a
path can fail: every page that is not broken succeeds at the latest on attempt 4.
"""
import collections
import hashlib
import threading
import time

FAULT_KINDS = ("503", "500", "drop", "slow", "captcha")
FAULTY_ATTEMPTS = 3


def fault_for(seed, path, attempt, rate):
    """The fault kind the ``attempt``-th request (from 1) for ``path`` gets, or None."""
    if attempt > FAULTY_ATTEMPTS or rate <= 0:
        return None
    digest = hashlib.blake2b(("%s|%s|%d" % (seed, path, attempt)).encode(), digest_size=16).digest()
    if int.from_bytes(digest[:8], "big") / 2.0 ** 64 >= rate:
        return None
    return FAULT_KINDS[digest[8] % len(FAULT_KINDS)]


class RateLimiter:
    """At most ``rate`` answered requests per client IP in any sliding one-second window.

    ``rate`` 0 disables the limit.  ``clock`` is injectable so tests need not sleep.
    Refused requests do not count against the window.
    """

    def __init__(self, rate, clock=time.monotonic):
        self.rate = rate
        self.clock = clock
        self._recent = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def allow(self, ip):
        """True if a request from ``ip`` may be answered now (and count it)."""
        if self.rate <= 0:
            return True
        now = self.clock()
        with self._lock:
            recent = self._recent[ip]
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if len(recent) >= self.rate:
                return False
            recent.append(now)
            return True
