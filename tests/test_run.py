"""`microspider run` end to end: real processes, a real Redis, local faulty sites."""
import os
import signal
import time

import pytest

from microspider import Seed

from microspider.state import keys
from microspider.state.cache import Cache
from microspider.store import open_store
from tests.crawl import children, finish, microspider, start, stat, write_spider
from tests.servers import Site, wait_until

FAST = ["--idle", "0.3", "--relay-delay", "0.05", "--timeout", "3"]


@pytest.fixture
def conn_args(redis_url, tmp_path):
    return ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]


def store(tmp_path, name):
    return open_store("sqlite:///%s" % (tmp_path / "store.sqlite3"), "microspiders", name)


PAGES_SPIDER = '''
class Pages(Spider):
    name = "pages"
    start_urls = ["{url}/"]

    def parse(self, response, seed):
        if seed.url.endswith("/"):
            for a in response.soup.select("a"):
                yield Seed("{url}" + a["href"], meta={{"n": a.text}})
            return
        h1 = response.soup.h1
        if h1 is None:
            raise ValueError("captcha page")
        yield {{"_id": seed.url, "title": h1.text, "n": seed.meta["n"]}}
'''


def faulty_route(handler, path, attempt):
    """/ links to /p/0../p/19; some pages fail in chosen ways."""
    if path == "/":
        return 200, {}, "".join('<a href="/p/%d">%d</a>' % (i, i) for i in range(20))
    n = int(path.rsplit("/", 1)[1])
    if n == 1 and attempt <= 2:
        return 503, {}, "busy"                     # recovers within the immediate retries
    if n == 2:
        return 503, {}, "always busy"              # fetch failure route, ends over max-age
    if n == 3:
        return 200, {}, "<p>访问过于频繁 captcha</p>"  # parse failure route, ends over max-age
    if n == 4 and attempt == 1:
        return 200, {}, "<p>captcha once</p>"      # fails once, then succeeds
    if n == 5 and attempt <= 2:
        return "drop"                              # dropped connection
    if n == 6:
        return 404, {}, "gone"                     # non-retryable status: stored as failure
    return 200, {}, "<h1>page %d</h1>" % n


def test_failure_routes_end_to_end(tmp_path, conn_args, r):
    site = Site(faulty_route).start()
    try:
        path = write_spider(tmp_path, "pages.py", PAGES_SPIDER, url=site.url)
        proc = microspider("run", path, "--retry", "2", "--max-age", "2", *FAST, *conn_args,
                           cwd=tmp_path, check=0)
    finally:
        site.stop()
    s = store(tmp_path, "pages")
    items = {i["_id"]: i for i in s.iter_items()}
    expected_ok = {site.url + "/p/%d" % n for n in range(20)} - {site.url + "/p/%d" % n for n in (2, 3, 6)}
    assert set(items) == expected_ok
    assert items[site.url + "/p/7"] == {"_id": site.url + "/p/7", "title": "page 7", "n": "7"}
    failures = {d["url"]: d for d in s.iter_failures()}
    assert set(failures) == {site.url + "/p/3", site.url + "/p/6"}      # p/4's record was removed
    captcha = failures[site.url + "/p/3"]
    assert captcha["status"] == 200 and "访问过于频繁" in captcha["body"].decode("utf-8")
    assert captcha["error"] == "ValueError" and "captcha page" in captcha["traceback"]
    assert captcha["attempts"] == 3 and captcha["first_failed"] < captcha["last_failed"]
    assert captcha["seed"]["meta"] == {"n": "3"}
    assert failures[site.url + "/p/6"]["error"] == "HTTPStatusError"
    backlog = {Seed.from_json(raw).url: score
               for raw, score in r.zrange(keys.backlog("pages"), 0, -1, withscores=True)}
    assert set(backlog) == {site.url + "/p/%d" % n for n in (2, 3, 6)}
    assert all(score == float("inf") for score in backlog.values())  # parked over max-age
    assert site.count("/p/2") == 3 * 3                      # 3 passes x (1 + 2 retries)
    st = stat(tmp_path, path, *conn_args)
    assert st["backlog_over_age"] == 3 and st["work"] == 0 and st["in_flight"] == 0
    assert st["cached"] == 18 and st["items"] == 17 and st["failures"] == 2
    assert st["failures_by_error"] == {"ValueError": 1, "HTTPStatusError": 1}
    assert "finished" in proc.stderr and "ok 18" in proc.stderr


