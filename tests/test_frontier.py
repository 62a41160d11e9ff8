"""The frontier: every URL a spider meets is queued once (real Redis, real crawls)."""
import os
import signal
import threading

import pytest

from microspider import Seed
from microspider.crawl.outcome import Outcome
from microspider.ops.clear import clear
from microspider.state import SpiderState, keys
from microspider.state.connection import Redis
from tests.crawl import children, finish, start, stat, write_spider
from tests.cluster import cluster_url, redis_cluster  # noqa: F401 (fixtures)
from tests.servers import Site, wait_until

T0 = 1_800_000_000.0


@pytest.fixture
def state(redis_url, r):
    return SpiderState(Redis(redis_url), "f")


def queued(r, name="f"):
    return [Seed.from_json(x) for x in r.lrange(keys.work(name), 0, -1)]


def dups(r, name="f"):
    return int(r.hget(keys.stats(name), "duplicates") or 0)


def test_a_url_is_queued_once_whatever_state_it_is_in(state, r):
    a, b, c = (Seed("http://a.com/%d" % n) for n in range(3))
    assert state.admit([a, a.replace(meta={"late": 1}), b]) == (2, 1)
    assert [(s.url, s.meta) for s in queued(r)] == [(a.url, {}), (b.url, {})]   # the first meta wins
    taken = state.take("w1", 2)                                      # in flight
    assert state.admit([a, b]) == (0, 2)
    out = Outcome("f")
    out.finish(taken[0])
    out.backlogged(a)                                                # a to the backlog
    out.finish(taken[1])
    out.succeeded(b, [("f", c)])                                     # b done; its link c admitted
    state.commit(out, "w1")
    assert r.zcard(keys.backlog("f")) == 1 and [s.url for s in queued(r)] == [c.url]
    assert state.admit([a, b, c]) == (0, 3)                          # backlogged, done, queued
    assert state.cache.size() == 1 and state.cache.known() == 3
    assert dups(r) == 1 + 2 + 3
    assert state.cache.contains([a.cache_key, b.cache_key, c.cache_key]) == [False, True, False]


def test_sends_to_another_spider_are_admitted_by_its_frontier(state, r):
    seeds = [Seed("http://a.com/list"), Seed("http://a.com/hotel/1"), Seed("http://a.com/hotel/1")]
    state.push(seeds[:1])
    for round_ in range(2):   # the same page parsed twice (at-least-once) sends nothing new
        raw = state.take("w1", 1)[0] if round_ == 0 else None
        out = Outcome("f")
        if raw:
            out.finish(raw)
        out.succeeded(seeds[0], [("info", seeds[1]), ("info", seeds[2])])
        state.commit(out, "w1")
    assert [s.url for s in queued(r, "info")] == ["http://a.com/hotel/1"]
    assert dups(r, "info") == 3 and dups(r) == 0


def test_force_recrawl_and_no_cache(state, r):
    a = Seed("http://a.com/")
    state.cache.add([a.cache_key], now=T0)
    assert state.admit([a], now=T0 + 7200) == (0, 1)                 # done, no recrawl: forever
    state.cache.record_settings(recrawl=3600)                        # what a run with --recrawl 1h records
    assert state.admit([a], now=T0 + 1800) == (0, 1)                 # done and fresh
    assert state.admit([a], now=T0 + 7200) == (1, 0)                 # done too long ago: queued
    assert state.admit([a], now=T0 + 7200) == (0, 1)                 # ... once
    assert state.admit([a], force=True) == (1, 0)                    # push --force: queued whatever
    state.cache.add([a.cache_key], now=T0)
    assert state.admit([a], now=T0 + 60, recrawl=30 * 60) == (0, 1)  # push --recrawl overrides
    state.cache.record_settings(no_cache=True)
    assert state.admit([a], now=T0 + 60) == (1, 0)                   # --no-cache: done counts for nothing
    assert state.cache.size() == 0 and state.cache.known() == 1


