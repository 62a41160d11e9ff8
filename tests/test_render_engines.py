"""Render engines (issue 28): choosing one, Lightpanda's fallback to Chromium, set-up errors.

The render contract itself runs on every engine in test_render.py and
test_render_wait.py; here: what only a choice of engine brings.  Real
Lightpanda and Chromium, real local sites, real `microspider run`.
"""
import json
import os
import signal

import pytest

from microspider import Seed, Spider
from microspider.config import resolve
from microspider.errors import ConfigError
from microspider.render import check_render
from microspider.render.browser import descendants
from microspider.render.engines import pages_of, tabs_of
from microspider.store import open_store
from microspider.transport.browser import RenderFetcher
from tests.conftest import engine_installed
from tests.crawl import ROOT, children, cli_env, finish, microspider, start, write_spider
from tests.render_site import SHOP_SPIDER, price, shop_site
from tests.servers import wait_until

pytestmark = pytest.mark.skipif(not engine_installed("lightpanda"),
                                reason="the lightpanda wheel is not installed")

FAST = ["--idle", "0.3", "--relay-delay", "0.05", "--timeout", "10"]


class Plain(Spider):
    name = "plain"

    def parse(self, response, seed):
        pass


def fetcher(spider=Plain, **options):
    settings = resolve(dict({"render": True, "retry": 0, "timeout": 10,
                             "render_engine": "lightpanda"}, **options), spider)
    return RenderFetcher(spider(), settings)


def item(response):
    name = response.soup.select_one("h1.name")
    return name and (name.text, int(response.soup.select_one("span.price").text))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def lightpandas(root):
    """Live lightpanda processes below `root`."""
    out = []
    for pid in descendants(root):
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "lightpanda" and alive(pid):
                    out.append(pid)
        except OSError:
            pass
    return out


# -- settings --------------------------------------------------------------------------
def test_pages_in_flight_are_sized_per_engine_unless_set():
    chromium = resolve({"render": True}, Plain)
    lightpanda = resolve({"render": True, "render_engine": "lightpanda"}, Plain)
    assert (pages_of(chromium), tabs_of(chromium)) == (16, 16)
    assert (pages_of(lightpanda), tabs_of(lightpanda)) == (64, 16)
    assert pages_of(resolve({"render_engine": "lightpanda", "render_pages": 8}, Plain)) == 8
    assert chromium.render_fallback is True
    assert resolve({"render_fallback": "off"}, Plain).render_fallback is False


def test_a_lightpanda_with_many_contexts_starts(site):
    f = fetcher(render_tabs=100)     # its HTTP limits, derived from the contexts, stay in range
    try:
        assert item(f.fetch(Seed(site.url + "/item/2"))) == ("Item 2", price(2))
    finally:
        f.close()


def test_the_engine_and_its_fallback_are_config_keys_under_the_spider_attribute(tmp_path):
    cfg = tmp_path / "microspider.cfg"
    cfg.write_text("[spider:plain]\nrender-engine = lightpanda\nrender-fallback = off\n")
    settings = resolve({}, Plain, config_path=str(cfg))
    assert (settings.render_engine, settings.render_fallback) == ("lightpanda", False)

    class Attribute(Plain):
        render_engine = "chromium"

    assert resolve({}, Attribute, config_path=str(cfg)).render_engine == "chromium"
    assert resolve({"render_engine": "lightpanda"}, Attribute, config_path=str(cfg)).render_engine == "lightpanda"


def test_an_unknown_engine_is_a_config_error():
    with pytest.raises(ConfigError, match="must be chromium or lightpanda"):
        resolve({"render_engine": "bogus"}, Plain)


# -- the fallback to Chromium ---------------------------------------------------------
@pytest.fixture(scope="module")
def site():
    killer = []     # what /api/crash calls: set by the test that needs it
    shop = shop_site(items=4, on_crash=lambda: killer and killer[0]())
    shop.killer = killer
    yield shop
    shop.stop()


def test_a_page_that_stalls_lightpanda_is_rendered_in_chromium(site):
    f = fetcher(timeout=3)
    try:
        assert item(f.fetch(Seed(site.url + "/item/1"))) == ("Item 1", price(1))
        stalled = f.pool.browsers()[0]
        pids = stalled.pids()
        response = f.fetch(Seed(site.url + "/picky/stall/2"))
        assert item(response) == ("Item 2", price(2)) and response.render_engine == "chromium"
        assert f.fallbacks == 1 and f.retries == 0          # within the same attempt
        assert not any(alive(pid) for pid in pids)           # the hung Lightpanda was killed
        assert item(f.fetch(Seed(site.url + "/item/3"))) == ("Item 3", price(3))
        assert f.pool.started == 2 and f.fallbacks == 1      # a new Lightpanda for the next page
    finally:
        f.close()


def test_a_page_that_crashes_lightpanda_is_rendered_in_chromium(site):
    f = fetcher()
    site.killer[:] = [lambda: [os.kill(pid, signal.SIGKILL)
                               for browser in f.pool.browsers() for pid in browser.pids()]]
    try:
        response = f.fetch(Seed(site.url + "/picky/crash/3"))
        assert item(response) == ("Item 3", price(3)) and response.render_engine == "chromium"
        assert f.fallbacks == 1 and f.pool.live == []        # the dead engine is gone
    finally:
        del site.killer[:]
        f.close()


