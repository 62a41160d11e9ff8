"""``microspider proxy add/remove/list``: a Redis-set proxy pool and its counters."""
from .pool import STATS, _field, stats_key
from .source import Proxy


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
