"""The checker: after a trial, every seed ever queued is somewhere, and every item is there once.

A seed ever queued is found by fingerprint in at least one of: the cache, the
work queue, the backlog, the failure store, the quarantine (raw, as pushed).
A seed may be in several at once (a failure record and its backlog copy).  A
seed in an in-flight list at the end is not lost (a later run reclaims it) but
is a failure of its own: after every run has ended nothing may remain there.

Which seeds were ever queued is derived from the site's truth, not from the
engine: the start seeds, plus every link of every page that is cached (a
cached page's sends were committed with it).  A page that is not cached may or
may not have sent its links; it must itself be found, and its links are not
required.  So the check needs no tap on the crawl, and still catches a seed
dropped anywhere along the chain.
"""
import collections
import dataclasses
from urllib.parse import urljoin

from microspider.state import keys
from microspider.state.cache import Cache
from microspider.seed import Seed
from microspider.store import open_store


@dataclasses.dataclass
class Account:
    """What the checker found after one trial."""

    seeds: int = 0                     # seeds ever queued
    lost: list = dataclasses.field(default_factory=list)         # (spider, url or raw) found nowhere
    in_flight: int = 0                 # seeds still in in-flight lists (found, but a failure)
    item_problems: list = dataclasses.field(default_factory=list)
    places: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def problems(self):
        out = ["lost %s %s" % (s, u if isinstance(u, str) else repr(u)[:80]) for s, u in self.lost[:10]]
        if self.in_flight:
            out.append("%d seeds left in flight" % self.in_flight)
        return out + self.item_problems[:10]


class Locator:
    """Where the seeds of one spider are, read once from Redis and the store."""

    def __init__(self, redis, store_uri, name):
        self.redis, self.name = redis, name
        work, backlog = redis.lrange(keys.work(name), 0, -1), redis.zrange(keys.backlog(name), 0, -1)
        self.work, self.backlog = _fingerprints(work), _fingerprints(backlog)
        self.quarantine = collections.Counter(redis.lrange(keys.quarantine(name), 0, -1))
        store = open_store(store_uri, "microspiders", name)
        try:
            self.failures = {d["_id"] for d in store.iter_failures()}
            self.items = list(store.iter_items())
        finally:
            store.close()
        flying = [r for k in redis.scan_iter(match=keys.inflight(name, "*")) for r in redis.lrange(k, 0, -1)]
        self.in_flight = len(flying)
        self.flying = _fingerprints(flying)
        self.raws = set(work) | set(backlog) | set(flying)   # as pushed, also when not decodable

    def cached(self, urls):
        if not urls:
            return []
        return Cache(self.redis, self.name).contains([Seed(u).cache_key for u in urls])

    def places(self, urls):
        """{url: set of places} for these URLs."""
        out = {}
        for url, hit in zip(urls, self.cached(urls)):
            fp = Seed(url).fingerprint
            out[url] = {p for p, found in (("cache", hit), ("work", fp in self.work),
                                            ("backlog", fp in self.backlog),
                                            ("failures", fp in self.failures),
                                            ("in flight", fp in self.flying)) if found}
        return out


def _fingerprints(raws):
    out = set()
    for raw in raws:
        try:
            out.add(Seed.from_json(raw).fingerprint)
        except Exception:  # malformed or unencodable: only the quarantine check looks at raws
            pass
    return out


def account(redis, store_uri, expected, raws=None):
    """Check `expected` {spider: [url]} and raw pushes `raws` {spider: [bytes]} (must be quarantined)."""
    result = Account()
    locators = {}
    for name in set(expected) | set(raws or {}):
        loc = locators[name] = Locator(redis, store_uri, name)
        result.in_flight += loc.in_flight
        for url, found in loc.places(expected.get(name, [])).items():
            result.seeds += 1
            result.places.update(found)
            if not found:
                result.lost.append((name, url))
        for raw in (raws or {}).get(name, ()):
            result.seeds += 1
            if loc.quarantine[raw] > 0:
                loc.quarantine[raw] -= 1
                result.places["quarantine"] += 1
            elif not _found_raw(loc, raw):
                result.lost.append((name, raw))
    result.locators = locators
    return result


def _found_raw(loc, raw):
    """A raw push still queued as it was, or a valid seed processed like any other (by fingerprint)."""
    if raw in loc.raws:
        return True
    try:
        seed = Seed.from_json(raw)
        fp, key = seed.fingerprint, seed.cache_key
    except Exception:
        return False
    return (fp in loc.work or fp in loc.backlog or fp in loc.failures or fp in loc.flying
            or Cache(loc.redis, loc.name).contains([key])[0])


# -- the Ctrip-like site's truth -----------------------------------------------------------
def ctrip_expected(catalog, base, cached):
    """{spider: [url]} ever queued: the city list, and what every cached page links to.

    `cached(spider, urls)` tells which URLs are cached.  Names are the chaos spiders'.
    """
    city_url = base
    expected = {"chaos_city": [city_url], "chaos_hotel": [], "chaos_info": []}
    if not cached("chaos_city", [city_url])[0]:
        return expected
    pages = {}   # list url -> (city, number)
    for city in catalog.cities:
        for number in range(1, city.pages + 1):
            path = "/hotels/%s/" % city.slug if number == 1 else "/hotels/%s/p%d/" % (city.slug, number)
            pages[urljoin(base, path)] = (city, number)
    urls = list(pages)
    hit = dict(zip(urls, cached("chaos_hotel", urls)))
    for city in catalog.cities:
        number = 1
        while True:
            url = urljoin(base, "/hotels/%s/" % city.slug if number == 1
                          else "/hotels/%s/p%d/" % (city.slug, number))
            expected["chaos_hotel"].append(url)
            if not hit[url]:
                break
            expected["chaos_info"] += [urljoin(base, "/hotel/%s.html" % h.id)
                                       for h in catalog.page(city, number)]
            if number == city.pages:
                break
            number += 1
    return expected


def ctrip_items(catalog, base, locator):
    """Problems with the items: every cached good hotel has one item equal to its truth, once."""
    problems = []
    ids = collections.Counter(str(i["_id"]) for i in locator.items)
    problems += ["item %s stored %d times" % (i, n) for i, n in ids.items() if n > 1]
    by_id = {str(i["_id"]): i for i in locator.items}
    hotels = [catalog.hotel(i) for i in range(catalog.size)]
    urls = [urljoin(base, "/hotel/%s.html" % h.id) for h in hotels]
    for hotel, hit in zip(hotels, locator.cached(urls)):
        item = by_id.get(hotel.id)
        if hotel.broken:
            if item is not None:
                problems.append("item of broken hotel %s" % hotel.id)
            continue
        truth = hotel.truth()
        if hit and item is None:
            problems.append("item lost: hotel %s is cached but has no item" % hotel.id)
        elif item is not None and any(item.get(k) != truth[k] for k in ("name", "city", "opened", "renovated")):
            problems.append("item %s differs from the truth: %r" % (hotel.id, item))
    return problems
