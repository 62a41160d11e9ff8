"""Throttling: 429 / 503 + Retry-After cool the host down for every process, on the real redis-server."""
import email.utils
import time

import pytest

from microspider.state import Redis, SpiderState
from microspider.store import open_store
from microspider.transport.response import make_response
from microspider.transport.throttle import Throttle, is_throttling, member, retry_after
from microspider.errors import Throttled
from tests.crawl import microspider, stat, write_spider
from tests.servers import Site
from tests.throttle_site import CHECK_STAMP, ThrottlingSite


def answer(status, **headers):
    return make_response(status, "http://a.example/", headers, b"busy", None)


# -- the policy ---------------------------------------------------------------------------
def test_retry_after_seconds_and_http_dates():
    assert retry_after(answer(429, **{"Retry-After": "7"})) == 7.0
    assert retry_after(answer(429)) is None
    assert retry_after(answer(429, **{"Retry-After": "soon"})) is None
    date = email.utils.formatdate(1000.0 + 30, usegmt=True)
    assert retry_after(answer(429, **{"Retry-After": date}), now=1000.0) == 30.0
    # read against the answer's own Date, so the server's clock is compared with itself
    served = answer(503, **{"Retry-After": date, "Date": email.utils.formatdate(1020.0, usegmt=True)})
    assert retry_after(served, now=5.0) == 10.0
    assert retry_after(answer(429, **{"Retry-After": email.utils.formatdate(10, usegmt=True)}),
                       now=1000.0) == 0.0


def test_what_is_throttling():
    assert is_throttling(answer(429))
    assert is_throttling(answer(503, **{"Retry-After": "3"}))
    assert not is_throttling(answer(503))
    assert not is_throttling(answer(403))


def test_cooldown_names_hide_proxy_passwords():
    from microspider.proxies.source import Proxy

    name = member("a.example", Proxy("http://user:secret@127.0.0.1:3128"))
    assert name.startswith("a.example|") and "secret" not in name
    assert member("a.example", None) == "a.example|direct"


# -- the shared cool-downs ------------------------------------------------------------------
@pytest.fixture
def cooldowns(redis_url):
    return SpiderState(Redis(redis_url), "t").cooldowns()


def test_without_retry_after_the_cooldown_doubles_and_a_success_resets_it(cooldowns, r):
    name = "h|direct"
    assert cooldowns.check(name) == (0.0, False)
    assert cooldowns.throttle(name, None, 600) == 1.0
    left, doubling = cooldowns.check(name)
    assert 0.9 < left <= 1.0 and doubling
    # an answer to a request sent before the window began does not double it, but the
    # window lasts at least the current step from that answer
    assert cooldowns.throttle(name, None, 600) == 1.0
    for expected in (2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0):
        r.zadd("microspider:{t}:cooling", {name: 0})          # the window has passed
        assert cooldowns.throttle(name, None, 600) == expected
    cooldowns.recover(name)
    r.zadd("microspider:{t}:cooling", {name: 0})
    assert cooldowns.throttle(name, None, 600) == 1.0


def test_retry_after_sets_the_window_capped(cooldowns):
    assert cooldowns.throttle("h|direct", 5, 600) == 5.0
    assert 4.9 < cooldowns.check("h|direct")[0] <= 5.0
    assert cooldowns.throttle("h|direct", 2, 600) > 4.9        # never shortened
    assert cooldowns.throttle("x|direct", 5000, 30) == 30.0     # capped
    assert cooldowns.cooling() == 2
    assert cooldowns.check("h|p2") == (0.0, False)              # per proxy


def test_throttle_raises_and_counts(cooldowns):
    throttle = Throttle(cooldowns, cap=10)
    with pytest.raises(Throttled) as caught:
        throttle.after(answer(429, **{"Retry-After": "3"}), "h", None)
    assert caught.value.wait == 3.0 and not caught.value.over_cap
    with pytest.raises(Throttled) as caught:
        throttle.before("h", None)
    assert 2.9 < caught.value.wait <= 3.0
    with pytest.raises(Throttled) as caught:
        throttle.after(answer(429, **{"Retry-After": "3600"}), "g", None)
    assert caught.value.over_cap and caught.value.wait == 10.0
    throttle.after(answer(200), "k", None)                     # not throttling: nothing
    assert throttle.pop_answers() == 2 and throttle.pop_answers() == 0


