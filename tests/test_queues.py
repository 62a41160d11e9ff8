"""Queues, in-flight records, outcomes and the relay, on a real redis-server."""
import math
import threading

import pytest

from microspider import Seed

from microspider.state import keys
from microspider.state import Redis
from microspider.state.cache import Cache
from microspider.crawl.outcome import (Batch, Cached, FetchFailed, Malformed, NoProxyLeft, Outcome,
                                       ParseFailed, Parsed)
from microspider.store import SQLiteStore, failure_doc
from microspider.crawl.relay import backlog_score, retry_delay
from microspider.state import SpiderState
from microspider.config import Settings
from microspider.crawl.relay import NEVER, WHEN_EMPTY, Relay


@pytest.fixture
def conn(redis_url):
    c = Redis(redis_url)
    yield c
    c.close()


def seeds(n, prefix="http://a.com/"):
    return [Seed("%s%d" % (prefix, i)) for i in range(n)]


def test_take_moves_seeds_into_the_workers_in_flight_list(conn, r):
    q = SpiderState(conn, "s")
    q.push(seeds(5))
    taken = q.take("w1", 3)
    assert [Seed.from_json(x).url for x in taken] == ["http://a.com/0", "http://a.com/1", "http://a.com/2"]
    assert r.llen(keys.work("s")) == 2
    assert r.lrange(keys.inflight("s", "w1"), 0, -1) == taken
    assert q.take("w2", 10) and q.take("w3", 10) == []


def test_requeue_puts_in_flight_back_at_the_head_in_order(conn, r):
    q = SpiderState(conn, "s")
    q.push(seeds(4))
    taken = q.take("w1", 2)
    assert q.requeue_inflight("w1") == 2
    assert r.lrange(keys.work("s"), 0, 1) == taken
    assert not r.exists(keys.inflight("s", "w1"))


def test_reclaim_only_touches_workers_whose_heartbeat_expired(conn, r):
    q = SpiderState(conn, "s")
    q.push(seeds(6))
    q.heartbeat(["dead"], now=1000.0)
    q.heartbeat(["alive"], now=5000.0)
    q.take("dead", 2)
    q.take("alive", 2)
    assert q.in_flight() == 4
    assert q.reclaim_dead(now=2000.0) == 2
    assert r.llen(keys.inflight("s", "alive")) == 2 and not r.exists(keys.inflight("s", "dead"))
    assert r.llen(keys.work("s")) == 4
    assert r.zrange(keys.workers("s"), 0, -1) == [b"alive"]


SETTINGS = Settings(max_age=5, relay_delay=1.0)


def test_outcome_commit_writes_everything_and_acknowledges(conn, r):
    q = SpiderState(conn, "s")
    q.push(seeds(3))
    a, b, c = q.take("w", 3)
    out = Outcome("s", SETTINGS, now=100.0)
    ok = Seed.from_json(a)
    out.finish(a); out.succeeded(ok, [("other", Seed("http://b.com/"))])
    out.count("ok"); out.pages += 1
    out.finish(b); out.backlogged(Seed.from_json(b))
    out.finish(c); out.to_quarantine(c)
    q.commit(out, "w", now=1000.0)
    assert r.llen(keys.inflight("s", "w")) == 0
    assert q.cache.contains([ok.cache_key, Seed("http://x.com/").cache_key]) == [True, False]
    assert r.zscore(keys.backlog("s"), Seed.from_json(b).replace(age=1).to_json()) == 101.0
    assert r.lrange(keys.quarantine("s"), 0, -1) == [c]
    assert r.smembers(keys.upstream("other")) == {b"s"}
    assert r.hget(keys.stats("s"), "ok") == b"1" and r.hget(keys.pages("s"), "200") == b"1"
    assert Seed.from_json(r.lpop(keys.work("other"))).url == "http://b.com/"


def test_outcome_across_dbs(redis_url, r):
    conn = Redis(redis_url, work_db=1, backlog_db=2, cache_db=3)
    q = SpiderState(conn, "s")
    q.push(seeds(2))
    a, b = q.take("w", 2)
    out = Outcome("s", SETTINGS, now=4.0)
    out.finish(a); out.succeeded(Seed.from_json(a), [])
    out.finish(b); out.backlogged(Seed.from_json(b))
    q.commit(out, "w")
    assert Cache(conn.cache, "s").size() == 1 and Cache(conn.work, "s").size() == 0
    assert conn.backlog.zcard(keys.backlog("s")) == 1 and conn.work.llen(keys.inflight("s", "w")) == 0
    relay = Relay(SpiderState(conn, "s"))
    assert relay.move_due(now=10.0) == 1 and conn.work.llen(keys.work("s")) == 1
    conn.close()


def batch_of_every_kind():
    """One record of each kind, over the seeds http://a.com/0..5; returns (batch, seeds)."""
    s = seeds(6)
    raw = [x.to_json() for x in s]
    batch = Batch()
    batch.add(Parsed(raw[0], s[0], [{"_id": "i1"}, {"_id": "i2"}], [("other", Seed("http://b.com/"))]))
    batch.add(FetchFailed(raw[1], s[1]))
    batch.add(NoProxyLeft(raw[2], s[2]))
    batch.add(ParseFailed(raw[3], s[3], failure_doc(s[3], "KeyError", "'x'", "")))
    batch.add(Cached(raw[4], s[4]))
    batch.add(Malformed(raw[5]))
    return batch, s


