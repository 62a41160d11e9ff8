"""The proxy pool: sources, rotation, health, Redis-set stats, checking.

Requests go through real forward proxies (tests/proxyserver.py) to a real local
site; Redis is the private redis-server of conftest.  Time is a fake clock.
"""
import logging
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from microspider.proxies import (
    Proxy, ProxyError, ProxyPool, add_proxies, check_proxies, list_proxies, remove_proxies,
    stats_key,
)
from microspider.transport import probe_fetcher
from tests.proxyserver import ProxyServer
from tests.servers import Site, free_port

HOST = "127.0.0.1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Clock:
    def __init__(self, start=1000.0):
        self.t = start

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(scope="module")
def site():
    site = Site(lambda handler, path, attempt: (200, {}, "page " + path)).start()
    yield site
    site.stop()


@pytest.fixture
def start_proxy():
    started = []

    def start(mode="ok", **kwargs):
        proxy = ProxyServer(mode, **kwargs).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def session():
    with requests.Session() as s:
        s.trust_env = False
        yield s


def fetch(pool, session, url, exclude=()):
    """What the fetcher does: take a proxy, send through it, report the outcome."""
    proxy = pool.acquire(HOST, exclude)
    if proxy is None:
        return None, False
    started = time.monotonic()
    try:
        ok = session.get(url, proxies=proxy.requests_proxies, timeout=3).status_code == 200
    except requests.RequestException:
        ok = False
    pool.report(proxy, HOST, ok, latency=time.monotonic() - started)
    return proxy, ok


def fail(pool, proxy, times=1):
    for _ in range(times):
        pool.report(proxy, HOST, ok=False)


# -- proxy URLs and sources ------------------------------------------------------------------

def test_a_proxy_url_is_a_source_and_its_password_is_masked():
    pool = ProxyPool.from_source("http://user:secret@127.0.0.1:3128")
    [proxy] = pool.proxies
    assert proxy.requests_proxies == {"http": proxy.url, "https": proxy.url}
    assert str(proxy) == "http://user:***@127.0.0.1:3128"
    assert "secret" not in repr(proxy)


@pytest.mark.parametrize("url, says", [
    ("ftp://127.0.0.1:21", "scheme must be one of"),
    ("127.0.0.1:3128", "scheme must be one of"),
    ("http://:3128", "has no host"),
    ("http://127.0.0.1", "needs a port"),
    ("http://127.0.0.1:99999", "needs a port"),
    ("http://127.0.0.1:3128/path", "no path"),
    ("http://u:secret@127.0.0.1", "needs a port"),
])
def test_bad_proxy_urls_say_what_to_fix(url, says):
    with pytest.raises(ProxyError, match=says) as caught:
        Proxy(url)
    assert isinstance(caught.value, ValueError)
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)


def test_socks_proxies_are_accepted():
    assert Proxy("socks5h://127.0.0.1:1080").requests_proxies["https"] == "socks5h://127.0.0.1:1080"


def test_file_source_skips_a_bad_line_with_a_warning(tmp_path, caplog):
    path = tmp_path / "proxies.txt"
    path.write_text("# my proxies\nhttp://127.0.0.1:1001\n\nnot a proxy\n"
                    "socks5://127.0.0.1:1002  # the fast one\nhttp://127.0.0.1:1001\n")
    with caplog.at_level(logging.WARNING, "microspider.proxies"):
        pool = ProxyPool.from_source(str(path))
    assert [p.url for p in pool.proxies] == ["http://127.0.0.1:1001", "socks5://127.0.0.1:1002"]
    [warning] = caplog.records
    assert "proxies.txt:4: skipped" in warning.getMessage()


def test_file_without_a_valid_proxy_is_an_error(tmp_path):
    path = tmp_path / "proxies.txt"
    path.write_text("# nothing yet\n127.0.0.1:3128\n")
    with pytest.raises(ProxyError, match="holds no valid proxy"):
        ProxyPool.from_source(str(path))