def test_a_page_read_at_the_cap_with_requests_in_flight_falls_back(site):
    f = fetcher(timeout=2)
    try:
        response = f.fetch(Seed(site.url + "/late/200/1/never"))   # a fetch that never ends
    finally:
        f.close()
    assert response.render_engine == "chromium" and item(response) == ("Item 1", price(1))
    assert f.fallbacks == 1


def test_without_fallback_a_page_lightpanda_fails_on_is_a_failed_fetch(site):
    from microspider.errors import FetchError

    f = fetcher(timeout=2, render_fallback=False)
    try:
        with pytest.raises(FetchError, match="did not answer|within --timeout"):
            f.fetch(Seed(site.url + "/picky/stall/1"))
        assert f.fallback is None and f.fallbacks == 0    # Chromium never started
        # and a page read at the cap is what was there, as with Chromium
        assert item(f.fetch(Seed(site.url + "/late/200/2/never"))) == ("Item 2", price(2))
    finally:
        f.close()


PICKY_SPIDER = '''
class Picky(Spider):
    name = "picky"
    start_urls = [{urls}]
    render = True
    render_engine = "lightpanda"
    {fallback}
    retry = 1

    def parse(self, response, seed):
        yield {{"_id": seed.url, "name": response.soup.select_one("h1.name").text,
                "price": int(response.soup.select_one("span.price").text),
                "engine": response.render_engine}}
'''


def test_a_parse_that_raises_on_lightpandas_dom_is_parsed_again_on_chromiums(tmp_path, redis_url):
    small = shop_site(items=4)
    db = "sqlite:///%s" % (tmp_path / "store.sqlite3")
    conn = ["--redis", redis_url, "--mongo-uri", db]
    urls = [small.url + "/picky/blank/%d" % n for n in range(2)] + [small.url + "/item/2"]
    try:
        path = write_spider(tmp_path, "picky.py", PICKY_SPIDER, urls=", ".join(map(repr, urls)),
                            fallback="")
        microspider("run", path, *FAST, *conn, cwd=tmp_path, check=0)
        stat = json.loads(microspider("stat", "--json", *conn, path, cwd=tmp_path, check=0).stdout)
    finally:
        small.stop()
    store = open_store(db, "microspiders", "picky")
    items = {i["_id"]: (i["name"], i["price"], i["engine"]) for i in store.iter_items()}
    assert items == {urls[0]: ("Item 0", price(0), "chromium"), urls[1]: ("Item 1", price(1), "chromium"),
                     urls[2]: ("Item 2", price(2), "lightpanda")}
    assert not list(store.iter_failures())
    assert stat["render_fallbacks"] == 2 and stat["items"] == 3


def test_try_falls_back_as_a_run_does(tmp_path):
    small = shop_site(items=1)
    try:
        path = write_spider(tmp_path, "picky.py", PICKY_SPIDER, urls="", fallback="")
        out = microspider("try", path, small.url + "/picky/blank/0", "--json", cwd=tmp_path, check=0)
        off = microspider("try", path, small.url + "/picky/blank/0", "--json", "--render-fallback",
                          "off", cwd=tmp_path)
    finally:
        small.stop()
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["items"] == [{"_id": small.url + "/picky/blank/0", "name": "Item 0",
                                                "price": price(0), "engine": "chromium"}]
    assert off.returncode == 1 and json.loads(off.stdout)["error"]["type"] == "AttributeError"


def test_with_render_fallback_false_such_a_page_is_a_parse_failure(tmp_path, redis_url):
    small = shop_site(items=1)
    db = "sqlite:///%s" % (tmp_path / "store.sqlite3")
    try:
        path = write_spider(tmp_path, "picky.py", PICKY_SPIDER, urls=repr(small.url + "/picky/blank/0"),
                            fallback="render_fallback = False")
        microspider("run", path, "--max-age", "0", *FAST, "--redis", redis_url, "--mongo-uri", db,
                    cwd=tmp_path, check=0)
    finally:
        small.stop()
    store = open_store(db, "microspiders", "picky")
    assert [d["error"] for d in store.iter_failures()] == ["AttributeError"]
    assert not list(store.iter_items())


