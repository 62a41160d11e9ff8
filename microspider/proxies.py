"""The rotating proxy pool and its health (``-p/--http-proxy``).

A source is one of::

    http://user:pw@10.0.0.1:3128      one proxy (schemes http, https, socks5, socks5h)
    proxies.txt                       a file, one proxy URL a line; blank lines and
                                      # comments ignored; a bad line is skipped with
                                      a warning naming its line number
    redis://[:pw@]host:port/db#KEY    the Redis set KEY on that server (rediss:// too)
    set:KEY                           the set KEY on the run's own Redis

``refresh()`` re-reads a file when its mtime or size changed and a Redis set's
members every time (one SMEMBERS), so proxies can be added and removed while
the crawl runs.  Health survives a refresh for the proxies that stay.

Health is kept per (proxy, target host); a proxy banned by one site may still
serve another.  The policy, in :class:`ProxyPool`'s class attributes:

* the score starts at 10; a success adds 1 (up to 20), a failure takes 3
  (down to the floor, 0);
* 3 consecutive failures for a host bench the proxy for that host for 30 s,
  and so does a failure that brings the score to the floor;
* when the bench ends the proxy gets exactly one trial request (no other
  request goes through it until that one is reported, or for 60 s); a failed
  trial benches it again for twice as long (30, 60, 120 ... capped at 600 s);
  a success ends the probation and resets the cool-down to 30 s;
* so a proxy that never works is chosen for 3 requests, then rests; its 4th
  failed request (the first trial) brings a fresh score from 10 to 0.  From a
  Redis-set source a proxy whose score reaches 0 on every host it was used for
  is dropped from the pool at once and SREM'd from the set by the next
  ``flush_stats()``, with a warning; from a URL or a file it stays, benched,
  and keeps getting one trial per cool-down.

Failures reported while a proxy is already benched (requests that were in
flight) lower its score but do not bench it again.

Counters of a Redis-set source go to the hash ``<KEY>:stats`` beside the set
(see :func:`stats_key`; it belongs to the user's set, not to a spider, so it
is named here rather than in ``keys.py``).  Its fields are ``<proxy URL>|<stat>``:

=================  ===========================================================
``URL|ok``         requests that succeeded, summed over every process (HINCRBY)
``URL|fail``       requests that failed, summed over every process
``URL|score``      the proxy's score on its best host, last writer wins
``URL|benched_until``  epoch seconds its bench on its best host ends (0 = not benched)
``URL|latency``    moving average of successful request time, seconds
=================  ===========================================================

The pool is meant for the greenlets of one process; benches are not shared
between processes, only the counters and the removals from the set.
"""
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import redis as redis_lib
import requests

from microspider.errors import ConfigError

__all__ = [
    "Proxy", "ProxyPool", "ProxyError", "check_proxies", "add_proxies", "remove_proxies",
    "list_proxies", "stats_key",
]

SCHEMES = ("http", "https", "socks5", "socks5h")
STATS = ("score", "ok", "fail", "benched_until", "latency")
_log = logging.getLogger("microspider.proxies")


class ProxyError(ConfigError):
    """A bad proxy URL or proxy source; the message says what to fix."""


def stats_key(setkey):
    """The hash of per-proxy counters kept next to the Redis set `setkey`."""
    return setkey + ":stats"


def _field(url, stat):
    return "%s|%s" % (url, stat)


def _mask(url):
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return "%s://%s:***@%s" % (parts.scheme, userinfo.split(":", 1)[0], hostport)