def test_file_is_read_again_after_it_changes_and_health_survives(tmp_path, clock):
    path = tmp_path / "proxies.txt"
    path.write_text("http://127.0.0.1:1001\nhttp://127.0.0.1:1002\n")
    pool = ProxyPool.from_source(str(path), now=clock)
    first = pool.proxies[0]
    fail(pool, first, 3)
    pool.refresh()                                  # unchanged: nothing happens
    path.write_text("http://127.0.0.1:1001\nhttp://127.0.0.1:1002\nhttp://127.0.0.1:1003\n")
    pool.refresh()
    assert [p.url for p in pool.proxies][-1] == "http://127.0.0.1:1003"
    assert first not in {pool.acquire(HOST) for _ in range(4)}      # still benched
    path.write_text("http://127.0.0.1:1003\n")
    pool.refresh()
    assert pool.proxies == [Proxy("http://127.0.0.1:1003")]


def test_unreadable_file_keeps_the_proxies_in_use(tmp_path, caplog):
    path = tmp_path / "proxies.txt"
    path.write_text("http://127.0.0.1:1001\n")
    pool = ProxyPool.from_source(str(path))
    path.unlink()
    pool.refresh()
    assert len(pool) == 1
    assert "keeping the 1 proxies in use" in caplog.text


def test_redis_set_source(redis_url, r, caplog):
    r.sadd("myproxies", "http://127.0.0.1:1002", "http://127.0.0.1:1001", "garbage")
    pool = ProxyPool.from_source(redis_url + "/0#myproxies")
    assert [p.url for p in pool.proxies] == ["http://127.0.0.1:1001", "http://127.0.0.1:1002"]
    assert "proxy set" in caplog.text and "garbage" in caplog.text
    r.sadd("myproxies", "http://127.0.0.1:1003")
    r.srem("myproxies", "http://127.0.0.1:1001")
    pool.refresh()
    assert [p.url for p in pool.proxies] == ["http://127.0.0.1:1002", "http://127.0.0.1:1003"]


def test_set_source_on_the_runs_own_redis(r):
    r.sadd("myproxies", "http://127.0.0.1:1001")
    assert len(ProxyPool.from_source("set:myproxies", redis=r)) == 1


@pytest.mark.parametrize("source, says", [
    ("", "empty proxy source"),
    ("no-such-file.txt", "not a proxy URL"),
    ("redis://127.0.0.1:6379/0", "names no set: end it with #KEY"),
    ("set:myproxies", "no Redis was given"),
    ("set:", "write set:KEY"),
    ("htp://127.0.0.1:3128", "scheme must be one of"),
])
def test_bad_sources_say_what_to_fix(source, says):
    with pytest.raises(ProxyError, match=says):
        ProxyPool.from_source(source)


def test_unreachable_or_empty_redis_set_is_an_error(redis_url):
    with pytest.raises(ProxyError, match="cannot read the proxy set"):
        ProxyPool.from_source("redis://127.0.0.1:%d/0#myproxies" % free_port())
    with pytest.raises(ProxyError, match="holds no valid proxy"):
        ProxyPool.from_source(redis_url + "/0#myproxies")


# -- rotation and retries --------------------------------------------------------------------

def test_rotation_spreads_requests_over_healthy_proxies(site, start_proxy, session):
    servers = [start_proxy() for _ in range(3)]
    pool = ProxyPool([s.url for s in servers])
    for i in range(9):
        assert fetch(pool, session, site.url + "/page/%d" % i)[1]
    assert [s.hits for s in servers] == [3, 3, 3]