def test_kill_9_of_every_lightpanda_mid_crawl_loses_nothing(tmp_path, redis_url, r):
    """With the fallback on, as a user runs it: the pages of the killed engines go to Chromium."""
    from tests.test_render import cached

    slow = shop_site(items=60, api_delay=0.25)
    db = "sqlite:///%s" % (tmp_path / "store.sqlite3")
    try:
        path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url=slow.url, fault="",
                            engine="lightpanda", fallback=True)
        # few pages at once, so that the crawl outlives two rounds of kills
        proc = start("run", path, "-w", "2", "--render-pages", "3", *FAST, "--redis", redis_url,
                     "--mongo-uri", db, cwd=tmp_path)
        wait_until(lambda: cached(r) >= 3, timeout=30, message="pages done")
        killed = []
        for _ in range(2):      # twice: the replacements die too
            victims = wait_until(lambda: lightpandas(proc.pid), timeout=15, message="lightpanda")
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            killed += victims
            before = cached(r)
            wait_until(lambda: cached(r) > before or proc.poll() is not None, timeout=30,
                       message="progress after the kill")
        code, _, err = finish(proc, timeout=60)
        stat = json.loads(microspider("stat", "--json", "--redis", redis_url, "--mongo-uri", db,
                                      path, cwd=tmp_path, check=0).stdout)
    finally:
        slow.stop()
    assert code == 0, err[-2000:]
    assert killed and not any(alive(pid) for pid in killed)
    store = open_store(db, "microspiders", "shop")
    assert {i["_id"]: i["price"] for i in store.iter_items()} == {
        slow.url + "/item/%d" % n: price(n) for n in range(60)}
    assert not list(store.iter_failures()) and stat["work"] == 0 and stat["in_flight"] == 0
    assert stat["cached"] == 61 and stat["render_fallbacks"] >= 1   # the killed pages, in Chromium


def test_kill_9_of_a_worker_takes_its_lightpanda_along(tmp_path, redis_url, r):
    from tests.test_render import cached

    slow = shop_site(items=8, api_delay=0.25)
    db = "sqlite:///%s" % (tmp_path / "store.sqlite3")
    try:
        path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url=slow.url, fault="",
                            engine="lightpanda", fallback=False)
        proc = start("run", path, *FAST, "--redis", redis_url, "--mongo-uri", db, cwd=tmp_path)
        wait_until(lambda: cached(r) >= 2, timeout=30, message="pages done")
        worker = wait_until(lambda: children(proc.pid), message="the worker")[0]
        held = wait_until(lambda: lightpandas(worker), message="lightpanda")
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: not any(alive(pid) for pid in held), timeout=10, message="lightpanda gone")
        code, _, err = finish(proc, timeout=60)
    finally:
        slow.stop()
    assert code == 0, err[-2000:]
    assert {i["_id"] for i in open_store(db, "microspiders", "shop").iter_items()} == {
        slow.url + "/item/%d" % n for n in range(8)}


# -- set-up errors ---------------------------------------------------------------------
def test_render_engine_bogus_is_one_line_exit_2(tmp_path, redis_url):
    path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url="http://127.0.0.1:9", fault="",
                        engine="chromium", fallback=True)
    for command in (["run", path, "--redis", redis_url], ["try", path, "http://127.0.0.1:9/"]):
        proc = microspider(*command[:2], "--render-engine", "bogus", *command[2:], cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("microspider: error: ") and "--render-engine" in proc.stderr
        assert "chromium or lightpanda" in proc.stderr


def test_without_the_lightpanda_extra_a_lightpanda_spider_is_one_line_exit_2(tmp_path, redis_url):
    shim = tmp_path / "shim" / "lightpanda"       # the wheel made unimportable, in the subprocess
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("No module named lightpanda (test shim)")\n')
    path = write_spider(tmp_path, "shop.py", SHOP_SPIDER, url="http://127.0.0.1:9", fault="",
                        engine="lightpanda", fallback=True)
    env = cli_env(PYTHONPATH=os.pathsep.join([str(tmp_path / "shim"), ROOT]))
    db = "sqlite:///%s" % (tmp_path / "store.sqlite3")
    for command in (["run", path, "--redis", redis_url, "--mongo-uri", db],
                    ["try", path, "http://127.0.0.1:9/"]):
        proc = microspider(*command, cwd=tmp_path, env=env)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("microspider: error: ")
        assert "pip install microspider[lightpanda]" in proc.stderr
    check_render(resolve({"render": True, "render_engine": "lightpanda"}, Plain))   # here it is installed


def test_the_engine_runs_without_telemetry(site):
    f = fetcher()
    try:
        f.fetch(Seed(site.url + "/item/0"))
        pid = f.pool.browsers()[0].pids()[0]
        with open("/proc/%d/environ" % pid, "rb") as env:
            assert b"LIGHTPANDA_DISABLE_TELEMETRY=true" in env.read().split(b"\0")
    finally:
        f.close()


AGENT_SPIDER = '''
class Agent(Spider):
    name = "agent"
    render = True
    render_engine = "lightpanda"
    user_agents = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/150.0.0.0"]

    def parse(self, response, seed):
        yield {{"agent": response.request.headers.get("User-Agent")}}
'''


def test_a_browser_identity_on_lightpanda_is_a_warning_and_the_page_says_lightpanda(tmp_path, site):
    path = write_spider(tmp_path, "agent.py", AGENT_SPIDER)
    out = microspider("try", path, site.url + "/item/0", "--json", cwd=tmp_path, check=0)
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "Lightpanda sends its own User-Agent" in line]
    assert len(warnings) == 1 and warnings[0].startswith("microspider: agent: ")
    assert json.loads(out.stdout)["items"] == [{"agent": "Lightpanda/1.0"}]
