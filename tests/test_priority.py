"""Seed priority: one list per level, highest first, FIFO within one; on a real redis-server."""
import io
import json

import pytest

from microspider import Seed
from microspider.crawl.relay import WHEN_EMPTY, Relay, relay_once
from microspider.ops.clear import clear
from microspider.ops.dump import dump
from microspider.ops.migrate import check, load, write
from microspider.state import Redis, SpiderState, keys
from microspider.state.queue import LIBRARY, with_library
from microspider.crawl.status import counts, waiting_on


@pytest.fixture
def conn(redis_url):
    c = Redis(redis_url)
    yield c
    c.close()


def seed(label, priority=0, **fields):
    return Seed("http://a.com/%s" % label, priority=priority, **fields)


def urls(raws):
    return [Seed.from_json(raw).url.rsplit("/", 1)[1] for raw in raws]


def mixed(state):
    """Push, interleaved: low0 low1 (0), high0 high1 (5), neg0 (-2), mid0 (1), high2, low2."""
    state.push([seed("low0"), seed("low1"), seed("high0", 5), seed("high1", 5), seed("neg0", -2),
                seed("mid0", 1), seed("high2", 5), seed("low2")])


# -- the seed ---------------------------------------------------------------------------
def test_priority_is_written_right_after_v_and_only_when_not_zero():
    assert seed("x", 7).to_json() == '{"v":1,"priority":7,"url":"http://a.com/x"}'
    assert seed("x", -7, meta={"a": 1}).to_json().startswith('{"v":1,"priority":-7,"url":')
    assert seed("x").to_json() == '{"v":1,"url":"http://a.com/x"}'      # as before 0.4
    assert Seed.from_json(seed("x", 7).to_json()).priority == 7
    assert Seed.from_json('{"v":1,"url":"http://a.com/x"}').priority == 0   # absent: 0
    assert seed("x", 9).replace(age=2).priority == 9


def test_priority_does_not_change_the_fingerprint():
    assert seed("x", 100).fingerprint == seed("x").fingerprint == seed("x", -1).fingerprint


@pytest.mark.parametrize("bad", [True, False, "x", "5", 1.0, None, 2 ** 31, -2 ** 31 - 1])
def test_a_priority_that_is_not_an_int_is_refused(bad):
    with pytest.raises(ValueError, match="priority"):
        Seed("http://a.com/", priority=bad)
    with pytest.raises(ValueError, match="priority"):
        Seed.from_json(json.dumps({"v": 1, "url": "http://a.com/", "priority": bad}))


def test_unknown_fields_are_kept_beside_priority():
    raw = '{"v":1,"priority":3,"url":"http://a.com/","later":{"x":1}}'
    s = Seed.from_json(raw)
    assert s.priority == 3 and s.extra == {"later": {"x": 1}} and s.to_json() == raw


# -- the Lua library reads the level as Python does ----------------------------------------
@pytest.mark.parametrize("raw, level", [
    ('{"v":1,"priority":12,"url":"http://a.com/"}', 12),
    ('{"v":1,"priority":-3,"url":"http://a.com/"}', -3),
    ('{"v":1,"url":"http://a.com/"}', 0),
    ('{"v":1,"url":"http://a.com/","meta":{"priority":9}}', 0),      # not the seed's own
    ('{"url":"http://a.com/","priority":4,"v":1}', 4),               # another writer's order
    ('{"v":1,"priority":2.5,"url":"http://a.com/"}', 0),             # not an int: level 0
    ('{"v":1,"priority":99999999999,"url":"http://a.com/"}', 0),     # out of range: level 0
    ('not json "priority"', 0),
])
def test_the_lua_library_reads_the_level_of_a_raw_seed(r, raw, level):
    assert r.eval(with_library("return seed_priority(ARGV[1])"), 0, raw) == level