def test_retries_of_one_seed_go_through_different_proxies(site, start_proxy, session):
    servers = [start_proxy("reset"), start_proxy("garbage"), start_proxy()]
    pool = ProxyPool([s.url for s in servers])
    tried = []
    for _ in range(3):
        proxy, ok = fetch(pool, session, site.url + "/seed", exclude=tried)
        tried.append(proxy)
        if ok:
            break
    assert ok and tried == [Proxy(s.url) for s in servers]
    assert [s.hits for s in servers] == [1, 1, 1]
    assert pool.acquire(HOST, exclude=[s.url for s in servers]) is None


def test_dead_proxy_stops_being_chosen_after_three_failed_requests(site, start_proxy, session, clock):
    dead, alive = start_proxy("reset"), start_proxy()
    pool = ProxyPool([dead.url, alive.url], now=clock)
    results = [fetch(pool, session, site.url + "/p%d" % i)[1] for i in range(20)]
    assert dead.hits == 3
    assert alive.hits == 17 and results.count(True) == 17


def test_benched_proxy_gets_one_trial_after_the_cool_down_and_recovers(site, start_proxy, session, clock):
    flaky, alive = start_proxy("reset"), start_proxy()
    pool = ProxyPool([flaky.url, alive.url], now=clock)
    for i in range(6):
        fetch(pool, session, site.url + "/a%d" % i)
    assert flaky.hits == 3
    clock.advance(29.9)
    assert {pool.acquire(HOST) for _ in range(3)} == {Proxy(alive.url)}
    clock.advance(0.2)
    flaky.mode = "ok"                                   # it came back to life
    trial = pool.acquire(HOST)
    assert trial == Proxy(flaky.url)
    assert {pool.acquire(HOST) for _ in range(3)} == {Proxy(alive.url)}   # one trial at a time
    ok = session.get(site.url + "/trial", proxies=trial.requests_proxies, timeout=3).ok
    pool.report(trial, HOST, ok)
    assert [pool.acquire(HOST) for _ in range(4)].count(Proxy(flaky.url)) == 2


def test_failed_trials_double_the_cool_down_up_to_the_cap(clock):
    pool = ProxyPool(["http://127.0.0.1:1001"], now=clock)
    proxy = pool.proxies[0]
    fail(pool, proxy, 3)
    rests = []
    for _ in range(7):
        rests.append(pool.next_ready_in(HOST))
        clock.advance(rests[-1])
        assert pool.acquire(HOST) == proxy              # the trial
        fail(pool, proxy)
    assert rests == [30, 60, 120, 240, 480, 600, 600]
    assert len(pool) == 1                               # a URL source keeps it, benched


def test_unreported_trial_frees_the_proxy_after_a_while(clock):
    pool = ProxyPool(["http://127.0.0.1:1001"], now=clock)
    fail(pool, pool.proxies[0], 3)
    clock.advance(30)
    assert pool.acquire(HOST) is not None
    assert pool.acquire(HOST) is None and pool.next_ready_in(HOST) == 60
    clock.advance(60)
    assert pool.acquire(HOST) is not None


def test_failures_from_before_the_bench_do_not_extend_it(clock):
    pool = ProxyPool(["http://127.0.0.1:1001"], now=clock)
    fail(pool, pool.proxies[0], 5)                      # 5 requests were in flight together
    assert pool.next_ready_in(HOST) == 30


def test_health_is_kept_per_target_host(clock):
    pool = ProxyPool(["http://127.0.0.1:1001"], now=clock)
    fail(pool, pool.proxies[0], 3)
    assert pool.acquire(HOST) is None
    assert pool.acquire("other.example") == pool.proxies[0]


def test_all_dead_pool_returns_none_and_says_how_long_to_wait(site, start_proxy, session, clock):
    servers = [start_proxy("refuse"), start_proxy("reset")]
    pool = ProxyPool([s.url for s in servers], now=clock)
    for i in range(6):
        assert fetch(pool, session, site.url + "/x%d" % i)[1] is False
    assert pool.acquire(HOST) is None
    assert pool.next_ready_in(HOST) == 30 and pool.next_ready_in() == 30
    clock.advance(10)
    assert pool.next_ready_in(HOST) == 20
    assert pool.next_ready_in("fresh.example") == 0