# -- a crawl of a throttling site by two processes -----------------------------------------
SPIDER = '''
class S(Spider):
    name = "thr"
    start_urls = ["{url}/p/%d" % i for i in range({pages})]

    def parse(self, response, seed):
        yield {{"_id": seed.url}}
'''
def test_two_processes_wait_out_every_cooldown_and_lose_nothing(tmp_path, redis_url):
    site = ThrottlingSite()
    store = "sqlite:///%s/s.sqlite3" % tmp_path
    try:
        known = tmp_path / "known.txt"
        write_spider(tmp_path, "s.py", SPIDER + "KNOWN = %r\n" % str(known)
                     + CHECK_STAMP.replace("{", "{{").replace("}", "}}"), url=site.url, pages=240)
        started = time.monotonic()
        microspider("run", "s.py", "-w", "2", "--pool", "8", "--sessions", "4",
                    "--session-max-uses", "100000", "--idle", "0.5", "--redis", redis_url,
                    "--mongo-uri", store, cwd=tmp_path, check=0, timeout=120)
        took = time.monotonic() - started
        figures = stat(tmp_path, "thr", "--redis", redis_url, "--mongo-uri", store)
    finally:
        site.stop()
    items = list(open_store(store, "x", "thr").iter_items())
    assert sorted(i["_id"] for i in items) == sorted("%s/p/%d" % (site.url, i) for i in range(240))
    assert len(site.windows) >= 6 and {w[2] for w in site.windows} == {"seconds", "date", "none"}
    assert all(a[3] > 0 for a in site.arrivals)      # every request says when it was checked
    known = [float(line) for line in known.read_text().split()]
    assert len(known) == site.throttled               # every 429 recorded a cool-down
    assert site.inside(known) == []                   # none sent into a cool-down window
    print("windows %d (%.1f s), requests %d, 429s %d, in flight into windows %d, sent into windows 0, took %.1f s"
          % (len(site.windows), sum(w[1] - w[0] for w in site.windows), len(site.arrivals),
             site.throttled, len(site.in_flight()), took))
    assert figures["throttled"] == site.throttled > 0  # every 429 counted, none a failure
    assert figures["sessions_retired"] == 0 and figures["failures"] == 0
    assert figures["backlog"] == 0 and figures["items"] == 240
    windows = sum(w[1] - w[0] for w in site.windows)
    assert took < windows + 30, (took, windows)


TWO_HOSTS = '''
class S(Spider):
    name = "two"
    start_urls = ["{slow}/a/%d" % i for i in range(4)] + ["{fast}/b/%d" % i for i in range(60)]

    def parse(self, response, seed):
        yield {{"_id": seed.url, "at": __import__("time").time()}}
'''


def test_a_cooling_host_holds_no_pool_slot(tmp_path, redis_url):
    """Host 127.0.0.1 says wait 4 s; its seeds wait while localhost's 60 pages go on (pool 2)."""
    told = {}

    def route(handler, path, attempt):
        if handler.headers["Host"].startswith("127.0.0.1") and path.startswith("/a/") and attempt == 1:
            told.setdefault("at", time.time())
            return 429, {"Retry-After": "4"}, "wait"
        time.sleep(0.01)
        return 200, {}, "<h1>ok</h1>"

    site = Site(route).start()
    port = site.url.rsplit(":", 1)[1]
    store = "sqlite:///%s/s.sqlite3" % tmp_path
    try:
        write_spider(tmp_path, "s.py", TWO_HOSTS, slow=site.url, fast="http://localhost:" + port)
        microspider("run", "s.py", "--pool", "2", "--idle", "0.5", "--redis", redis_url,
                    "--mongo-uri", store, cwd=tmp_path, check=0, timeout=90)
        figures = stat(tmp_path, "two", "--redis", redis_url, "--mongo-uri", store)
    finally:
        site.stop()
    items = list(open_store(store, "x", "two").iter_items())
    fast = [i["at"] for i in items if "/b/" in i["_id"]]
    slow = [i["at"] for i in items if "/a/" in i["_id"]]
    assert len(fast) == 60 and len(slow) == 4
    assert max(fast) < told["at"] + 3.5     # the other host's pages did not wait for the cool-down
    assert min(slow) >= told["at"] + 3.9    # the cooling host's did
    assert figures["throttled"] >= 1 and figures["failures"] == 0