def test_no_backlog_drops_and_counts(tmp_path, conn_args, r):
    site = Site(faulty_route).start()
    try:
        path = write_spider(tmp_path, "pages.py", PAGES_SPIDER, url=site.url)
        microspider("run", path, "--retry", "0", "--no-backlog", *FAST, *conn_args, cwd=tmp_path, check=0)
    finally:
        site.stop()
    assert r.zcard(keys.backlog("pages")) == 0
    stats = r.hgetall(keys.stats("pages"))
    # p1 (503 on the first try), p2, p5 (dropped) fail to fetch; p3, p4, p6 fail to parse
    assert int(stats[b"dropped"]) == 6
    assert store(tmp_path, "pages").count_failures() == 3


def test_cache_skips_seen_seeds_unless_no_cache(tmp_path, conn_args, r):
    hits = []
    site = Site(lambda h, p, a: (hits.append(p), (200, {}, "<h1>x</h1>" if p != "/" else ""))[1]).start()
    try:
        path = write_spider(tmp_path, "one.py", '''
class One(Spider):
    name = "one"
    start_urls = ["{url}/a"]
    def parse(self, response, seed):
        yield {{"_id": seed.url}}
''', url=site.url)
        microspider("run", path, *FAST, *conn_args, cwd=tmp_path, check=0)
        assert hits == ["/a"]
        # a second run: not a fresh crawl, so no start seeds; a pushed cached URL is skipped
        microspider("push", *conn_args, path, site.url + "/a", cwd=tmp_path, check=0)
        assert r.llen(keys.work("one")) == 0
        # a cached seed met in the queue (sent again by another page) is skipped
        r.rpush(keys.work("one"), Seed(site.url + "/a").to_json())
        microspider("run", path, *FAST, *conn_args, cwd=tmp_path, check=0)
        assert hits == ["/a"] and r.hget(keys.stats("one"), "cached") == b"1"
        # push --force: fetched again although cached
        microspider("push", "--force", *conn_args, path, site.url + "/a", cwd=tmp_path, check=0)
        microspider("run", path, *FAST, *conn_args, cwd=tmp_path, check=0)
        assert hits == ["/a", "/a"]
        # --no-cache: a cached seed met in the queue is fetched
        r.rpush(keys.work("one"), Seed(site.url + "/a").to_json())
        microspider("run", path, "--no-cache", *FAST, *conn_args, cwd=tmp_path, check=0)
        assert hits == ["/a", "/a", "/a"]
    finally:
        site.stop()


def test_start_seeds_pushed_once_with_two_workers(tmp_path, conn_args):
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    try:
        path = write_spider(tmp_path, "s.py", '''
class S(Spider):
    name = "s"
    start_urls = ["{url}/start"]
    def parse(self, response, seed):
        return ()
''', url=site.url)
        microspider("run", path, "-w", "2", *FAST, *conn_args, cwd=tmp_path, check=0)
        microspider("run", path, "-w", "2", *FAST, *conn_args, cwd=tmp_path, check=0)
    finally:
        site.stop()
    assert site.count("/start") == 1


def test_relay_mode_never_leaves_backlog_alone(tmp_path, conn_args, r):
    site = Site(faulty_route).start()
    try:
        path = write_spider(tmp_path, "pages.py", PAGES_SPIDER, url=site.url)
        microspider("run", path, "--relay-mode", "2", "--retry", "0", *FAST, *conn_args,
                    cwd=tmp_path, check=0)
    finally:
        site.stop()
    assert site.count("/p/2") == 1      # never relayed
    ages = [Seed.from_json(x).age for x in r.zrange(keys.backlog("pages"), 0, -1)]
    assert ages and set(ages) == {1}


def slow_site(delay=30.0, n=40):
    import threading

    release = threading.Event()

    def route(handler, path, attempt):
        if path == "/":
            return 200, {}, "".join('<a href="/p/%d">x</a>' % i for i in range(n))
        release.wait(delay)
        return 200, {}, "<h1>ok</h1>"

    site = Site(route)
    site.release = release
    return site.start()