def test_lua_and_keys_py_name_the_same_level_keys(r):
    work = keys.work("s")
    derive = with_library("return {queue_level_key(KEYS[1], 0), queue_level_key(KEYS[1], 7), "
                          "queue_level_key(KEYS[1], -7), queue_levels_key(KEYS[1])}")
    assert [k.decode() for k in r.eval(derive, 1, work)] == [
        keys.work_level("s", 0), keys.work_level("s", 7), keys.work_level("s", -7), keys.work_levels("s")]
    assert keys.work_level("s", 0) == work
    assert "local function enqueue(" in LIBRARY   # what other scripts call


# -- the queue --------------------------------------------------------------------------
def test_higher_first_fifo_within_a_level_negative_after_zero(conn, r):
    state = SpiderState(conn, "s")
    mixed(state)
    assert r.llen(keys.work("s")) == 3 and r.llen(keys.work_level("s", 5)) == 3
    assert r.zrange(keys.work_levels("s"), 0, -1, withscores=True) == [(b"-2", -2), (b"1", 1), (b"5", 5)]
    assert urls(state.take("w", 2)) == ["high0", "high1"]
    assert urls(state.take("w", 3)) == ["high2", "mid0", "low0"]     # one take spans levels
    assert urls(state.take("w", 10)) == ["low1", "low2", "neg0"]
    assert state.take("w", 10) == []
    assert not r.exists(keys.work_levels("s"))                       # emptied levels dropped
    assert not r.exists(keys.work_level("s", 5))


def test_a_seed_pushed_later_at_a_higher_level_overtakes(conn):
    state = SpiderState(conn, "s")
    state.push([seed("low%d" % i) for i in range(50)])
    assert urls(state.take("w", 3)) == ["low0", "low1", "low2"]
    state.push([seed("urgent", 10)])
    assert urls(state.take("w", 2)) == ["urgent", "low3"]


def test_a_level_left_recorded_but_empty_is_skipped_and_dropped(conn, r):
    state = SpiderState(conn, "s")
    state.push([seed("a"), seed("b", 3)])
    r.delete(keys.work_level("s", 3))                 # as if emptied by hand
    r.zadd(keys.work_levels("s"), {"8": 8})           # a level recorded with no list
    assert urls(state.take("w", 5)) == ["a"]
    assert not r.exists(keys.work_levels("s"))


def test_requeue_puts_seeds_back_at_the_head_of_their_own_level_in_order(conn, r):
    state = SpiderState(conn, "s")
    mixed(state)
    assert urls(state.take("w", 5)) == ["high0", "high1", "high2", "mid0", "low0"]
    assert state.requeue_inflight("w") == 5
    assert not r.exists(keys.inflight("s", "w"))
    assert urls(state.take("w2", 10)) == ["high0", "high1", "high2", "mid0", "low0", "low1", "low2",
                                          "neg0"]


def test_requeue_unheld_keeps_level_and_order(conn):
    state = SpiderState(conn, "s")
    mixed(state)
    taken = state.take("w", 6)                        # high0 high1 high2 mid0 low0 low1
    assert state.requeue_unheld("w", [taken[1], taken[4]]) == 4
    assert urls(state.inflight_of("w")) == ["high1", "low0"]
    assert urls(state.take("w2", 10)) == ["high0", "high2", "mid0", "low1", "low2", "neg0"]


def test_reclaim_of_a_dead_worker_keeps_level_and_order(conn, r):
    state = SpiderState(conn, "s")
    mixed(state)
    state.heartbeat(["dead"], now=1000.0)
    assert urls(state.take("dead", 4)) == ["high0", "high1", "high2", "mid0"]
    state.push([seed("high3", 5)])
    assert state.reclaim_dead(now=2000.0) == 4
    assert urls(state.take("w", 10)) == ["high0", "high1", "high2", "high3", "mid0", "low0", "low1",
                                         "low2", "neg0"]