def test_a_retry_after_over_the_cap_sends_the_seed_to_the_backlog(tmp_path, redis_url):
    site = Site(lambda handler, path, attempt: (429, {"Retry-After": "3600"}, "later")).start()
    store = "sqlite:///%s/s.sqlite3" % tmp_path
    try:
        write_spider(tmp_path, "s.py", SPIDER.replace("thr", "cap"), url=site.url, pages=1)
        microspider("run", "s.py", "--max-retry-after", "30", "-m", "0", "--idle", "0.5",
                    "--redis", redis_url, "--mongo-uri", store, cwd=tmp_path, check=0, timeout=60)
        figures = stat(tmp_path, "cap", "--redis", redis_url, "--mongo-uri", store)
    finally:
        site.stop()
    assert site.count("/p/0") == 1                 # asked once, not retried through the same client
    assert figures["backlog_over_age"] == 1 and figures["failures"] == 0
    assert figures["throttled"] == 1 and figures["cooling"] == 1


def test_held_seeds_stay_in_flight_and_go_back_on_sigterm(tmp_path, redis_url):
    """Seeds waiting for a cool-down are in flight: SIGTERM puts them back in the work queue."""
    import signal

    from tests.crawl import finish, start
    from tests.servers import wait_until

    site = Site(lambda handler, path, attempt: (429, {"Retry-After": "300"}, "later")).start()
    store = "sqlite:///%s/s.sqlite3" % tmp_path
    conn = ("--redis", redis_url, "--mongo-uri", store)
    try:
        write_spider(tmp_path, "s.py", SPIDER.replace("thr", "held"), url=site.url, pages=20)
        proc = start("run", "s.py", "--pool", "4", "--forever", *conn, cwd=tmp_path)
        try:
            wait_until(lambda: stat(tmp_path, "s.py", *conn)["throttled"] >= 1, timeout=30,
                       message="a 429 counted")
            figures = stat(tmp_path, "s.py", *conn)
            assert figures["in_flight"] == 20 and figures["cooling"] == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            code, _, err = finish(proc, timeout=30)
        figures = stat(tmp_path, "s.py", *conn)
    finally:
        site.stop()
    assert code == 0, err[-2000:]
    assert figures["work"] == 20 and figures["in_flight"] == 0
    assert figures["backlog"] == 0 and figures["failures"] == 0
    assert sum(site.count("/p/%d" % i) for i in range(20)) <= 4   # only what was in flight at first


def test_metrics_show_throttling_and_robots_figures():
    from microspider.ops.stats import STAT_KEYS
    from microspider.web.metrics import exposition

    figures = {key: 0 for key in STAT_KEYS}
    figures.update(throttled=12, cooling=2, robots_denied=5, failures_by_error={})
    text = exposition(lambda: {"shop": (figures, 40)}).decode()
    assert 'microspider_throttled_total{spider="shop"} 12.0' in text
    assert 'microspider_cooling{spider="shop"} 2.0' in text
    assert 'microspider_robots_denied_total{spider="shop"} 5.0' in text


def test_a_host_cooling_through_one_proxy_is_fetched_through_another(cooldowns):
    from microspider import Spider
    from microspider.config import Settings
    from microspider.proxies import ProxyPool
    from microspider.transport.fetcher import Urllib3Fetcher

    class Quiet(Spider):
        name = "t"

        def parse(self, response, seed):
            return ()

    pool = ProxyPool(["http://127.0.0.1:3001", "http://127.0.0.1:3002"])
    fetcher = Urllib3Fetcher(Quiet(), Settings(retry=0, timeout=5, pool=2), proxies=pool)
    fetcher.throttle = Throttle(cooldowns, cap=600)
    first, second = pool.proxies
    cooldowns.throttle(member("h.example", first), 30, 600)
    assert fetcher._cool_proxy("h.example", []).url == second.url
    cooldowns.throttle(member("h.example", second), 5, 600)
    with pytest.raises(Throttled) as caught:
        fetcher._cool_proxy("h.example", [])
    assert 4 < caught.value.wait <= 5                       # the shortest wait of the two
    assert fetcher._cool_proxy("other.example", []) is not None