def test_empty_pool_has_no_ready_time(r):
    r.sadd("myproxies", "http://127.0.0.1:1001")
    pool = ProxyPool.from_source("set:myproxies", redis=r)
    r.delete("myproxies")
    pool.refresh()
    assert pool.acquire(HOST) is None and pool.next_ready_in(HOST) is None


# -- Redis-set stats and removal -------------------------------------------------------------

def test_proxy_at_the_score_floor_leaves_the_redis_set(site, start_proxy, session, r, clock, caplog):
    dead, alive = start_proxy("reset"), start_proxy()
    add_proxies(r, "myproxies", [dead.url, alive.url])
    pool = ProxyPool.from_source("set:myproxies", redis=r, now=clock)
    for i in range(6):
        fetch(pool, session, site.url + "/y%d" % i)
    clock.advance(30)
    while dead.hits < 4:                                # its trial request
        fetch(pool, session, site.url + "/z")
    assert Proxy(dead.url) not in pool.proxies
    assert "removed from set:myproxies" in caplog.text
    pool.flush_stats()
    assert r.smembers("myproxies") == {alive.url.encode()}
    assert not [f for f in r.hkeys(stats_key("myproxies")) if f.startswith(dead.url.encode())]
    pool.refresh()
    assert pool.proxies == [Proxy(alive.url)] and dead.hits == 4


def test_flush_stats_sums_counters_of_every_process(r, clock):
    url = "http://127.0.0.1:1001"
    add_proxies(r, "myproxies", [url])
    pools = [ProxyPool.from_source("set:myproxies", redis=r, now=clock, wall=lambda: 5000.0)
             for _ in range(2)]
    for pool in pools:
        pool.report(url, HOST, True, latency=0.5)
        pool.report(url, HOST, True, latency=0.5)
        pool.report(url, HOST, False)
        pool.flush_stats()
        pool.flush_stats()                              # nothing new: nothing written
    fail(pools[0], url, 2)
    pools[0].flush_stats()
    [row] = list_proxies(r, "myproxies")
    assert row == {"proxy": url, "score": 3, "ok": 4, "fail": 4, "benched_until": 5030.0, "latency": 0.5}
    assert r.hget(stats_key("myproxies"), url + "|ok") == b"4"


def test_flush_stats_is_a_no_op_for_other_sources():
    pool = ProxyPool(["http://127.0.0.1:1001"])
    pool.report(pool.proxies[0], HOST, True)
    pool.flush_stats()


# -- administration and checking -------------------------------------------------------------

def test_add_remove_and_list_proxies(r):
    assert add_proxies(r, "myproxies", ["http://127.0.0.1:1001", " socks5://127.0.0.1:1002 "]) == 2
    assert add_proxies(r, "myproxies", ["http://127.0.0.1:1001"]) == 0
    with pytest.raises(ProxyError, match="needs a port"):
        add_proxies(r, "myproxies", ["http://127.0.0.1:1003", "http://nowhere"])
    assert r.scard("myproxies") == 2                    # all or nothing
    rows = list_proxies(r, "myproxies")
    assert [row["proxy"] for row in rows] == ["http://127.0.0.1:1001", "socks5://127.0.0.1:1002"]
    assert rows[0] == {"proxy": "http://127.0.0.1:1001", "score": None, "ok": 0, "fail": 0,
                       "benched_until": 0.0, "latency": None}
    r.hset(stats_key("myproxies"), "http://127.0.0.1:1001|ok", 7)
    r.sadd("myproxies", "junk")
    assert remove_proxies(r, "myproxies", ["http://127.0.0.1:1001", "junk", "http://127.0.0.1:9"]) == 2
    assert [row["proxy"] for row in list_proxies(r, "myproxies")] == ["socks5://127.0.0.1:1002"]
    assert not r.exists(stats_key("myproxies"))