def test_the_relay_keeps_each_seeds_priority(conn, r):
    state = SpiderState(conn, "s")
    state.push([seed("low0")])
    state.backlog.add({seed("back_high", 4, age=1).to_json(): 5.0, seed("back_low", age=1).to_json(): 6.0})
    assert Relay(state).move_due(now=10.0) == 2
    assert r.llen(keys.work_level("s", 4)) == 1
    assert urls(state.take("w", 10)) == ["back_high", "low0", "back_low"]


def test_relay_when_empty_counts_every_level(conn, r):
    state = SpiderState(conn, "s")
    state.push([seed("only", -1)])
    state.backlog.add({seed("back", age=1).to_json(): 5.0})
    relay = Relay(state, mode=WHEN_EMPTY)
    assert relay.move_due(now=10.0) == 0              # the work queue is not empty: level -1
    state.take("w", 1)
    assert relay.move_due(now=10.0) == 1


def test_relay_across_dbs_keeps_priority(redis_url):
    conn = Redis(redis_url, work_db=1, backlog_db=2)
    state = SpiderState(conn, "s")
    state.push([seed("only", -1)])
    state.backlog.add({seed("back", 2, age=1).to_json(): 5.0, seed("back0", age=1).to_json(): 5.0})
    assert Relay(state, mode=WHEN_EMPTY).move_due(now=10.0) == 0
    assert relay_once(state, max_age=5) == (2, 0)
    assert urls(state.take("w", 10)) == ["back", "back0", "only"]
    conn.close()


def test_relay_reset_keeps_priority(conn):
    state = SpiderState(conn, "s")
    state.backlog.add({seed("old", 3, age=9).to_json(): float("inf"), seed("new", age=1).to_json(): 1.0})
    assert relay_once(state, max_age=5, clear=True) == (2, 0)
    taken = [Seed.from_json(raw) for raw in state.take("w", 10)]
    assert [(s.url[-3:], s.priority, s.age) for s in taken] == [("old", 3, 0), ("new", 0, 0)]


def test_sends_to_another_spider_go_to_their_levels(conn):
    state = SpiderState(conn, "s")
    state.push([seed("x"), seed("y", 2)], target="other")
    assert urls(SpiderState(conn, "other").take("w", 5)) == ["y", "x"]


def test_the_frontier_admits_each_seed_to_its_level_once(conn, r):
    state = SpiderState(conn, "s")
    assert state.admit([seed("low0"), seed("high0", 5), seed("neg0", -2)]) == (3, 0)
    assert state.admit([seed("high0", 9), seed("low1"), seed("high1", 5)], target="s") == (2, 1)
    assert r.llen(keys.work_level("s", 5)) == 2 and not r.exists(keys.work_level("s", 9))
    assert urls(state.take("w", 10)) == ["high0", "high1", "low0", "low1", "neg0"]


def test_the_frontier_admits_across_dbs_to_the_levels_of_the_work_db(redis_url):
    conn = Redis(redis_url, work_db=1, cache_db=3)
    state = SpiderState(conn, "s")
    assert state.admit([seed("low0"), seed("high0", 5)]) == (2, 0)
    assert conn.work.llen(keys.work_level("s", 5)) == 1 and not conn.cache.exists(keys.work_levels("s"))
    assert urls(state.take("w", 10)) == ["high0", "low0"]
    conn.close()


# -- what measures or lists the work queue counts every level ------------------------------
def test_stat_progress_and_freshness_count_every_level(conn):
    state = SpiderState(conn, "s")
    assert state.is_fresh()
    state.push([seed("neg", -4)])
    assert not state.is_fresh()
    state.record_start(0, 5)
    mixed(state)
    assert counts(conn, "s")["work"] == 9
    assert state.progress()[2] == 9
    assert waiting_on(conn, "s") == "s work 9"
    assert state.queue.length() == 9