SLOW_SPIDER = '''
class Slow(Spider):
    name = "slow"
    start_urls = ["{url}/"]
    def parse(self, response, seed):
        if seed.url.endswith("/"):
            for a in response.soup.select("a"):
                yield Seed("{url}" + a["href"])
        else:
            yield {{"_id": seed.url}}
'''


# the impersonating transport too (pip install microspider[impersonate]): the same guarantees
TRANSPORTS = pytest.mark.parametrize("transport", [[], ["--impersonate", "chrome"]],
                                     ids=["default", "impersonate"])


@TRANSPORTS
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_puts_in_flight_seeds_back_and_exits_zero(tmp_path, conn_args, r, sig, transport):
    site = slow_site()
    try:
        path = write_spider(tmp_path, "slow.py", SLOW_SPIDER, url=site.url)
        proc = start("run", path, "-w", "2", "--pool", "10", "--timeout", "60", *transport, *conn_args,
                     cwd=tmp_path)
        wait_until(lambda: _in_flight(r, "slow") >= 20, timeout=30, message="seeds in flight")
        sent = time.monotonic()
        os.kill(proc.pid, sig)
        code, _, err = finish(proc, timeout=20)
        assert code == 0, err[-2000:]
        assert time.monotonic() - sent < 10
    finally:
        site.release.set()
        site.stop()
    assert _in_flight(r, "slow") == 0
    assert r.llen(keys.work("slow")) == 40 and r.zcard(keys.workers("slow")) == 0


def _in_flight(r, name):
    return sum(r.llen(keys.inflight(name, w.decode())) for w in r.zrange(keys.workers(name), 0, -1))


@TRANSPORTS
def test_kill_9_of_a_worker_loses_nothing(tmp_path, conn_args, r, transport):
    site = slow_site(delay=30.0)
    try:
        path = write_spider(tmp_path, "slow.py", SLOW_SPIDER, url=site.url)
        proc = start("run", path, "-w", "2", "--pool", "10", "--timeout", "60", *FAST[:2], *transport,
                     *conn_args, cwd=tmp_path)
        wait_until(lambda: _in_flight(r, "slow") >= 20, timeout=30, message="seeds in flight")
        victims = wait_until(lambda: children(proc.pid), message="worker processes")
        os.kill(victims[0], signal.SIGKILL)
        wait_until(lambda: len(children(proc.pid)) == 2 and victims[0] not in children(proc.pid),
                   timeout=15, message="the worker restarted")
        site.release.set()
        code, _, err = finish(proc, timeout=60)
    finally:
        site.release.set()
        site.stop()
    assert code == 0, err[-2000:]
    assert "requeued; restarted" in err
    items = {i["_id"] for i in store(tmp_path, "slow").iter_items()}
    assert len(items) == 40 and Cache(r, "slow").size() == 41
    assert r.llen(keys.work("slow")) == 0 and _in_flight(r, "slow") == 0


def test_kill_9_of_the_whole_run_is_reclaimed_by_the_next_run(tmp_path, conn_args, r):
    site = slow_site(delay=30.0)
    try:
        path = write_spider(tmp_path, "slow.py", SLOW_SPIDER, url=site.url)
        proc = start("run", path, "--pool", "10", "--timeout", "60", *conn_args, cwd=tmp_path)
        wait_until(lambda: _in_flight(r, "slow") >= 10, timeout=30, message="seeds in flight")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        held = _in_flight(r, "slow")
        assert held >= 10
        # the heartbeat of the dead workers has expired (what time would do, without waiting)
        for w in r.zrange(keys.workers("slow"), 0, -1):
            r.zadd(keys.workers("slow"), {w: 1.0})
        site.release.set()
        proc = microspider("run", path, *FAST, *conn_args, cwd=tmp_path, check=0)
    finally:
        site.release.set()
        site.stop()
    assert "seeds of dead workers back in the work queue" in proc.stderr
    assert len({i["_id"] for i in store(tmp_path, "slow").iter_items()}) == 40


