"""Pages that need a browser: real headless Chromium and Lightpanda, real local sites, real `microspider run`.

The tests that take the ``engine`` fixture are the render contract: they run on
every engine (tests/conftest.py), with Lightpanda's fallback to Chromium off, so
that what they prove is the engine's own.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from microspider import Seed, Spider
from microspider.state import keys
from microspider.config import resolve
from microspider.errors import FetchError
from microspider.proxies import ProxyPool
from microspider.render.browser import descendants
from microspider.store import open_store
from microspider.transport.browser import RenderFetcher
from tests.conftest import LIGHTPANDA_SLOW
from tests.proxyserver import ProxyServer
from tests.crawl import ROOT, children, cli_env, finish, microspider, start, write_spider
from tests.render_site import SHOP_SPIDER, price, shop_site
from tests.servers import free_port, wait_until

FAST = ["--idle", "0.3", "--relay-delay", "0.05", "--timeout", "10"]


@pytest.fixture(scope="module")
def site():
    shop = shop_site(items=12)
    yield shop
    shop.stop()


@pytest.fixture
def conn_args(redis_url, tmp_path):
    return ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]



def cached(r):
    """How many seeds of `shop` the success cache holds (read through the cache itself)."""
    from microspider.state import Redis, SpiderState

    kw = r.connection_pool.connection_kwargs
    return SpiderState(Redis("redis://%s:%s" % (kw["host"], kw["port"])), "shop").cache.size()


def store(tmp_path, name="shop"):
    return open_store("sqlite:///%s" % (tmp_path / "store.sqlite3"), "microspiders", name)


class Probe(Spider):
    name = "probe"
    render_wait = "h1, p, pre"
    render_xhr = True

    def parse(self, response, seed):
        pass


def fetcher(spider=Probe, engine="chromium", **options):
    settings = resolve(dict({"render": True, "retry": 1, "timeout": 10, "render_engine": engine,
                             "render_fallback": False}, **options), spider)
    return RenderFetcher(spider(), settings)


@pytest.fixture(scope="module")
def probe(engine):
    f = fetcher(engine=engine)
    yield f
    f.close()


# what each engine calls a refused connection and a bad certificate
REFUSED = {"chromium": "net::ERR_CONNECTION_REFUSED", "lightpanda": "CouldntConnect"}


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- the response ----------------------------------------------------------------------
def test_response_holds_the_rendered_page_status_headers_xhr_and_screenshot(site, probe, engine):
    response = probe.fetch(Seed(site.url + "/moved", meta={"screenshot": engine == "chromium"}))
    assert response.status_code == 200 and response.url == site.url + "/item/1"
    assert response.soup.select_one("h1.name").text == "Item 1"       # written by the page's script
    assert "Item 1" in response.text and response.encoding == "utf-8"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.xhr == [{"url": site.url + "/api/item/1", "status": 200,
                             "body": json.dumps({"name": "Item 1", "price": price(1)}).encode()}]
    assert response.render_engine == engine
    if engine == "chromium":   # Lightpanda paints nothing: a screenshot there is a page error
        assert response.screenshot.startswith(b"\x89PNG\r\n\x1a\n")
    plain = probe.fetch(Seed(site.url + "/item/2"))
    assert plain.screenshot is None and plain.soup.select_one("span.price").text == str(price(2))


def test_error_status_headers_cookies_and_seed_headers(site, probe):
    assert probe.fetch(Seed(site.url + "/nowhere")).status_code == 404
    assert probe.fetch(Seed(site.url + "/cookie")).cookies["session"] == "abc"
    echo = probe.fetch(Seed(site.url + "/echo", headers={"X-Probe": "yes"}, cookies={"c": "v"}))
    sent = json.loads(echo.soup.pre.text)
    assert sent["X-Probe"] == "yes" and "c=v" in sent["Cookie"]
    # response.request shows the headers sent, not the answer's
    assert echo.request.headers["X-Probe"] == "yes" and "Content-Type" not in echo.request.headers


def test_unreachable_page_is_a_failed_fetch_and_keeps_the_browser(probe, engine):
    started = probe.pool.started
    with pytest.raises(FetchError, match=REFUSED[engine]):
        probe.fetch(Seed("http://127.0.0.1:%d/" % free_port()))
    assert probe.pool.started == started


def test_a_crashed_browser_is_killed_and_replaced_within_the_retries(site, probe):
    browser = probe.pool.browsers()[0]
    victims = browser.browser_pids()
    assert victims
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:   # a helper process that ended by itself since the listing
            pass
    started, probe.retries = probe.pool.started, 0
    response = probe.fetch(Seed(site.url + "/item/5"))
    assert response.soup.select_one("h1.name").text == "Item 5"
    assert probe.retries == 1 and probe.pool.started == started + 1
    assert not any(alive(pid) for pid in browser.pids() + victims)
    assert browser.dir is None or not os.path.exists(browser.dir)   # Lightpanda keeps none


def test_a_hung_browser_is_killed_and_replaced(site, engine):
    f = fetcher(engine=engine, timeout=2)
    try:
        f.fetch(Seed(site.url + "/item/1"))
        browser = f.pool.browsers()[0]
        for pid in browser.browser_pids():
            os.kill(pid, signal.SIGSTOP)      # alive, answering nothing
        started = time.monotonic()
        response = f.fetch(Seed(site.url + "/item/2"))
        assert time.monotonic() - started < 15
        assert response.soup.select_one("h1.name").text == "Item 2" and f.retries == 1
        assert f.pool.started == 2 and browser.pids() == []
    finally:
        f.close()


@LIGHTPANDA_SLOW   # 30 s on Lightpanda (its failed connects through a resetting proxy)
def test_the_retries_of_a_seed_go_through_another_proxy_in_another_browser(site, engine):
    bad, good = ProxyServer(mode="reset").start(), ProxyServer(mode="ok").start()
    settings = resolve({"render": True, "retry": 2, "timeout": 10, "render_engine": engine,
                        "render_fallback": False}, Probe)
    f = RenderFetcher(Probe(), settings, proxies=ProxyPool([bad.url, good.url]))
    try:
        for n in range(3):
            response = f.fetch(Seed(site.url + "/item/%d" % n))
            assert response.soup.select_one("h1.name").text == "Item %d" % n
        assert bad.hits >= 1 and good.hits >= 6      # the pages and their XHR, via the proxy
        # one browser per proxy; a refused page through a proxy does not cost its browser
        assert {b.proxy for b in f.pool.browsers()} == {bad.url, good.url}
        assert f.pool.started == 2 and f.retries >= 1
    finally:
        f.close()
        bad.stop()
        good.stop()


def test_browsers_are_bounded_and_recycled(site, engine):
    f = fetcher(engine=engine, render_pages=1, render_recycle=2)
    try:
        for n in range(3):
            f.fetch(Seed(site.url + "/item/%d" % n))
        assert f.pool.started == 2 and len(f.pool.browsers()) == 1
        last = f.pool.browsers()[0]
    finally:
        f.close()
    assert not any(alive(pid) for pid in last.pids()) and (last.dir is None or not os.path.exists(last.dir))


GEVENT_PROBE = r'''
import sys, time
from gevent import monkey; monkey.patch_all()
import gevent
from microspider import Seed, Spider
from microspider.config import resolve
from microspider.transport.browser import RenderFetcher

class P(Spider):
    name = "p"
    render_wait = "h1.name"
    def parse(self, response, seed):
        pass

gaps, last = [], [time.monotonic()]
def tick():
    while True:
        gevent.sleep(0.01)
        now = time.monotonic(); gaps.append(now - last[0]); last[0] = now
ticker = gevent.spawn(tick)
f = RenderFetcher(P(), resolve({"render": True, "timeout": 10, "render_engine": sys.argv[2]}, P))
jobs = [gevent.spawn(f.fetch, Seed(sys.argv[1] + "/slow/%d" % n)) for n in range(2)]
gevent.joinall(jobs, raise_error=True)
f.close()
print(len(gaps), max(gaps))
'''


def test_browser_work_does_not_block_the_gevent_loop(site, engine):
    out = subprocess.run([sys.executable, "-c", GEVENT_PROBE, site.url, engine], env=cli_env(), timeout=60,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    ticks, worst = out.stdout.split()
    # each page's document takes 1.5 s to come: a browser call that held the loop would show as
    # a gap of 1.5 s or more (without monkey-patching the ticker never runs at all); the noise
    # of a busy 2-core machine measured here stays under 0.5 s
    assert int(ticks) > 100 and float(worst) < 1.0, out.stdout


# -- microspider run ---------------------------------------------------------------------
def test_render_spider_run_collects_every_item(tmp_path, conn_args, r, site, engine):
    path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url=site.url, fault="", engine=engine,
                        fallback=False)
    microspider("run", path, *FAST, *conn_args, cwd=tmp_path, check=0)
    items = {i["_id"]: i for i in store(tmp_path).iter_items()}
    assert items == {site.url + "/item/%d" % n: {"_id": site.url + "/item/%d" % n,
                                                  "name": "Item %d" % n, "price": price(n)}
                     for n in range(12)}
    assert cached(r) == 13 and not list(store(tmp_path).iter_failures())


@LIGHTPANDA_SLOW   # Lightpanda: test_render_engines.py kills every lightpanda mid-crawl, twice
def test_killing_the_browsers_mid_crawl_loses_no_seed(tmp_path, conn_args, r, engine):
    slow = shop_site(items=10, api_delay=0.25)
    try:
        path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url=slow.url, fault="", engine=engine,
                            fallback=False)
        # few pages at once, so that the crawl outlives two rounds of kills on a quiet machine too
        proc = start("run", path, *FAST, "--render-pages", "3", *conn_args, cwd=tmp_path)
        wait_until(lambda: cached(r) >= 4, timeout=30, message="pages done")
        worker = wait_until(lambda: children(proc.pid), message="the worker")[0]
        killed = []
        for _ in range(2):       # twice: the replacements die too
            browsers = wait_until(lambda: [p for p in descendants(worker) if _is_engine(p, engine)],
                                  timeout=15, message="browser processes")
            for pid in browsers:
                os.kill(pid, signal.SIGKILL)
            killed += browsers
            before = cached(r)
            wait_until(lambda: cached(r) > before or proc.poll() is not None,
                       timeout=30, message="progress after the kill")
        code, _, err = finish(proc, timeout=60)
    finally:
        slow.stop()
    assert code == 0, err[-2000:]
    assert killed and not any(alive(pid) for pid in killed)
    items = {i["_id"] for i in store(tmp_path).iter_items()}
    assert items == {slow.url + "/item/%d" % n for n in range(10)}
    assert cached(r) == 11 and r.llen(keys.work("shop")) == 0
    assert int(r.hget(keys.stats("shop"), "retried") or 0) >= 1   # the killed pages were fetched again
    assert not list(store(tmp_path).iter_failures())


def _is_engine(pid, engine="chromium"):
    """True when `pid` is a live process of the render engine (its command name is the engine's)."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip() == engine and alive(pid)
    except OSError:
        return False


@LIGHTPANDA_SLOW   # Lightpanda: test_render_engines.py kills a worker and checks its engine goes too
def test_kill_9_of_a_render_worker_takes_its_browsers_along_and_loses_no_seed(tmp_path, conn_args, r,
                                                                              engine):
    slow = shop_site(items=8, api_delay=0.25)
    try:
        path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url=slow.url, fault="", engine=engine,
                            fallback=False)
        proc = start("run", path, *FAST, *conn_args, cwd=tmp_path)
        wait_until(lambda: cached(r) >= 3, timeout=30, message="pages done")
        worker = wait_until(lambda: children(proc.pid), message="the worker")[0]
        held = descendants(worker)
        assert any(_is_engine(pid, engine) for pid in held)
        os.kill(worker, signal.SIGKILL)
        # the engine dies with its worker (PR_SET_PDEATHSIG), not orphaned
        wait_until(lambda: not any(alive(pid) for pid in held), timeout=10, message="browsers gone")
        code, _, err = finish(proc, timeout=60)
    finally:
        slow.stop()
    assert code == 0 and "requeued; restarted" in err, err[-2000:]
    assert {i["_id"] for i in store(tmp_path).iter_items()} == {
        slow.url + "/item/%d" % n for n in range(8)}


