"""The success cache on a real redis-server: exact, compact, growing, timed, upgraded from 0.1."""
import base64
import gzip
import json
import os
import random
import signal
import time

import pytest
import redis

from microspider import Seed
from microspider.cli import main
from microspider.state import keys
from microspider.state.cache import Cache, EXACT_BELOW
from tests.crawl import finish, microspider, start, write_spider
from tests.servers import Site, wait_until

NAME = "hotel"
T0 = 1_800_000_030.0        # 30 s into a minute
DAY = 86400


def fingerprints(n, seed=1):
    rng = random.Random(seed)
    return [rng.getrandbits(96).to_bytes(12, "big") for _ in range(n)]


def fill(cache, found, now=T0, spread=0.0, batch=1000):
    """Add `found` in batches, success times spread over `spread` seconds from `now`."""
    for start_at in range(0, len(found), batch):
        cache.add(found[start_at:start_at + batch], now=now + spread * start_at / len(found))


def check_all(cache, found, batch=1000):
    hits = []
    for start_at in range(0, len(found), batch):
        hits += cache.contains(found[start_at:start_at + batch])
    return hits


def buckets(r, name=NAME):
    return list(r.scan_iter(match=keys.cache_bucket(name, "") + "[0-9a-f]*", count=1000))


def freed_by_clear(r, cache):
    """Bytes of used_memory that clearing the cache gives back."""
    before = r.info("memory")["used_memory"]
    cache.clear()
    return before - r.info("memory")["used_memory"]


@pytest.fixture
def small_buckets(r):
    """The server's compact-encoding limit at 16 entries (restored after the test)."""
    old = r.config_get("hash-max-ziplist-entries")["hash-max-ziplist-entries"]
    r.config_set("hash-max-ziplist-entries", 16)
    yield 16
    r.config_set("hash-max-ziplist-entries", old)


# -- exact and compact ---------------------------------------------------------------
@pytest.mark.slow   # heavier run: bash scripts/test.sh -m slow (docs/testing.md)
def test_300k_fingerprints_exact_compact_and_under_20_bytes_each(r):
    cache = Cache(r, NAME)
    added = fingerprints(300_000)
    strangers = fingerprints(100_000, seed=2)
    rng = random.Random(3)
    for start_at in range(0, len(added), 5000):   # checks between batches, while buckets split
        cache.add(added[start_at:start_at + 5000], now=T0 + 300 * DAY * start_at / len(added))
        known = added[:start_at + 5000]
        probe = rng.sample(known, 300)
        assert cache.contains(probe) == [True] * 300
        assert cache.contains(rng.sample(strangers, 300)) == [False] * 300
    assert all(check_all(cache, added))
    assert not any(check_all(cache, strangers))
    assert cache.size() == 300_000
    meta = r.hgetall(keys.cache_meta(NAME))
    assert int(meta[b"level"]) >= 10                            # the bucket count grew with the cache
    limit = int(r.config_get("hash-max-ziplist-entries")["hash-max-ziplist-entries"])
    found = buckets(r)
    assert len(found) > 1000
    pipe = r.pipeline(transaction=False)
    for b in found:
        pipe.object("encoding", b)
        pipe.hlen(b)
    answers = pipe.execute()
    assert set(answers[0::2]) <= {b"ziplist", b"listpack"}
    assert max(answers[1::2]) <= limit
    assert sum(answers[1::2]) == 300_000 + len(found)      # each bucket holds its epoch too
    # success times spread over 300 days (3-byte values), the 11-byte fields of this size
    per_fingerprint = freed_by_clear(r, cache) / 300_000
    assert per_fingerprint <= 20.0, per_fingerprint
    assert cache.size() == 0 and buckets(r) == [] and not any(check_all(cache, added[:1000]))


def test_100k_fingerprints_cost_at_most_20_bytes_and_the_01_set_three_times_that(r):
    cache = Cache(r, NAME)
    fill(cache, fingerprints(100_000), spread=400 * DAY)
    assert freed_by_clear(r, cache) / 100_000 <= 20.0
    before = r.info("memory")["used_memory"]
    legacy = fingerprints(100_000, seed=5)
    for chunk in range(0, 100_000, 10_000):
        r.sadd(keys.cache(NAME), *legacy[chunk:chunk + 10_000])
    assert (r.info("memory")["used_memory"] - before) / 100_000 > 45