def test_dump_lists_higher_levels_first(conn):
    state = SpiderState(conn, "s")
    mixed(state)
    out = io.StringIO()
    assert dump(conn, "s", ["work"], ["url", "priority"], out=out) == 8
    lines = [line.split() for line in out.getvalue().splitlines()]
    assert [(u.rsplit("/", 1)[1], p) for u, p in lines] == [
        ("high0", "5"), ("high1", "5"), ("high2", "5"), ("mid0", "1"), ("low0", "0"), ("low1", "0"),
        ("low2", "0"), ("neg0", "-2")]


def test_clear_work_removes_every_level(conn, r):
    state = SpiderState(conn, "s")
    mixed(state)
    assert clear(conn, None, "s", ["work"]) == {"work": 8}
    assert not any(r.exists(k) for k in (keys.work("s"), keys.work_level("s", 5), keys.work_level("s", -2),
                                         keys.work_levels("s")))
    assert state.take("w", 5) == []


def test_migrate_round_trip_keeps_priorities_and_order(conn, redis_url, tmp_path):
    from microspider.store import SQLiteStore
    state = SpiderState(conn, "s")
    mixed(state)
    state.take("dead", 1)                              # in flight: written as work too
    store = SQLiteStore(str(tmp_path / "a.sqlite3"), "s")
    path = str(tmp_path / "s.migrate")
    assert write(conn, store, "s", path)["work"] == 8
    assert check(path)[1]["work"] == 8
    other = SQLiteStore(str(tmp_path / "b.sqlite3"), "t")
    assert load(conn, other, path, "t")["work"] == 8
    taken = [Seed.from_json(raw) for raw in SpiderState(conn, "t").take("w", 10)]
    assert [(s.url.rsplit("/", 1)[1], s.priority) for s in taken] == [
        ("high1", 5), ("high2", 5), ("high0", 5), ("mid0", 1), ("low0", 0), ("low1", 0), ("low2", 0),
        ("neg0", -2)]


# -- push --priority --------------------------------------------------------------------
@pytest.fixture
def ms(redis_url, tmp_path, monkeypatch, capsys):
    """ms(*args) -> (exit status, stdout, stderr) of `microspider push ...` on the test's Redis."""
    from microspider.cli import main
    monkeypatch.chdir(tmp_path)
    flags = ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]

    def run(*args):
        code = main(["push"] + flags + list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_push_priority_applies_to_urls_and_to_file_seeds_without_their_own(ms, r, tmp_path, conn):
    r.sadd(keys.SPIDERS, "s")
    assert ms("s", "http://a.com/low")[0] == 0
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"url": "http://a.com/file"}\n{"url": "http://a.com/own", "priority": 0}\n'
                     '{"url": "http://a.com/own9", "priority": 9}\n')
    code, _, err = ms("s", "--priority", "7", "--file", str(seeds), "http://a.com/arg")
    assert code == 0 and "4 seeds pushed" in err
    taken = [Seed.from_json(raw) for raw in SpiderState(conn, "s").take("w", 10)]
    assert [(s.url.rsplit("/", 1)[1], s.priority) for s in taken] == [
        ("own9", 9), ("arg", 7), ("file", 7), ("low", 0), ("own", 0)]


@pytest.mark.parametrize("value", ["x", "1.5", str(2 ** 31)])
def test_push_bad_priority_is_one_line_and_exit_2(ms, r, value):
    r.sadd(keys.SPIDERS, "s")
    code, out, err = ms("s", "--priority", value, "http://a.com/")
    assert code == 2 and out == "" and err.count("\n") == 1 and "--priority" in err
    assert not r.keys("microspider:{s}:work*")


def test_push_file_with_a_bad_priority_names_the_line(ms, r, tmp_path):
    r.sadd(keys.SPIDERS, "s")
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"url": "http://a.com/1"}\n{"url": "http://a.com/2", "priority": "high"}\n')
    code, _, err = ms("s", "--file", str(seeds))
    assert code == 2 and "line 2" in err and "priority" in err and err.count("\n") == 1
    assert not r.keys("microspider:{s}:work*")