def test_each_record_decides_what_the_store_keeps_and_what_redis_gets(tmp_path):
    batch, s = batch_of_every_kind()
    store = SQLiteStore(str(tmp_path / "store.sqlite3"), "s")
    store.save_failures([failure_doc(s[0], "KeyError", "old", "")])   # fixed by this batch's parse
    batch.save(store)
    assert sorted(i["_id"] for i in store.iter_items()) == ["i1", "i2"]
    assert [d["_id"] for d in store.iter_failures()] == [s[3].fingerprint]
    out = batch.outcome("s", stored=True, settings=SETTINGS, now=100.0)
    assert out.done == [x.to_json() for x in s]
    assert out.stats == {"ok": 1, "items": 2, "fetch_failures": 1, "no_proxy": 1, "parse_failures": 1,
                         "cached": 1, "quarantined": 1, "backlogged": 3}
    assert out.pages == 1 and out.cache_adds == [s[0].cache_key] and out.links == ["other"]
    assert sorted(out.backlog) == sorted(x.replace(age=1).to_json() for x in s[1:4])
    assert out.quarantine == [s[5].to_json()]
    store.close()


def test_a_batch_the_store_refused_sends_its_parsed_seeds_back_to_the_backlog():
    batch, s = batch_of_every_kind()
    out = batch.outcome("s", stored=False, settings=SETTINGS, now=100.0)
    assert out.stats["store_errors"] == 2 and "ok" not in out.stats and "parse_failures" not in out.stats
    assert not out.cache_adds and not out.sends and out.pages == 0
    assert s[0].replace(age=1).to_json() in out.backlog and len(out.backlog) == 4


def test_retry_delay_doubles_and_is_capped():
    assert [retry_delay(a, 1.0) for a in range(5)] == [0, 1, 2, 4, 8]
    assert retry_delay(40, 1.0) == 300.0
    assert backlog_score(6, 5, 1.0, 100.0) == math.inf
    assert backlog_score(2, 5, 1.0, 100.0) == 102.0


def fill_backlog(r, entries):
    r.zadd(keys.backlog("s"), {Seed("http://a.com/%s" % i, age=age).to_json(): score
                               for i, (age, score) in enumerate(entries)})


def test_relay_moves_due_seeds_only_and_never_parked_ones(conn, r):
    fill_backlog(r, [(1, 50.0), (2, 150.0), (6, math.inf)])
    relay = Relay(SpiderState(conn, "s"), max_age=5)
    assert relay.backlog.counts(100.0) == (1, 1, 1)
    assert relay.move_due(now=100.0) == 1
    assert relay.move_due(now=200.0) == 1
    assert relay.move_due(now=1e12) == 0
    assert r.zcard(keys.backlog("s")) == 1 and r.llen(keys.work("s")) == 2


def test_relay_mode_when_empty_and_never(conn, r):
    fill_backlog(r, [(1, 1.0)])
    r.rpush(keys.work("s"), Seed("http://busy.com/").to_json())
    assert Relay(SpiderState(conn, "s"), mode=WHEN_EMPTY).move_due(now=10.0) == 0
    assert Relay(SpiderState(conn, "s"), mode=NEVER).move_due(now=10.0) == 0
    r.delete(keys.work("s"))
    assert Relay(SpiderState(conn, "s"), mode=NEVER).move_due(now=10.0) == 0
    assert Relay(SpiderState(conn, "s"), mode=WHEN_EMPTY).move_due(now=10.0) == 1


def test_unpark_and_move_all(conn, r):
    fill_backlog(r, [(6, math.inf), (9, math.inf), (2, 500.0)])
    relay = Relay(SpiderState(conn, "s"), max_age=7, relay_delay=1.0)
    assert relay.unpark(now=100.0) == 1            # age 6 <= 7 comes back, age 9 stays
    assert relay.backlog.counts(100.0) == (0, 2, 1)
    assert relay.move_all(reset_age=True) == 3
    ages = sorted(Seed.from_json(x).age for x in r.lrange(keys.work("s"), 0, -1))
    assert ages == [0, 0, 0] and r.zcard(keys.backlog("s")) == 0


def test_concurrent_relays_move_each_seed_exactly_once(redis_url, r):
    n = 20000
    fill_backlog(r, [(1, float(i % 100)) for i in range(n)])
    moved = []

    def relay_all():
        c = Redis(redis_url)
        moved.append(Relay(SpiderState(c, "s")).move_due(now=1000.0))
        c.close()

    threads = [threading.Thread(target=relay_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    work = r.lrange(keys.work("s"), 0, -1)
    assert sum(moved) == n == len(work) == len(set(work))
    assert r.zcard(keys.backlog("s")) == 0


def test_unpark_reaches_every_parked_seed_in_one_call(conn, r):
    # mixed: half stay parked (over age), half come back; more than one batch of each
    fill_backlog(r, [(9 if i % 2 else 3, math.inf) for i in range(5000)])
    assert Relay(SpiderState(conn, "s"), max_age=5).unpark(now=100.0) == 2500
    assert SpiderState(conn, "s").backlog.counts(100.0) == (0, 2500, 2500)


def test_requeue_unheld_returns_seeds_of_a_lost_take(conn, r):
    q = SpiderState(conn, "s")
    q.push(seeds(6))
    held = q.take("w", 2)
    q.take("w", 3)                                     # its reply "never arrived"
    held.append(held[0])                               # a duplicate held twice is kept twice
    r.rpush(keys.inflight("s", "w"), held[0])
    assert q.requeue_unheld("w", held) == 3
    assert sorted(r.lrange(keys.inflight("s", "w"), 0, -1)) == sorted(held)
    assert [Seed.from_json(x).url for x in r.lrange(keys.work("s"), 0, -1)] == [
        "http://a.com/%d" % i for i in (2, 3, 4, 5)]
