"""A lock held in Redis: ``SET NX PX`` with an owner token, released only by its owner."""
import time
import uuid

from ..errors import LockTimeout

__all__ = ["Lock", "LockTimeout"]

RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class Lock:
    """``with Lock(client, key):`` waits up to `wait` seconds for the lock; `ttl` bounds a dead holder."""

    def __init__(self, client, key, ttl=30.0, wait=30.0, sleep=time.sleep):
        self.client, self.key, self.ttl, self.wait, self.sleep = client, key, ttl, wait, sleep
        self.token = uuid.uuid4().hex

    def acquire(self, wait=None):
        """True once held; False if still held elsewhere after `wait` seconds (0: one try)."""
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        while not self.client.set(self.key, self.token, nx=True, px=int(self.ttl * 1000)):
            if time.monotonic() >= deadline:
                return False
            self.sleep(0.05)
        return True

    def release(self):
        self.client.eval(RELEASE, 1, self.key, self.token)

    def __enter__(self):
        if not self.acquire():
            raise LockTimeout("the lock %s is held elsewhere" % self.key)
        return self

    def __exit__(self, *exc):
        self.release()