class Proxy:
    """One proxy URL, validated; ``str()`` hides its password."""

    __slots__ = ("url",)

    def __init__(self, url):
        if isinstance(url, Proxy):
            url = url.url
        if not isinstance(url, str) or not url.strip():
            raise ProxyError("empty proxy URL: give one like http://host:3128")
        self.url = url.strip()
        self._validate()

    def _validate(self):
        shown = _mask(self.url)
        if any(c.isspace() for c in self.url):
            raise ProxyError("proxy URL %r contains a space" % shown)
        parts = urlsplit(self.url)
        if parts.scheme not in SCHEMES:
            raise ProxyError("proxy URL %r: the scheme must be one of %s, e.g. http://host:3128"
                             % (shown, ", ".join(SCHEMES)))
        try:
            port = parts.port
        except ValueError:
            port = 0
        if not parts.hostname:
            raise ProxyError("proxy URL %r has no host; write %s://host:port" % (shown, parts.scheme))
        if not port:
            raise ProxyError("proxy URL %r needs a port from 1 to 65535, e.g. %s://%s:3128"
                             % (shown, parts.scheme, parts.hostname))
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ProxyError("proxy URL %r must be %s://[user:password@]host:port, with no path"
                             % (shown, parts.scheme))
        if parts.scheme.startswith("socks"):
            try:
                import socks  # noqa: F401  (requests needs PySocks for socks proxies)
            except ImportError:
                raise ProxyError("proxy URL %r needs PySocks: pip install requests[socks]" % shown) from None

    @property
    def requests_proxies(self):
        """The ``proxies=`` argument of requests: http and https targets through this proxy."""
        return {"http": self.url, "https": self.url}

    def __str__(self):
        return _mask(self.url)

    def __repr__(self):
        return "Proxy(%r)" % _mask(self.url)

    def __eq__(self, other):
        return isinstance(other, Proxy) and other.url == self.url

    def __hash__(self):
        return hash(self.url)


# -- sources ---------------------------------------------------------------------------------

class _ListSource:
    """Proxies given once (a URL on the command line); never changes."""

    redis = None

    def __init__(self, proxies):
        self.proxies = [Proxy(p) for p in proxies]
        self.name = ", ".join(str(p) for p in self.proxies)

    def load(self):
        return list(self.proxies)

    def changed(self):
        return False


class _FileSource:
    """A text file of proxy URLs, re-read when its mtime or size changes."""

    redis = None

    def __init__(self, path, log):
        self.path = self.name = path
        self.log = log
        self._stamp = None

    def _stat(self):
        st = os.stat(self.path)
        return st.st_mtime_ns, st.st_size

    def changed(self):
        try:
            return self._stat() != self._stamp
        except OSError:
            return True

    def load(self):
        try:
            self._stamp = self._stat()
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ProxyError("cannot read proxy file %s: %s" % (self.path, exc)) from None
        proxies = []
        for number, line in enumerate(lines, 1):
            line = line.split("#", 1)[0].strip()     # a proxy URL has no fragment
            if not line:
                continue
            try:
                proxies.append(Proxy(line))
            except ProxyError as exc:
                self.log.warning("%s:%d: skipped: %s", self.path, number, exc)
        return proxies


class _SetSource:
    """A Redis set of proxy URLs, read with one SMEMBERS per refresh."""

    def __init__(self, client, key, where, log):
        self.redis, self.key, self.log = client, key, log
        self.name = where
        self._bad = set()

    def changed(self):
        return True

    def load(self):
        try:
            members = sorted(m.decode("utf-8", "replace") for m in self.redis.smembers(self.key))
        except redis_lib.RedisError as exc:
            raise ProxyError("cannot read the proxy set %s: %s" % (self.name, exc)) from None
        proxies = []
        for member in members:
            try:
                proxies.append(Proxy(member))
            except ProxyError as exc:
                if member not in self._bad:
                    self._bad.add(member)
                    self.log.warning("proxy set %s: skipped a member: %s", self.name, exc)
        return proxies


def _open_source(source, client, log):
    if not isinstance(source, str) or not source.strip():
        raise ProxyError("empty proxy source: give a proxy URL, a file of them, or a Redis set")
    source = source.strip()
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if source.startswith("set:"):
        key = source[4:]
        if not key:
            raise ProxyError("proxy source 'set:' names no set: write set:KEY")
        if client is None:
            raise ProxyError("proxy source %s names a set on the run's Redis, but no Redis was given" % source)
        return _SetSource(client, key, source, log)
    if scheme in ("redis", "rediss", "unix"):
        address, _, key = source.partition("#")
        shown = _mask(address)
        if not key:
            raise ProxyError("proxy source %s names no set: end it with #KEY, e.g. "
                             "redis://127.0.0.1:6379/0#proxies" % shown)
        try:
            return _SetSource(redis_lib.Redis.from_url(address), key, "%s#%s" % (shown, key), log)
        except ValueError as exc:
            raise ProxyError("proxy source %s: bad Redis URL: %s" % (shown, exc)) from None
    if scheme:
        return _ListSource([source])
    if os.path.isfile(source):
        return _FileSource(source, log)
    raise ProxyError("proxy source %r is not a proxy URL (http://host:port), an existing file, "
                     "or a Redis set (redis://host:port/db#KEY, set:KEY)" % source)