def test_malformed_seeds_are_quarantined_and_the_worker_goes_on(tmp_path, conn_args, r):
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    try:
        path = write_spider(tmp_path, "q.py", '''
class Q(Spider):
    name = "q"
    def parse(self, response, seed):
        yield {{"_id": seed.url}}
''')
        garbage = [b"not json", b'{"url": 5}', b'{"url": "ftp://x"}', b"[]"]
        r.rpush(keys.work("q"), *garbage)
        r.rpush(keys.work("q"), Seed(site.url + "/ok").to_json())
        proc = microspider("run", path, *FAST, *conn_args, cwd=tmp_path, check=0)
    finally:
        site.stop()
    assert r.lrange(keys.quarantine("q"), 0, -1) == garbage
    assert [i["_id"] for i in store(tmp_path, "q").iter_items()] == [site.url + "/ok"]
    assert "malformed seed quarantined" in proc.stderr
    assert stat(tmp_path, path, *conn_args)["quarantined"] == 4


def test_garbage_from_parse_takes_the_failure_route(tmp_path, conn_args, r):
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    try:
        path = write_spider(tmp_path, "g.py", '''
class G(Spider):
    name = "g"
    start_urls = ["{url}/a", "{url}/b", "{url}/c"]
    def parse(self, response, seed):
        if seed.url.endswith("a"):
            yield 42
        elif seed.url.endswith("b"):
            yield Seed("notaurl")
        else:
            yield {{"_id": object()}}
''', url=site.url)
        microspider("run", path, "--max-age", "0", *FAST, *conn_args, cwd=tmp_path, check=0)
    finally:
        site.stop()
    errors = {d["url"].rsplit("/", 1)[1]: d["error"] for d in store(tmp_path, "g").iter_failures()}
    assert errors == {"a": "TypeError", "b": "BadSeed", "c": "TypeError"}
    assert r.zcard(keys.backlog("g")) == 3


CHAIN = {
    "city.py": '''
class City(Spider):
    name = "city"
    start_urls = ["{url}/cities"]
    def parse(self, response, seed):
        for a in response.soup.select("a"):
            self.send(Seed("{url}" + a["href"], meta={{"city": a.text}}), to="hotels")
''',
    "hotels.py": '''
class Hotels(Spider):
    name = "hotels"
    upstream = ["city"]
    def parse(self, response, seed):
        for a in response.soup.select("a.h"):
            self.send(Seed("{url}" + a["href"], meta=seed.meta), to="info")
        nxt = response.soup.select_one("a.next")
        if nxt is not None:
            yield Seed("{url}" + nxt["href"], meta=seed.meta)
''',
    "info.py": '''
class Info(Spider):
    name = "info"
    upstream = ["hotels"]
    def parse(self, response, seed):
        yield {{"_id": seed.url.rsplit("/", 1)[1], "city": seed.meta["city"], "name": response.soup.h1.text}}
''',
}


def chain_route(handler, path, attempt):
    import time as _time

    if path == "/cities":
        _time.sleep(0.5)  # the downstream spiders start first and must wait
        return 200, {}, "".join('<a href="/list/%s/1">%s</a>' % (c, c) for c in "abc")
    if path.startswith("/list/"):
        _, _, city, page = path.split("/")
        page = int(page)
        if page == 2 and attempt == 1:
            return 503, {}, "busy"
        links = "".join('<a class="h" href="/hotel/%s%d-%d">h</a>' % (city, page, i) for i in range(5))
        more = '<a class="next" href="/list/%s/%d">next</a>' % (city, page + 1) if page < 4 else ""
        return 200, {}, links + more
    if path.startswith("/hotel/") and attempt == 1 and path.endswith("-3"):
        return "drop"
    return 200, {}, "<h1>%s</h1>" % path.rsplit("/", 1)[1]


def test_three_chained_spiders_started_together_end_in_order(tmp_path, conn_args):
    site = Site(chain_route).start()
    procs = {}
    try:
        paths = {n: write_spider(tmp_path, n, body, url=site.url) for n, body in CHAIN.items()}
        for n in ("info.py", "hotels.py", "city.py"):
            procs[n] = start("run", paths[n], "-w", "2", "--idle", "1", "--relay-delay", "0.05",
                             "--retry", "0", *conn_args, cwd=tmp_path)
        ended = {}
        results = {}
        for n in ("city.py", "hotels.py", "info.py"):
            results[n] = finish(procs[n], timeout=90)
            ended[n] = time.monotonic()
    finally:
        site.stop()
    for n, (code, _, err) in results.items():
        assert code == 0, (n, err[-2000:])
    assert ended["city.py"] <= ended["hotels.py"] <= ended["info.py"]
    items = list(store(tmp_path, "info").iter_items())
    assert len(items) == 3 * 4 * 5 == len({i["_id"] for i in items})
    assert {i["city"] for i in items} == set("abc")


