"""robots.txt files and Crawl-delay slots, shared by every process and machine of a spider.

Each origin's robots.txt is kept as fetched (``b"STATUS\\n" + body``) for a
day, so it is fetched once per origin, not once per process; one process at a
time fetches it (``claim``).  A Crawl-delay is a key that lives for the delay
after each request to the host: ``space`` takes the slot when the key is
absent, or answers how long to wait, in one round trip::

    robots = SpiderState(redis, "shop").robots_store()
    text = robots.get("https://shop.example")       # None: nobody fetched it yet
    if text is None and robots.claim("https://shop.example", ttl=40):
        robots.put("https://shop.example", 200, body, ttl=86400)
    wait = robots.space("shop.example", 2.0)         # 0.0: go now; else seconds to wait

The gateway (SpiderState) names the keys.
"""

# KEYS: robots, lock. ARGV: ttl ms. 1: claimed; 0: stored meanwhile or claimed by another.
CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SET', KEYS[2], '1', 'PX', ARGV[1], 'NX') then return 1 end
return 0
"""

SPACE = """
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX') then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then left = 1 end
return left
"""


class RobotsStore:
    """robots.txt per origin and Crawl-delay per host; `key_for(kind, name)` names the keys."""

    def __init__(self, client, robots_key, lock_key, delay_key):
        self.client = client
        self.robots_key, self.lock_key, self.delay_key = robots_key, lock_key, delay_key
        self._space = client.register_script(SPACE)
        self._claim = client.register_script(CLAIM)

    def get(self, origin):
        """(status, body, seconds it is kept still) of `origin`'s stored robots.txt, or None."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.robots_key(origin))
        pipe.pttl(self.robots_key(origin))
        found, left = pipe.execute()
        if found is None:
            return None
        status, _, body = found.partition(b"\n")
        return int(status), body, max(left, 1) / 1000.0

    def put(self, origin, status, body, ttl):
        """Keep `origin`'s answer (status, body bytes) for `ttl` seconds; frees the claim."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.robots_key(origin), b"%d\n" % status + body, px=max(int(ttl * 1000), 1))
        pipe.delete(self.lock_key(origin))
        pipe.execute()

    def claim(self, origin, ttl):
        """True when this caller may fetch `origin`'s robots.txt: nobody else is (for `ttl` s)
        and nobody stored it since the caller looked (one script: no second fetch)."""
        return bool(self._claim(keys=[self.robots_key(origin), self.lock_key(origin)],
                                args=[max(int(ttl * 1000), 1)]))

    def release(self, origin):
        self.client.delete(self.lock_key(origin))

    def space(self, host, delay):
        """0.0 and the slot taken when `delay` s passed since the last request to `host`; else the wait."""
        return int(self._space(keys=[self.delay_key(host)], args=[max(int(delay * 1000), 1)])) / 1000.0