def test_checks_from_another_client_while_buckets_split_never_miss(redis_url, r, small_buckets):
    """A writer adds batches (each may split buckets) while a reader checks what was added."""
    import threading

    added, stop, misses, checks = [], threading.Event(), [], [0]

    def write():
        cache = Cache(redis.Redis.from_url(redis_url), NAME)
        for start_at in range(0, 20_000, 100):
            batch = ALL[start_at:start_at + 100]
            cache.add(batch, now=T0)
            added.extend(batch)       # confirmed: every later check must see these
        stop.set()

    def read():
        cache = Cache(redis.Redis.from_url(redis_url), NAME)
        rng = random.Random(4)
        while not stop.is_set():
            known = list(added)
            if known:
                probe = rng.sample(known, min(200, len(known)))
                misses.extend(k for k, hit in zip(probe, cache.contains(probe)) if not hit)
                checks[0] += 1

    ALL = fingerprints(20_000)
    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    levels = int(r.hget(keys.cache_meta(NAME), "level"))
    assert levels >= 10 and checks[0] > 20       # the reader ran while ~2,000 buckets were split
    assert misses == []
    assert all(check_all(Cache(r, NAME), ALL))


def test_a_skewed_set_of_urls_splits_full_buckets_early_and_stays_exact(r, small_buckets):
    cache = Cache(r, NAME)
    # 600 fingerprints sharing their 20 leading bits: the linear growth alone would pile them up
    rng = random.Random(7)
    skewed = [(0xABCDE << 76 | rng.getrandbits(76)).to_bytes(12, "big") for _ in range(600)]
    plain = fingerprints(2000)
    mixed = plain + skewed
    random.Random(8).shuffle(mixed)
    for n, key in enumerate(mixed, 1):      # one at a time: a check after every split
        cache.add([key], now=T0)
        if n % 50 == 0:
            assert all(cache.contains(mixed[:n])), n
    assert all(check_all(cache, mixed)) and not any(check_all(cache, fingerprints(3000, seed=9)))
    assert r.hlen(keys.cache_splits(NAME)) > 0            # the early splits are marked
    for b in buckets(r):
        assert r.hlen(b) <= small_buckets and r.object("encoding", b) == b"ziplist"
    assert cache.size() == 2600
    assert sorted(k for k, _ in cache.entries()) == sorted(mixed)


def test_remove_forgets_exactly_those(r):
    cache = Cache(r, NAME)
    found = fingerprints(20_000)
    fill(cache, found)
    assert cache.remove(found[:500] + fingerprints(10, seed=11)) == 500
    assert check_all(cache, found) == [False] * 500 + [True] * 19_500
    assert cache.size() == 19_500


# -- success times and --recrawl -----------------------------------------------------------
def test_recrawl_counts_old_successes_as_not_cached(r):
    cache = Cache(r, NAME)
    old, new = fingerprints(3, seed=1), fingerprints(3, seed=2)
    cache.add(old, now=T0)
    cache.add(new, now=T0 + 2 * DAY)
    now = T0 + 2 * DAY + 10
    assert cache.contains(old + new, now=now) == [True] * 6              # no recrawl: forever
    assert cache.contains(old + new, recrawl=3 * DAY, now=now) == [True] * 6
    assert cache.contains(old + new, recrawl=DAY, now=now) == [False] * 3 + [True] * 3
    # kept to the minute: never cached past its time, at most a minute early
    assert cache.contains(old[:1], recrawl=3600, now=T0 + 3600 - 31) == [True]
    assert cache.contains(old[:1], recrawl=3600, now=T0 + 3600 - 29) == [False]
    assert cache.contains(old[:1], recrawl=3600, now=T0 + 3600 + 1) == [False]
    cache.add(old[:1], now=now)                                           # succeeded again
    assert cache.contains(old, recrawl=DAY, now=now) == [True, False, False]
    assert cache.size() == 6


def test_old_successes_keep_an_hour_precision_and_are_never_taken_for_younger(r):
    cache = Cache(r, NAME)
    first, later, last = fingerprints(3, seed=6)
    cache.add([first], now=T0)
    cache.add([later], now=T0 + 30 * DAY)          # past the bucket's fine window: re-encoded
    now = T0 + 30 * DAY
    assert cache.contains([first], recrawl=30 * DAY + 3600, now=now) == [True]
    assert cache.contains([first], recrawl=30 * DAY - 1, now=now) == [False]
    assert cache.contains([later], recrawl=60, now=now + 30) == [True]    # to the minute
    assert cache.contains([later], recrawl=60, now=now + 61) == [False]
    stored = dict(cache.entries())
    assert T0 - 3600 < stored[first] <= T0 and stored[later] == (T0 + 30 * DAY) // 60 * 60
    cache.add([last], now=T0 + 3 * 365 * DAY)      # years later: the first two are "ancient"
    assert cache.contains([first, later, last]) == [True, True, True]      # still cached
    assert cache.contains([first, later, last], recrawl=10 * 365 * DAY,
                          now=T0 + 3 * 365 * DAY) == [False, False, True]  # due, never late
    assert dict(cache.entries())[first] == 0


