"""Exponential back-off: the one rule for every wait that doubles up to a cap.

Redis retries, an idle feeder, a store that does not open yet, the backlog's
retry delay and a benched proxy all wait ``first * 2 ** step`` seconds, never
more than ``cap``.  ``doubling`` computes one such wait; ``Backoff`` counts the
steps of a loop that retries.  Neither sleeps: the caller sleeps with its own
(gevent or time) sleep, so tests can drive a loop without waiting.

Example::

    backoff = Backoff(first=0.1, cap=5.0)
    while True:
        try:
            return call()
        except REDIS_DOWN:
            gevent.sleep(backoff.next())
"""

MAX_STEP = 30   # 2 ** 30 times any first delay we use is far past its cap


def doubling(first, cap, step):
    """``first * 2 ** step`` seconds, at most `cap` (step 0 is `first`)."""
    return min(first * 2 ** min(step, MAX_STEP), cap)


class Backoff:
    """The waits of one retrying loop: `first`, then doubling up to `cap`; ``reset`` after a success."""

    def __init__(self, first, cap):
        self.first, self.cap = first, cap
        self.step = 0

    @property
    def delay(self):
        """The wait for the current step."""
        return doubling(self.first, self.cap, self.step)

    def next(self):
        """The wait for now; the next one is twice as long (up to the cap)."""
        delay = self.delay
        self.step += 1
        return delay

    def grow(self):
        """Double the current wait (up to the cap) without taking it."""
        self.step += 1

    def reset(self):
        """Back to `first` (the loop succeeded)."""
        self.step = 0