def test_no_cache_success_forgets_the_url(state, r):
    from microspider.config import Settings

    a = Seed("http://a.com/")
    state.admit([a])
    raw = state.take("w1", 1)[0]
    out = Outcome("f", Settings(no_cache=True))
    out.finish(raw)
    out.succeeded(a, [])
    state.commit(out, "w1")
    assert state.cache.known() == 0 and state.admit([a]) == (1, 0)


def one_done_one_backlogged(state, seeds):
    """The first two queued seeds taken: seeds[0] succeeds, seeds[1] goes to the backlog."""
    done, failed = state.take("w1", 2)
    out = Outcome(state.name)
    out.finish(done)
    out.succeeded(seeds[0], [])
    out.finish(failed)
    out.backlogged(seeds[1])
    state.commit(out, "w1")


def test_clearing_a_queue_forgets_its_urls_but_not_the_done_ones(state, r):
    seeds = [Seed("http://a.com/%d" % n) for n in range(5)]
    state.admit(seeds)
    one_done_one_backlogged(state, seeds)
    assert clear(state.redis, None, "f", ["work"]) == {"work": 3}
    assert state.cache.known() == 2                                 # seeds[0] done, seeds[1] backlogged
    assert clear(state.redis, None, "f", ["backlog"]) == {"backlog": 1}
    assert state.admit(seeds) == (4, 1)
    assert clear(state.redis, None, "f", ["cache"])["cache"] == 1
    assert state.cache.known() == 0 and state.admit(seeds) == (5, 0)


def test_admission_spans_a_work_db_and_a_cache_db(redis_url, r):
    split = SpiderState(Redis(redis_url, work_db=0, cache_db=3), "f")
    seeds = [Seed("http://a.com/%d" % n) for n in range(3)]
    assert split.admit(seeds + seeds[:1]) == (3, 1)
    assert len(queued(r)) == 3 and dups(r) == 1
    assert r.dbsize() > 0 and not r.keys(keys.cache_bucket("f", "*"))   # the frontier is in db 3
    raw = split.take("w1", 1)[0]
    out = Outcome("f")
    out.finish(raw)
    out.succeeded(seeds[0], [("f", seeds[1]), ("f", Seed("http://a.com/new"))])
    split.commit(out, "w1")
    assert [s.url for s in queued(r)][-1] == "http://a.com/new" and dups(r) == 2
    assert split.cache.size() == 1 and split.cache.known() == 4


def test_start_seeds_and_retry_go_through_the_frontier(state, r):
    a, b = Seed("http://a.com/1"), Seed("http://a.com/2")
    state.push_start([("f", a), ("f", a), ("other", b)])
    assert [s.url for s in queued(r)] == [a.url] and [s.url for s in queued(r, "other")] == [b.url]
    state.push_start([("f", a)], force=True)                      # run --every: queued again
    assert len(queued(r)) == 2


# -- a crawl of a complete graph, with kill -9 -----------------------------------------
PAGES = 1000
GRAPH_SPIDER = '''
class Graph(Spider):
    name = "graph"
    start_urls = ["{url}/p/0"]
    pool = 32

    def parse(self, response, seed):
        for href in response.css("a::attr(href)").getall():
            yield Seed(response.urljoin(href))
        yield {{"_id": seed.url, "title": response.css("title::text").get()}}
'''


def graph_site(pages, delay):
    """Every page links to every page (itself included); answers after `delay` seconds."""
    links = "".join('<a href="/p/%d">%d</a>' % (n, n) for n in range(pages)).encode()
    pause = threading.Event()

    def route(handler, path, attempt):
        pause.wait(delay)
        n = path.rsplit("/", 1)[1]
        return 200, {"Content-Type": "text/html"}, b"<title>page %s</title>" % n.encode() + links

    return Site(route).start()