def test_check_proxies_reports_each_proxy(site, start_proxy):
    ok, slow, garbage, reset = (start_proxy(), start_proxy("slow", delay=3), start_proxy("garbage"),
                                start_proxy("reset"))
    refused = "http://127.0.0.1:%d" % free_port()
    more_slow = [start_proxy("slow", delay=3).url for _ in range(2)]
    urls = [ok.url, slow.url, garbage.url, reset.url, refused, "nonsense"] + more_slow
    started = time.monotonic()
    rows = check_proxies(urls, site.url + "/check", lambda: probe_fetcher("curl", 1))
    assert time.monotonic() - started < 2.5     # three 1 s timeouts at once, not one by one
    assert [row["proxy"] for row in rows] == urls
    good = rows[0]
    assert good["ok"] and good["status"] == 200 and good["error"] is None and 0 < good["latency"] < 1
    for row in rows[1:]:
        assert row["ok"] is False and row["latency"] is None and row["status"] is None
        assert row["error"] and "\n" not in row["error"]
    assert "Timeout" in rows[1]["error"]
    assert rows[2]["error"].isprintable()               # the garbage is not echoed raw
    assert "scheme must be one of" in rows[5]["error"]


GEVENT_CHECK = r"""
from gevent import monkey
monkey.patch_all()
import sys
from microspider.proxies import ProxyPool, check_proxies
from microspider.transport import probe_fetcher
pool = ProxyPool([sys.argv[1]])
proxy = pool.acquire("127.0.0.1")
pool.report(proxy, "127.0.0.1", True, 0.1)
[row] = check_proxies([proxy.url], sys.argv[2], lambda: probe_fetcher("curl", 3))
print(row["ok"])
"""


def test_pool_and_check_under_gevent(site, start_proxy):
    server = start_proxy()
    out = subprocess.run([sys.executable, "-c", GEVENT_CHECK, server.url, site.url + "/g"], cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "True", out.stderr
    assert server.hits == 1


def test_importing_proxies_and_ratelimit_does_not_import_gevent():
    code = "import sys, microspider.proxies, microspider.state.ratelimit; print('gevent' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr


def test_check_proxies_flags_an_error_status(site, start_proxy):
    guarded = start_proxy(auth=("user", "pw"))
    [row] = check_proxies(["http://127.0.0.1:%d" % guarded.port], site.url + "/",
                          lambda: probe_fetcher("curl", 2))
    assert row["ok"] is False and row["status"] == 407 and row["error"] == "HTTP 407"
    [row] = check_proxies([guarded.url], site.url + "/", lambda: probe_fetcher("curl", 2))
    assert row["ok"] is True


# -- https -----------------------------------------------------------------------------------

# requests verifies an https proxy's certificate only for https targets; for http ones it warns
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("tls_proxy", [False, True], ids=["http-proxy", "https-proxy"])
def test_https_and_http_targets_through_a_proxy(site, tls_site, start_proxy, session, certificate, tls_proxy):
    server = start_proxy(auth=("user", "pw"), certfile=certificate if tls_proxy else None)
    proxy = ProxyPool.from_source(server.url).acquire(HOST)
    target = "https://127.0.0.1:%d/hotel" % tls_site.server.server_address[1]
    answer = session.get(target, proxies=proxy.requests_proxies, timeout=5, verify=certificate)
    assert answer.text == "secret page /hotel"              # through a CONNECT tunnel
    answer = session.get(site.url + "/city", proxies=proxy.requests_proxies, timeout=5, verify=certificate)
    assert answer.text == "page /city"
    assert server.hits == 2


def test_connect_tunnel_with_a_raw_socket(site, start_proxy):
    server = start_proxy()
    port = site.server.server_address[1]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (port, port))
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /tunnel HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.") and answer.endswith(b"page /tunnel")
