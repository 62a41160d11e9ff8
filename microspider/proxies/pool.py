"""The proxy pool: round-robin over healthy proxies, health per (proxy, target host), benching.

The policy is described in the package docstring.
"""
import logging
import threading
import time

import redis as redis_lib

from ..backoff import doubling
from ..errors import ProxyError
from .source import Proxy, _ListSource, _mask, _open_source

STATS = ("score", "ok", "fail", "benched_until", "latency")
_log = logging.getLogger("microspider.proxies")


def stats_key(setkey):
    """The hash of per-proxy counters kept next to the Redis set `setkey`."""
    return setkey + ":stats"


def _field(url, stat):
    return "%s|%s" % (url, stat)


class _Health:
    """How one proxy fares with one target host."""

    __slots__ = ("score", "failures", "benches", "benched_until", "trial_since")

    def __init__(self, score):
        self.score = score
        self.failures = 0           # consecutive
        self.benches = 0            # benches since the last success; > 0 means on probation
        self.benched_until = 0.0    # monotonic
        self.trial_since = None     # when the probation's one trial request was handed out

    def ready_at(self, trial_timeout):
        trial_end = self.trial_since + trial_timeout if self.trial_since is not None else 0.0
        return max(self.benched_until, trial_end)


class ProxyPool:
    """Hands out the next healthy proxy for a host, round-robin, and learns from reports.

    ::

        pool = ProxyPool.from_source("proxies.txt")
        proxy = pool.acquire("hotels.ctrip.com", exclude=tried)
        if proxy is None:
            wait = pool.next_ready_in("hotels.ctrip.com")   # all benched: back off
        ...
        pool.report(proxy, "hotels.ctrip.com", ok=True, latency=0.42)
    """

    START_SCORE = 10
    MAX_SCORE = 20
    FLOOR = 0
    BONUS = 1
    PENALTY = 3
    MAX_FAILURES = 3        # consecutive failures that bench a proxy for a host
    BENCH = 30.0            # first cool-down, seconds; doubles with each bench in a row
    BENCH_CAP = 600.0
    TRIAL_TIMEOUT = 60.0    # a trial never reported frees the proxy after this long
    LATENCY_WEIGHT = 0.2    # of the newest sample in the moving average

    def __init__(self, source, now=time.monotonic, wall=time.time, log=_log):
        """`source`: a list of proxy URLs, or a source made by :meth:`from_source`."""
        self._source = _ListSource(source) if isinstance(source, (list, tuple)) else source
        self._now, self._wall, self.log = now, wall, log
        self._lock = threading.Lock()
        self._proxies = []
        self._urls = set()
        self._health = {}           # (url, host) -> _Health
        self._cursor = {}           # host -> index of the next proxy to try
        self._latency = {}          # url -> moving average, seconds
        self._counts = {}           # url -> [ok, fail] since the last flush
        self._dirty = set()         # urls whose score or bench changed since the last flush
        self._floored = {}          # url -> Proxy at the floor, to SREM at the next flush
        self._replace(self._source.load())
        if not self._proxies:
            raise ProxyError("proxy source %s holds no valid proxy: add URLs like http://host:3128"
                             % self._source.name)

    @classmethod
    def from_source(cls, source, redis=None, now=time.monotonic, wall=time.time, log=_log):
        """A pool over `source` (see the module docstring); `redis` serves ``set:KEY``."""
        return cls(_open_source(source, redis, log), now=now, wall=wall, log=log)

    @property
    def proxies(self):
        return list(self._proxies)

    def __len__(self):
        return len(self._proxies)

    def acquire(self, host, exclude=()):
        """The next usable proxy for `host` not in `exclude` (Proxy objects or URLs), or None."""
        skip = {p.url if isinstance(p, Proxy) else p for p in exclude}
        with self._lock:
            now, count = self._now(), len(self._proxies)
            start = self._cursor.get(host, 0)
            for step in range(count):
                index = (start + step) % count
                proxy = self._proxies[index]
                if proxy.url in skip:
                    continue
                health = self._health_of(proxy.url, host)
                if health.ready_at(self.TRIAL_TIMEOUT) <= now:
                    self._cursor[host] = index + 1
                    if health.benches:
                        health.trial_since = now
                    return proxy
            return None

    def report(self, proxy, host, ok, latency=None):
        """Record the outcome of one request through `proxy` to `host`."""
        url = proxy.url if isinstance(proxy, Proxy) else proxy
        with self._lock:
            if url not in self._urls:   # dropped by a refresh or a removal meanwhile
                return
            health = self._health_of(url, host)
            health.trial_since = None
            self._counts.setdefault(url, [0, 0])[0 if ok else 1] += 1
            self._dirty.add(url)
            if ok:
                self._succeeded(url, health, latency)
            else:
                self._failed(url, host, health)

    def _health_of(self, url, host):
        health = self._health.get((url, host))
        if health is None:
            health = self._health[url, host] = _Health(self.START_SCORE)
        return health

    def _succeeded(self, url, health, latency):
        health.score = min(self.MAX_SCORE, health.score + self.BONUS)
        health.failures = health.benches = 0
        health.benched_until = 0.0
        if latency is not None:
            old = self._latency.get(url, latency)
            self._latency[url] = old + self.LATENCY_WEIGHT * (latency - old)

    def _failed(self, url, host, health):
        now = self._now()
        health.score = max(self.FLOOR, health.score - self.PENALTY)
        health.failures += 1
        resting = health.benched_until > now    # then this request left before the bench
        if not resting and (health.benches or health.failures >= self.MAX_FAILURES
                            or health.score <= self.FLOOR):
            self._bench(url, host, health, now)
        if health.score <= self.FLOOR and self._source.redis is not None and self._best_score(url) <= self.FLOOR:
            self._remove(url)

    def _bench(self, url, host, health, now):
        rest = doubling(self.BENCH, self.BENCH_CAP, health.benches)
        health.benched_until = now + rest
        health.benches += 1
        health.failures = 0
        self._dirty.add(url)
        self.log.debug("proxy %s benched for %s for %.0f s (score %d)",
                       _mask(url), host, rest, health.score)

    def bench(self, proxy, host):
        """Bench `proxy` for `host` now, as repeated failures would (sessions burnt through it)."""
        url = proxy.url if isinstance(proxy, Proxy) else proxy
        with self._lock:
            if url in self._urls:
                self._bench(url, host, self._health_of(url, host), self._now())

    def is_ready(self, proxy, host):
        """True if `proxy` (a Proxy or URL) is in the pool and not benched for `host`."""
        url = proxy.url if isinstance(proxy, Proxy) else proxy
        with self._lock:
            if url not in self._urls:
                return False
            health = self._health.get((url, host))
            return health is None or health.ready_at(self.TRIAL_TIMEOUT) <= self._now()

    def get(self, url):
        """The pool's Proxy of `url`, or a new Proxy if the pool no longer holds it."""
        for proxy in self._proxies:
            if proxy.url == url:
                return proxy
        return Proxy(url)

    def _best_score(self, url):
        return max(h.score for (u, _), h in self._health.items() if u == url)

    def _remove(self, url):
        self._floored[url] = Proxy(url)
        self._replace(self._proxies)
        self.log.warning("proxy %s removed from %s: its score fell to %d",
                         _mask(url), self._source.name, self.FLOOR)

    def _replace(self, proxies):
        self._proxies = [p for p in dict.fromkeys(proxies) if p.url not in self._floored]
        self._urls = {p.url for p in self._proxies}
        self._health = {k: h for k, h in self._health.items() if k[0] in self._urls}

    def refresh(self):
        """Re-read the source if it changed; an unreadable source keeps the proxies in use."""
        if not self._source.changed():
            return
        try:
            proxies = self._source.load()
        except ProxyError as exc:
            self.log.warning("%s; keeping the %d proxies in use", exc, len(self._proxies))
            return
        with self._lock:
            self._replace(proxies)

    def next_ready_in(self, host=None):
        """Seconds until a proxy is usable (for `host`, or any host); 0.0 if one is now; None if none."""
        with self._lock:
            if not self._proxies:
                return None
            ready = {p.url: [] for p in self._proxies}
            for (url, seen), health in self._health.items():
                if host is None or seen == host:
                    ready[url].append(health.ready_at(self.TRIAL_TIMEOUT))
            now = self._now()
            return min(max(0.0, min(at) - now) if at else 0.0 for at in ready.values())

    def flush_stats(self):
        """Push the counters of a Redis-set source to ``<KEY>:stats`` in one pipeline."""
        client = self._source.redis
        if client is None:
            return
        with self._lock:
            counts, self._counts = self._counts, {}
            fields = self._stat_fields(self._dirty)
            self._dirty = set()
            floored = list(self._floored)
        if not (counts or fields or floored):
            return
        key = self._source.key
        try:
            _write_stats(client, key, counts, fields, floored)
        except redis_lib.RedisError as exc:
            self.log.warning("could not write proxy stats to %s: %s", self._source.name, exc)
            with self._lock:
                for url, (ok, fail) in counts.items():
                    pending = self._counts.setdefault(url, [0, 0])
                    pending[0] += ok
                    pending[1] += fail
            return
        with self._lock:
            for url in floored:
                self._floored.pop(url, None)

    def _stat_fields(self, urls):
        best = {}
        for (url, _), health in self._health.items():
            if url in urls and (url not in best or health.score > best[url].score):
                best[url] = health
        now, wall, fields = self._now(), self._wall(), {}
        for url, health in best.items():
            rest = health.benched_until - now
            fields[_field(url, "score")] = health.score
            fields[_field(url, "benched_until")] = round(wall + rest, 3) if rest > 0 else 0
            if url in self._latency:
                fields[_field(url, "latency")] = round(self._latency[url], 4)
        return fields


def _write_stats(client, key, counts, fields, floored):
    stats = stats_key(key)
    pipe = client.pipeline(transaction=False)
    for url, (ok, fail) in counts.items():
        if url in floored:
            continue
        if ok:
            pipe.hincrby(stats, _field(url, "ok"), ok)
        if fail:
            pipe.hincrby(stats, _field(url, "fail"), fail)
    fields = {f: v for f, v in fields.items() if f.rpartition("|")[0] not in floored}
    if fields:
        pipe.hset(stats, mapping=fields)
    if floored:
        pipe.srem(key, *floored)
        pipe.hdel(stats, *[_field(url, stat) for url in floored for stat in STATS])
    pipe.execute()