def test_sigterm_puts_rendered_seeds_back_and_closes_the_browsers(tmp_path, conn_args, r, engine):
    slow = shop_site(items=12, api_delay=1.0)
    try:
        path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url=slow.url, fault="", engine=engine,
                            fallback=False)
        proc = start("run", path, *FAST, *conn_args, cwd=tmp_path)
        wait_until(lambda: r.llen(keys.work("shop")) + _in_flight(r) >= 12 and _in_flight(r),
                   timeout=30, message="item pages in flight")
        worker = wait_until(lambda: children(proc.pid), message="the worker")[0]
        held = wait_until(lambda: [p for p in descendants(worker) if _is_engine(p, engine)],
                          message="browsers")
        os.kill(proc.pid, signal.SIGTERM)
        code, _, err = finish(proc, timeout=30)
    finally:
        slow.stop()
    assert code == 0, err[-2000:]
    assert not any(alive(pid) for pid in held) and _in_flight(r) == 0
    done = cached(r) - 1
    assert r.llen(keys.work("shop")) == 12 - done and done < 12   # the rest went back, none lost


def _in_flight(r, name="shop"):
    return sum(r.llen(keys.inflight(name, w.decode())) for w in r.zrange(keys.workers(name), 0, -1))


def test_a_rendered_page_whose_parse_raises_is_stored_and_reparsed(tmp_path, conn_args, r, engine):
    small = shop_site(items=3)
    try:
        path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url=small.url, engine=engine,
                            fallback=False, fault='raise ValueError("layout changed")')
        microspider("run", path, "--max-age", "0", *FAST, *conn_args, cwd=tmp_path, check=0)
    finally:
        small.stop()
    failures = {d["url"]: d for d in store(tmp_path).iter_failures()}
    assert set(failures) == {small.url + "/item/%d" % n for n in range(3)}
    stored = failures[small.url + "/item/2"]
    assert stored["error"] == "ValueError" and stored["status"] == 200
    assert b'<h1 class="name">Item 2</h1>' in stored["body"]     # the HTML after the XHR ran
    write_spider(tmp_path, "shop.py", SHOP_SPIDER, url=small.url, fault="# fixed", engine=engine,
                 fallback=False)
    proc = microspider("parse", path, *conn_args, cwd=tmp_path, check=0)   # no browser, no site
    assert "fixed 3" in proc.stderr
    assert {i["_id"]: i["price"] for i in store(tmp_path).iter_items()} == {
        small.url + "/item/%d" % n: price(n) for n in range(3)}
    assert not list(store(tmp_path).iter_failures())


# -- set-up errors ---------------------------------------------------------------------
def test_without_the_render_extra_a_render_spider_is_one_line_exit_2(tmp_path, conn_args):
    shim = tmp_path / "shim" / "websocket"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("No module named websocket (test shim)")\n')
    path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url="http://127.0.0.1:9", fault="",
                        engine="chromium", fallback=True)
    env = cli_env(PYTHONPATH=os.pathsep.join([str(tmp_path / "shim"), ROOT]))
    proc = microspider("run", path, *conn_args, cwd=tmp_path, env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("microspider: error: ")
    assert "pip install microspider[render]" in proc.stderr


def test_no_browser_is_one_line_naming_the_browser_option(tmp_path, conn_args):
    path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url="http://127.0.0.1:9", fault="",
                        engine="chromium", fallback=True)
    proc = microspider("run", path, "--browser", str(tmp_path / "no-chromium"), *conn_args,
                       cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--browser" in proc.stderr and "no-chromium" in proc.stderr
