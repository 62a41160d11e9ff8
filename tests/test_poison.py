"""A parse that hangs and seeds that kill their worker: the crawl still completes, by itself.

Real processes, a real Redis, a local site.  Three chained spiders would show the
same; one spider with every kind of poison keeps the test short.
"""
import re
import time

import pytest

from microspider.state import Redis, SpiderState, keys
from microspider.store import open_store
from tests.crawl import finish, start, stat, write_spider
from tests.servers import Site, wait_until

POISON_SPIDER = '''
import ctypes, os, signal

class Poison(Spider):
    name = "poison"
    start_urls = ["{url}/"]

    def parse(self, response, seed):
        path = seed.url.rsplit("/", 1)[1]
        if not path:
            for n in range(30):
                yield Seed("{url}/ok%d" % n)
            for bad in ("spin", "blocked", "exit", "segv"):
                yield Seed("{url}/" + bad)
            return
        if path == "spin":
            while True:              # never yields: only the SIGALRM watchdog can end it
                pass
        if path == "blocked":        # a hang no handler reaches (a library took SIGALRM over)
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            while True:
                pass
        if path == "exit":
            os._exit(3)
        if path == "segv":
            ctypes.string_at(0)
        yield {{"_id": path}}
'''


@pytest.fixture
def conn_args(redis_url, tmp_path):
    return ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]


def test_hung_and_crashing_parses_end_as_failures_and_the_crawl_completes(tmp_path, conn_args, r):
    site = Site(lambda h, p, a: (200, {}, "<p>%s</p>" % p)).start()
    try:
        path = write_spider(tmp_path, "poison.py", POISON_SPIDER, url=site.url)
        proc = start("run", path, "--parse-timeout", "1", "--max-crashes", "2", "--max-age", "0",
                     "--relay-delay", "0.05", "--idle", "0.5", *conn_args, cwd=tmp_path)
        code, _, err = finish(proc, timeout=150)
    finally:
        site.stop()
    assert code == 0, err[-3000:]
    store = open_store("sqlite:///%s" % (tmp_path / "store.sqlite3"), "microspiders", "poison")
    items = {i["_id"] for i in store.iter_items()}
    assert items == {"ok%d" % n for n in range(30)}          # every good page, none lost
    errors = {d["url"].rsplit("/", 1)[1]: d["error"] for d in store.iter_failures()}
    assert errors == {"spin": "ParseTimeout", "blocked": "WorkerCrashed", "exit": "WorkerCrashed",
                      "segv": "WorkerCrashed"}
    s = stat(tmp_path, path, *conn_args)
    assert s["failures_by_error"] == {"ParseTimeout": 1, "WorkerCrashed": 3}
    assert s["backlog_over_age"] == 4 and s["work"] == 0 and s["in_flight"] == 0
    parked = {raw for raw in r.zrangebyscore(keys.backlog("poison"), "+inf", "+inf")}
    assert {re.search(rb"/(\w+)\"", raw).group(1) for raw in parked} == {
        b"spin", b"blocked", b"exit", b"segv"}
    assert "stored as WorkerCrashed" in err and "silent for" in err


@pytest.mark.slow   # heavier run: bash scripts/test.sh -m slow (docs/testing.md)
def test_no_seed_is_redelivered_while_its_worker_lives_though_the_relay_lock_is_held(
        tmp_path, redis_url, r):
    """The relay waits on a lock held elsewhere (60 s); the heartbeat does not wait with it."""
    import redis

    hits = []
    site = Site(lambda h, p, a: (hits.append(p), (200, {}, "x"))[1]).start()
    conn = ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3"),
            "-b", "1"]   # backlog in another db: every relay pass takes the lock
    try:
        path = write_spider(tmp_path, "slow.py", '''
import time

class Slow(Spider):
    name = "slow"
    start_urls = ["{url}/slow"]

    def parse(self, response, seed):
        time.sleep(22)             # cooperative (patched): longer than the 15 s heartbeat TTL
        yield {{"_id": "slow"}}
''', url=site.url)
        db1 = redis.Redis.from_url(redis_url, db=1)       # the lock lives beside the backlog
        db1.set(keys.relaylock("slow"), "someone-else", px=60000)
        proc = start("run", path, "--idle", "0.3", *conn, cwd=tmp_path)
        wait_until(lambda: hits == ["/slow"], timeout=30)

        other = SpiderState(Redis(redis_url, backlog_db=1), "slow")   # another machine's reclaim
        checks = 0
        while not r.hget(keys.stats("slow"), "ok"):      # the slow parse is done and acknowledged
            assert other.reclaim_dead() == 0 and proc.poll() is None
            checks += 1
            time.sleep(1)
        db1.delete(keys.relaylock("slow"))               # let the relay (and so the run) go on
        code, _, err = finish(proc, timeout=60)
    finally:
        redis.Redis.from_url(redis_url, db=1).delete(keys.relaylock("slow"))
        site.stop()
    assert code == 0, err[-2000:]
    assert checks >= 15                     # we kept checking through the slow parse
    assert hits == ["/slow"]                # fetched once: never redelivered
    assert "held elsewhere" in err