@pytest.mark.parametrize("args, message", [
    (["run", "nope.py"], "spider file not found"),
    (["run", "broken.py"], "cannot import broken.py: ZeroDivisionError"),
    (["run", "two.py"], "defines 2 Spider classes"),
    (["run", "ok.py", "--retry", "many"], "--retry"),
    (["run", "ok.py", "--relay-mode", "7"], "--relay-mode"),
    (["run", "ok.py", "--redis", "127.0.0.1:1"], "does not answer"),
    (["run", "ok.py", "--redis", "http://x"], "bad --redis"),
    (["run", "ok.py", "--config", "bad.cfg"], "malformed config file"),
    (["run", "ok.py", "--bogus"], "No such option"),
    (["run", "ok.py", "--idle", "1", "--forever"], "exclude each other"),
    (["stat", "ok.py", "--mongo-uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"], "MongoDB"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, redis_url, args, message):
    (tmp_path / "broken.py").write_text("1 / 0\n")
    (tmp_path / "bad.cfg").write_text("not an ini file\n")
    write_spider(tmp_path, "ok.py", '''
class Ok(Spider):
    name = "ok"
    def parse(self, response, seed):
        return ()
''')
    write_spider(tmp_path, "two.py", '''
class A(Spider):
    name = "a"
    def parse(self, response, seed):
        return ()
class B(A):
    name = "b"
''')
    if "--redis" not in args:
        args = args + ["--redis", redis_url]
    proc = microspider(*args, cwd=tmp_path, timeout=30)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "microspider: error:" in line]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_embedded_default_persists_across_commands(tmp_path):
    from microspider import embedded

    if embedded.answers("redis://127.0.0.1:6379"):
        pytest.fail("a Redis answers at 127.0.0.1:6379; this test needs the default address free")
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    try:
        path = write_spider(tmp_path, "e.py", '''
class E(Spider):
    name = "e"
    start_urls = ["{url}/a", "{url}/b"]
    def parse(self, response, seed):
        yield {{"_id": seed.url}}
''', url=site.url)
        proc = microspider("run", path, *FAST, cwd=tmp_path, check=0)
        assert "using the embedded Redis" in proc.stderr and "using the embedded store" in proc.stderr
        pid = embedded.pid(base=str(tmp_path))
        assert pid and os.path.exists("/proc/%d" % pid)
        st = stat(tmp_path, path)
        assert st["cached"] == 2 and st["items"] == 2
        # restart the embedded Redis: the AOF brings the cache back
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), message="embedded Redis exit")
        assert stat(tmp_path, path)["cached"] == 2
        assert embedded.pid(base=str(tmp_path)) != pid
    finally:
        site.stop()
        embedded.stop(base=str(tmp_path))


def test_the_embedded_redis_is_restarted_mid_crawl(tmp_path):
    from microspider import embedded

    assert not embedded.answers("redis://127.0.0.1:6379"), "the default Redis address must be free"

    def route(handler, path, attempt):
        time.sleep(0.05)
        return 200, {}, "<h1>x</h1>"

    site = Site(route).start()
    try:
        path = write_spider(tmp_path, "e.py", '''
class E(Spider):
    name = "e"
    start_urls = ["{url}/%d" % i for i in range(300)]
    def parse(self, response, seed):
        yield {{"_id": seed.url}}
''', url=site.url)
        proc = start("run", path, "--pool", "4", "--idle", "0.5", cwd=tmp_path)
        wait_until(lambda: embedded.pid(base=str(tmp_path)) and site.count("/20"), timeout=30,
                   message="the crawl under way")
        pid = embedded.pid(base=str(tmp_path))
        os.kill(pid, signal.SIGTERM)
        code, _, err = finish(proc, timeout=90)
        assert code == 0, err[-2000:]
        assert "restarted it from its AOF" in err
        assert embedded.pid(base=str(tmp_path)) != pid
        items = {i["_id"] for i in open_store(embedded.store_uri(str(tmp_path)), "x", "e").iter_items()}
        assert len(items) == 300
    finally:
        site.stop()
        embedded.stop(base=str(tmp_path))