# -- the pool --------------------------------------------------------------------------------

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
            rest = min(self.BENCH_CAP, self.BENCH * 2 ** health.benches)
            health.benched_until = now + rest
            health.benches += 1
            health.failures = 0
            self.log.debug("proxy %s benched for %s for %.0f s (score %d)",
                           _mask(url), host, rest, health.score)
        if health.score <= self.FLOOR and self._source.redis is not None and self._best_score(url) <= self.FLOOR:
            self._remove(url)

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


# -- administration --------------------------------------------------------------------------

def add_proxies(redis, key, urls):
    """Validate `urls` and add them to the Redis set `key`; returns how many were new."""
    proxies = [Proxy(url) for url in urls]
    return redis.sadd(key, *[p.url for p in proxies]) if proxies else 0


def remove_proxies(redis, key, urls):
    """Remove `urls` (valid or not) from the set `key` and drop their stats; returns how many were there."""
    urls = [u.url if isinstance(u, Proxy) else u.strip() for u in urls]
    if not urls:
        return 0
    pipe = redis.pipeline(transaction=False)
    pipe.srem(key, *urls)
    pipe.hdel(stats_key(key), *[_field(url, stat) for url in urls for stat in STATS])
    return pipe.execute()[0]


def list_proxies(redis, key):
    """One row per member of the set `key`: proxy, score, ok, fail, benched_until, latency."""
    pipe = redis.pipeline(transaction=False)
    pipe.smembers(key)
    pipe.hgetall(stats_key(key))
    members, raw = pipe.execute()
    stats = {}
    for field, value in raw.items():
        url, _, stat = field.decode("utf-8", "replace").rpartition("|")
        stats.setdefault(url, {})[stat] = float(value)
    rows = []
    for url in sorted(m.decode("utf-8", "replace") for m in members):
        seen = stats.get(url, {})
        score = seen.get("score")
        rows.append({
            "proxy": url,
            "score": None if score is None else int(score),
            "ok": int(seen.get("ok", 0)),
            "fail": int(seen.get("fail", 0)),
            "benched_until": seen.get("benched_until", 0.0),
            "latency": seen.get("latency"),
        })
    return rows


# -- checking --------------------------------------------------------------------------------

def check_proxies(proxies, url, timeout=10, concurrency=20):
    """Fetch `url` through each proxy at once; one row per proxy, in the given order.

    Each row: ``proxy`` (the URL), ``ok`` (an answer below 400), ``latency`` (seconds, None
    when no answer came), ``status`` and ``error`` (one line, or None).  Runs on a thread
    pool, which is cooperative under gevent's monkey-patching.
    """
    proxies = list(proxies)
    if not proxies:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(proxies)))) as pool:
        return list(pool.map(lambda proxy: _check_one(proxy, url, timeout), proxies))


def _check_one(proxy, url, timeout):
    row = {"proxy": proxy.url if isinstance(proxy, Proxy) else proxy,
           "ok": False, "latency": None, "status": None, "error": None}
    try:
        proxy = Proxy(proxy)
    except ProxyError as exc:
        row["error"] = str(exc)
        return row
    started = time.monotonic()
    try:
        with requests.Session() as session:
            session.trust_env = False       # the proxy under test, not the environment's
            response = session.get(url, proxies=proxy.requests_proxies, timeout=timeout)
    except requests.RequestException as exc:
        row["error"] = _describe(exc)
        return row
    row["latency"] = round(time.monotonic() - started, 4)
    row["status"] = response.status_code
    row["ok"] = response.status_code < 400
    if not row["ok"]:
        row["error"] = "HTTP %d" % response.status_code
    return row


def _describe(exc):
    """`exc` in one short line: its class and its innermost reason."""
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", None) or reason
    if isinstance(reason, Exception) and len(reason.args) > 1 and isinstance(reason.args[1], Exception):
        reason = "%s (%s)" % (reason.args[0], reason.args[1])
    text = "".join(c if c.isprintable() else "?" for c in " ".join(str(reason).split()))
    return "%s: %s" % (type(exc).__name__, text[:200])