@pytest.mark.parametrize("pages", [400, pytest.param(PAGES, marks=pytest.mark.slow)])
def test_a_complete_graph_is_fetched_once_per_page_even_through_kill_9(tmp_path, redis_url, r, pages):
    site = graph_site(pages, delay=0.01)
    conn = ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]
    try:
        path = write_spider(tmp_path, "graph.py", GRAPH_SPIDER, url=site.url)
        proc = start("run", path, "-w", "2", "--idle", "0.5", *conn, cwd=tmp_path)
        wait_until(lambda: int(r.hget(keys.stats("graph"), "ok") or 0) >= pages // 10, timeout=60,
                   message="a tenth of the pages done")
        victim = wait_until(lambda: children(proc.pid), message="worker processes")[0]
        os.kill(victim, signal.SIGKILL)
        code, _, err = finish(proc, timeout=180)
        figures = stat(tmp_path, path, *conn)
    finally:
        site.stop()
    assert code == 0, err[-2000:]
    hits = {p: n for p, n in site.hits.items()}
    assert sorted(hits) == sorted("/p/%d" % n for n in range(pages))   # every page, nothing else
    twice = [p for p, n in hits.items() if n > 1]
    assert all(n <= 2 for n in hits.values())
    assert len(twice) <= 32 + 32    # only what the killed worker held (its pool and its batch)
    assert figures["items"] == pages and figures["cached"] == pages and figures["work"] == 0
    assert figures["duplicates"] >= pages * (pages - 1)     # every committed parse yielded every link


def test_admissions_on_a_cluster_land_on_each_spider_slot(cluster_url):
    from tests.test_cluster import masters_of

    names = ["f_list"] + ["f_info%d" % i for i in range(40)]
    homes = masters_of(cluster_url, names)
    other = next(n for n in names[1:] if homes[n] != homes["f_list"])   # a spider on another master
    redis = Redis(cluster_url)
    lists, info = SpiderState(redis, "f_list"), SpiderState(redis, other)
    hotels = [Seed("http://a.com/hotel/%d" % n) for n in range(3)]
    assert lists.admit([Seed("http://a.com/list"), Seed("http://a.com/list")]) == (1, 1)
    raw = lists.take("w1", 1)[0]
    out = Outcome("f_list")
    out.finish(raw)
    out.succeeded(Seed("http://a.com/list"), [(other, s) for s in hotels + hotels[:1]]
                  + [("f_list", Seed("http://a.com/list"))])
    lists.commit(out, "w1")
    assert info.admit(hotels) == (0, 3)
    assert [Seed.from_json(x).url for x in redis.work.lrange(keys.work(other), 0, -1)] == \
        [s.url for s in hotels]
    assert int(redis.work.hget(keys.stats(other), "duplicates")) == 1 + 3
    assert int(redis.work.hget(keys.stats("f_list"), "duplicates")) == 2
    assert lists.cache.size() == 1 and info.cache.known() == 3


def test_migrated_queues_are_known_to_the_frontier(tmp_path, redis_url, r):
    from microspider.ops import migrate
    from microspider.store import open_store

    state = SpiderState(Redis(redis_url), "f")
    store = open_store("sqlite:///%s" % (tmp_path / "store.sqlite3"), "microspiders", "f")
    seeds = [Seed("http://a.com/%d" % n) for n in range(5)]
    state.admit(seeds[:4])
    one_done_one_backlogged(state, seeds)
    path = str(tmp_path / "f.migrate")
    migrate.write(state.redis, store, "f", path)
    r.flushdb()
    assert state.admit(seeds[:1]) == (1, 0)                       # a fresh Redis knows nothing
    r.flushdb()
    migrate.check(path)
    migrate.load(state.redis, store, path, "f")
    assert state.admit(seeds) == (1, 4)          # done, backlogged, queued (2): known; the 5th is new
    assert state.cache.size() == 1 and state.cache.known() == 5


def test_duplicates_reach_stat_and_metrics():
    from microspider.web.metrics import exposition

    stat = {"work": 0, "backlog": 0, "in_flight": 0, "cached": 1, "items": 1, "failures": 0, "workers": 0,
            "sessions": 0, "sessions_retired": 0, "duplicates": 41, "throttled": 0, "cooling": 0,
            "robots_denied": 0, "render_fallbacks": 0}
    text = exposition(lambda: {"f": (stat, 1)}).decode()
    assert 'microspider_duplicates_total{spider="f"} 41.0' in text