def test_due_again_is_exact_when_small_and_estimated_when_large(r):
    cache = Cache(r, NAME)
    cache.add(fingerprints(300), now=T0)
    cache.add(fingerprints(200, seed=2), now=T0 + 10 * DAY)
    assert cache.due(DAY, now=T0 + 10 * DAY) == (300, True)
    cache.clear()
    n = EXACT_BELOW * 2
    fill(cache, fingerprints(n // 4, seed=3), now=T0)
    fill(cache, fingerprints(3 * n // 4, seed=4), now=T0 + 10 * DAY)
    estimate, exact = cache.due(DAY, now=T0 + 10 * DAY, rng=random.Random(1))
    assert not exact and abs(estimate - n // 4) < 0.1 * n // 4


# -- the 0.1 cache -------------------------------------------------------------------------
def test_a_01_cache_keeps_skipping_and_moves_into_buckets(r):
    legacy = fingerprints(5000)
    r.sadd(keys.cache(NAME), *legacy)                       # as 0.1 wrote it
    cache = Cache(r, NAME)
    assert all(check_all(cache, legacy)) and cache.size() == 5000
    assert cache.contains(legacy[:2], recrawl=60, now=T0) == [True, True]  # no time: fresh
    strangers = fingerprints(500, seed=3)
    cache.add(strangers[:100] + legacy[:100], now=T0)       # succeeded again: moves out of the set
    assert cache.size() == 5100 and r.scard(keys.cache(NAME)) == 4900
    assert cache.remove(legacy[100:110]) == 10
    moved = 0
    while True:
        n = cache.adopt_legacy(now=T0 + 60, chunk=700)
        if not n:
            break
        moved += n
        assert all(check_all(cache, legacy[110:]))           # seen in the set or the buckets
    assert moved == 4890 and not r.exists(keys.cache(NAME))
    assert check_all(cache, legacy) == [True] * 100 + [False] * 10 + [True] * 4890
    assert not any(check_all(cache, strangers[100:]))
    assert cache.size() == 5090
    assert {t for _, t in cache.entries()} == {(T0 + 60) // 60 * 60, T0 // 60 * 60}


# -- migrate --------------------------------------------------------------------------------
@pytest.fixture
def flags(redis_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return {"source": ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "a.db")],
            "target": ["--redis", redis_url + "/1", "--mongo-uri", "sqlite:///%s" % (tmp_path / "b.db")]}


def test_migrate_round_trip_keeps_fingerprints_and_times(r, redis_url, flags, tmp_path, capsys):
    cache = Cache(r, NAME)
    found = fingerprints(12_000)
    fill(cache, found, spread=30 * DAY)
    r.sadd(keys.SPIDERS, NAME)
    before = sorted(cache.entries())
    path = str(tmp_path / "out.gz")
    assert main(["migrate", "-m", "output", "-f", path] + flags["source"] + [NAME]) == 0
    lines = [json.loads(x) for x in gzip.open(path, "rt")]
    assert lines[0]["version"] == 2
    first = next(x for x in lines if x.get("section") == "cache")["data"][0]
    assert len(base64.b64decode(first[0])) == 12 and isinstance(first[1], int)
    assert main(["migrate", "-m", "input", "-f", path] + flags["target"]) == 0
    target = Cache(redis.Redis.from_url(redis_url + "/1"), NAME)
    assert sorted(target.entries()) == before and target.size() == 12_000
    capsys.readouterr()


def test_migrate_loads_a_file_written_by_01(r, redis_url, flags, tmp_path, capsys):
    legacy = fingerprints(2500)
    path = str(tmp_path / "old.gz")
    records = [{"format": "microspider-migrate", "version": 1, "spider": NAME, "created": T0},
               {"section": "cache", "data": [base64.b64encode(k).decode() for k in legacy[:1000]]},
               {"section": "cache", "data": [base64.b64encode(k).decode() for k in legacy[1000:]]},
               {"end": True, "counts": {"upstream": 0, "cache": 2500, "work": 0, "backlog": 0,
                                        "quarantine": 0, "failures": 0, "items": 0}}]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(x) + "\n" for x in records)
    assert main(["migrate", "-m", "input", "-f", path] + flags["target"]) == 0
    target = Cache(redis.Redis.from_url(redis_url + "/1"), NAME)
    assert all(check_all(target, legacy)) and target.size() == 2500
    assert not any(check_all(target, fingerprints(100, seed=4)))
    capsys.readouterr()


# -- stat --------------------------------------------------------------------------------
def test_stat_shows_how_many_are_due_again_with_recrawl(r, flags, capsys):
    r.sadd(keys.SPIDERS, NAME)
    cache = Cache(r, NAME)
    cache.add(fingerprints(40), now=time.time() - 3 * DAY)
    cache.add(fingerprints(10, seed=2))
    assert main(["stat"] + flags["source"] + ["--recrawl", "1d", NAME]) == 0
    out = capsys.readouterr().out
    assert "cached 50 (40 due again with --recrawl 1d)" in out
    assert main(["stat", "--json"] + flags["source"] + ["--recrawl", "1d", NAME]) == 0
    assert json.loads(capsys.readouterr().out)["cached"] == 50
    assert main(["stat"] + flags["source"] + [NAME]) == 0
    assert "due again" not in capsys.readouterr().out
    assert main(["stat"] + flags["source"] + ["--recrawl", "soon", NAME]) == 2
    assert "--recrawl" in capsys.readouterr().err


# -- end to end: real runs against a local site -------------------------------------------------
RUN = ["--idle", "0.3", "--relay-delay", "0.05", "--timeout", "3"]


@pytest.fixture
def site():
    server = Site(lambda h, path, attempt: (200, {}, '<a href="/child">c</a>')).start()
    yield server
    server.stop()


@pytest.fixture
def conn(redis_url, tmp_path):
    return ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]


ONE = '''
class One(Spider):
    name = "one"
    start_urls = ["{url}/a"]
    def parse(self, response, seed):
        yield {{"_id": seed.url}}
'''


def age_success(r, name, url, seconds):
    """Date the cached success of `url` `seconds` back (what waiting that long would do)."""
    Cache(r, name).add([Seed(url).cache_key], now=time.time() - seconds)


def test_recrawl_fetches_old_successes_again_from_run_and_push(tmp_path, conn, r, site):
    path = write_spider(tmp_path, "one.py", ONE, url=site.url)
    microspider("run", path, *RUN, *conn, cwd=tmp_path, check=0)
    assert site.count("/a") == 1
    proc = microspider("push", "--recrawl", "1h", *conn, path, site.url + "/a", cwd=tmp_path, check=0)
    assert "0 seeds pushed, 1 already known skipped" in proc.stderr
    r.rpush(keys.work("one"), Seed(site.url + "/a").to_json())           # met again in the queue
    microspider("run", path, "--recrawl", "1h", *RUN, *conn, cwd=tmp_path, check=0)
    assert site.count("/a") == 1
    age_success(r, "one", site.url + "/a", 3 * 60)                         # 3 minutes old now
    r.rpush(keys.work("one"), Seed(site.url + "/a").to_json())
    microspider("run", path, "--recrawl", "2m", *RUN, *conn, cwd=tmp_path, check=0)
    assert site.count("/a") == 2
    proc = microspider("push", "--recrawl", "2m", *conn, path, site.url + "/a", cwd=tmp_path, check=0)
    assert "0 seeds pushed, 1 already known skipped" in proc.stderr      # that fetch was just now
    age_success(r, "one", site.url + "/a", 3 * 60)
    proc = microspider("push", "--recrawl", "2m", *conn, path, site.url + "/a", cwd=tmp_path, check=0)
    assert "1 seeds pushed" in proc.stderr
    microspider("run", path, "--recrawl", "2m", *RUN, *conn, cwd=tmp_path, check=0)
    assert site.count("/a") == 3
    microspider("push", "--force", *conn, path, site.url + "/a", cwd=tmp_path, check=0)
    microspider("run", path, *RUN, *conn, cwd=tmp_path, check=0)
    assert site.count("/a") == 4   # --force: fetched again, whatever its age


def test_recrawl_as_spider_attribute_and_config_key(tmp_path, conn, r, site):
    path = write_spider(tmp_path, "one.py", ONE.replace('name = "one"', 'name = "one"\n    recrawl = "2m"'),
                        url=site.url)
    microspider("run", path, *RUN, *conn, cwd=tmp_path, check=0)
    age_success(r, "one", site.url + "/a", 3 * 60)
    microspider("push", *conn, path, site.url + "/a", cwd=tmp_path, check=0)
    microspider("run", path, *RUN, *conn, cwd=tmp_path, check=0)
    assert site.count("/a") == 2
    (tmp_path / "microspider.cfg").write_text("[spider:two]\nrecrawl = 1h\n")
    two = write_spider(tmp_path, "two.py", ONE.replace('"one"', '"two"'), url=site.url + "/two")
    microspider("run", two, *RUN, *conn, cwd=tmp_path, check=0)
    proc = microspider("push", *conn, two, site.url + "/two/a", cwd=tmp_path, check=0)
    assert "1 already known skipped" in proc.stderr
    proc = microspider("run", two, "--recrawl", "0", *conn, cwd=tmp_path)
    assert proc.returncode == 2 and "--recrawl" in proc.stderr


SHORT = ONE.replace('name = "one"', 'name = "one"\n    recrawl = "30s"')


@pytest.mark.parametrize("how", [["run", "--recrawl", "59s"], ["push", "--recrawl", "30s"],
                                 ["stat", "--recrawl", "0.5m"], ["run"]], ids=["run", "push", "stat", "attribute"])
def test_a_recrawl_under_the_cache_minute_is_refused_in_one_line(tmp_path, conn, r, site, how):
    path = write_spider(tmp_path, "one.py", SHORT if how == ["run"] else ONE, url=site.url)
    command, flags = how[0], how[1:]
    target = ["one"] if command == "stat" else [path] + ([site.url + "/a"] if command == "push" else [])
    proc = microspider(command, *flags, *conn, *target, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "--recrawl" in proc.stderr and "at least 1m" in proc.stderr
    assert site.count("/a") == 0 and r.llen(keys.work("one")) == 0   # nothing fetched, nothing pushed


def test_the_cache_refuses_a_recrawl_it_cannot_honour(r):
    cache = Cache(r, NAME)
    key = fingerprints(1)[0]
    cache.add([key], now=T0)
    with pytest.raises(ValueError, match="at least 1m"):
        cache.contains([key], recrawl=59.9, now=T0 + 1)
    with pytest.raises(ValueError, match="at least 1m"):
        cache.due(30, now=T0 + 1)
    assert cache.contains([key], recrawl=60, now=T0 + 1) == [True]


EVERY = '''
class Tick(Spider):
    name = "tick"
    start_urls = ["{url}/start"]
    def parse(self, response, seed):
        if seed.url.endswith("/start"):
            yield Seed("{url}/child")
'''


def test_every_pushes_the_start_seeds_again_until_signalled(tmp_path, conn, site):
    path = write_spider(tmp_path, "tick.py", EVERY, url=site.url)
    proc = start("run", path, "--every", "1s", "--relay-delay", "0.05", *conn, cwd=tmp_path)
    try:
        wait_until(lambda: site.count("/child") >= 1 or proc.poll() is not None, timeout=30,
                   message="the child fetched")
        # on a slow machine several pushes can be fetched before the first parse sent the child,
        # so it may be fetched more than once now; once it is cached, pushes must not fetch it again
        children, starts = site.count("/child"), site.count("/start")
        wait_until(lambda: site.count("/start") >= starts + 2 or proc.poll() is not None, timeout=30,
                   message="two more periodic pushes")
        assert proc.poll() is None                  # finished crawls in between do not end it
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    code, _, err = finish(proc, timeout=30)
    assert code == 0, err[-2000:]
    assert site.count("/start") >= 3 and site.count("/child") == children   # the child stays cached
    assert "start seeds pushed again" in err
    bad = microspider("run", path, "--every", "1s", "--idle", "1", *conn, cwd=tmp_path)
    assert bad.returncode == 2 and "--every" in bad.stderr


def test_a_run_upgrades_a_01_cache_and_keeps_skipping(tmp_path, conn, r, site):
    path = write_spider(tmp_path, "one.py", ONE, url=site.url)
    old = [Seed(site.url + "/old%d" % n) for n in range(3000)]
    r.sadd(keys.cache("one"), *[s.cache_key for s in old])            # 0.1's cache
    r.rpush(keys.work("one"), *[s.to_json() for s in old[:50]], Seed(site.url + "/new").to_json())
    proc = microspider("run", path, *RUN, *conn, cwd=tmp_path, check=0)
    assert site.count("/new") == 1 and not any(site.count("/old%d" % n) for n in range(50))
    assert "0.1 cache moved" in proc.stderr
    assert not r.exists(keys.cache("one"))
    cache = Cache(r, "one")
    assert cache.size() == 3001 and all(cache.contains([s.cache_key for s in old]))
