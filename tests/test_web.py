"""`microspider web` over real HTTP: a real process, a private Redis, the embedded SQLite store."""
import json
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from microspider import config
from microspider.state import keys
from microspider.state import Redis
from microspider.crawl.supervisor import Run
from microspider.spider import Spider
from microspider.store import open_store
from microspider.web import charts, data
from tests.crawl import microspider
from tests.webserver import TOKEN, WebServer, folder, populate, stat_json, store_uri, web  # noqa: F401 (fixtures)

NAME = "shop"




@pytest.fixture
def shop(web, r, redis_url, folder):
    """The `shop` spider populated, its store emptied afterwards; returns the hostile failure's id."""
    fingerprint = populate(r, store_uri(folder), NAME)
    yield fingerprint
    store = open_store(store_uri(folder), "microspiders", NAME)
    store.clear_failures()
    store.clear_items()
    store.close()


def get(web, path, **kwargs):
    return requests.get(web.url + path, timeout=10, **kwargs)


def post(web, path, token=TOKEN, origin="same", **form):
    headers = {}
    if origin == "same":
        headers["Origin"] = web.url
    elif origin:
        headers["Origin"] = origin
    if token is not None:
        form["token"] = token
    return requests.post(web.url + path, data=form, headers=headers, timeout=30, allow_redirects=False)


# -- figures ------------------------------------------------------------------------
def test_api_stat_is_stat_json_of_every_spider(web, shop, redis_url, folder):
    answer = get(web, "/api/stat")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    expected = stat_json(redis_url, store_uri(folder), folder)
    assert answer.json() == expected
    assert set(expected) == {NAME} and expected[NAME]["work"] == 3 and expected[NAME]["failures"] == 2


def test_metrics_parse_and_equal_stat_json(web, shop, redis_url, folder, r):
    r.hset(keys.sessions(NAME), mapping={"s1": "{}", "s2": "{}"})
    r.hincrby(keys.stats(NAME), "sessions_retired", 7)
    r.hincrby(keys.stats(NAME), "render_fallbacks", 3)
    answer = get(web, "/metrics")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, s.labels["spider"]): s.value
               for family in text_string_to_metric_families(answer.text) for s in family.samples
               if "spider" in s.labels}
    expected = stat_json(redis_url, store_uri(folder), folder, NAME)
    for field in ("work", "backlog", "in_flight", "cached", "items", "failures", "workers", "sessions"):
        assert samples[("microspider_" + field, NAME)] == expected[field], field
    assert samples[("microspider_pages_total", NAME)] == 42
    assert expected["sessions"] == 2 and samples[("microspider_sessions_retired_total", NAME)] == 7
    assert expected["render_fallbacks"] == 3 and samples[("microspider_render_fallbacks_total", NAME)] == 3
    page = get(web, "/spider/shop").text
    assert 'data-key="sessions">2<' in page and 'data-key="sessions_retired">7<' in page
    assert 'data-key="render_fallbacks">3<' in page
    kinds = {f.name: f.type for f in text_string_to_metric_families(answer.text)}
    assert kinds["microspider_pages"] == "counter" and kinds["microspider_work"] == "gauge"


def test_the_overview_shows_each_spider_with_state_and_links(web, shop, r):
    r.sadd(keys.SPIDERS, "shop_detail")
    r.sadd(keys.upstream("shop_detail"), NAME)
    r.hset(keys.meta("shop_detail"), "relay_mode", 0)
    page = get(web, "/").text
    assert '<tr data-spider="shop">' in page and '<tr data-spider="shop_detail">' in page
    assert 'data-key="work">3<' in page and 'data-key="failures">2<' in page
    assert 'data-state="running"' in page and 'data-state="waiting"' in page
    assert "waits on shop work 3" in page
    assert '<polyline points="' in page and "marker-end" in page     # a chart; the chain's arrow
    partial = get(web, "/?partial=1").text
    assert partial.lstrip().startswith("<section>") and "<html" not in partial


def test_the_spider_page_groups_failures_and_counts_the_backlog_by_age(web, shop):
    page = get(web, "/spider/shop").text
    assert 'data-error="KeyError">1<' in page and 'data-error="ValueError">1<' in page
    for age, seeds, parked in ((1, 1, 0), (2, 1, 0), (3, 1, 1)):
        assert ('<tr><td class="num">%d</td><td class="num">%d</td><td class="num">%d</td></tr>'
                % (age, seeds, parked)) in page
    assert page.count('<article class="failure"') == 2


def test_hostile_bodies_headers_and_tracebacks_are_escaped(web, shop):
    page = get(web, "/spider/shop").text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;" in page
    assert "<script>document.title" not in page and "<img src=x" not in page
    assert "X-Evil: &lt;script&gt;" in page and "Traceback &lt;script&gt;x&lt;/script&gt;" in page
    assert "boom &lt;b&gt;bold&lt;/b&gt;" in page
    assert '<iframe class="body" sandbox=""' in page


def test_every_page_has_a_strict_csp_and_the_body_route_a_sandbox(web, shop):
    for path in ("/", "/spider/shop", "/spider/shop?partial=1", "/nosuch"):
        csp = get(web, path).headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    body = get(web, "/spider/shop/failure/%s/body" % shop)
    assert body.status_code == 200 and body.content.startswith(b"<html><head><title>page")
    assert body.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert body.headers["X-Content-Type-Options"] == "nosniff"
    assert get(web, "/spider/shop/failure/%s/body" % ("0" * 40)).status_code == 404


def test_unknown_spider_and_route_are_404_and_chinese_labels_switch(web, shop):
    assert get(web, "/spider/nosuch").status_code == 404
    assert get(web, "/nosuch").status_code == 404
    assert get(web, "/api/stat", params={"x": "1"}).status_code == 200
    page = get(web, "/", params={"lang": "zh"}).text
    assert "待抓取" in page and "爬虫之间的链接" in page and 'href="/?lang=en"' in page
    assert "待抓取" not in get(web, "/").text


def test_a_path_starting_with_two_slashes_links_only_to_the_dashboard(web, shop):
    page = get(web, "//elsewhere.example/x")
    assert page.status_code == 404
    assert 'href="/elsewhere.example/x?lang=zh"' in page.text and 'href="//' not in page.text


def test_a_foreign_host_header_is_refused_on_loopback(web, shop):
    answer = requests.get(web.url + "/api/stat", headers={"Host": "evil.example:80"}, timeout=10)
    assert answer.status_code == 403


# -- actions -----------------------------------------------------------------------
def snapshot(r):
    return (r.lrange(keys.work(NAME), 0, -1), r.zrange(keys.backlog(NAME), 0, -1, withscores=True))


@pytest.mark.parametrize("token, origin", [(None, "same"), ("wrong-token", "same"),
                                           (TOKEN, "http://evil.example"), ("", "same")])
@pytest.mark.parametrize("action", ["retry", "relay", "unpark"])
def test_actions_without_the_right_token_or_from_elsewhere_are_403_and_change_nothing(
        web, shop, r, action, token, origin):
    before = snapshot(r)
    answer = post(web, "/spider/shop/" + action, token=token, origin=origin, max_age="9")
    assert answer.status_code == 403
    assert snapshot(r) == before


def test_actions_refuse_get_and_cross_site_fetch_metadata(web, shop, r):
    before = snapshot(r)
    assert get(web, "/spider/shop/relay").status_code == 405
    answer = requests.post(web.url + "/spider/shop/relay", data={"token": TOKEN}, timeout=10,
                           headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403
    answer = requests.post(web.url + "/spider/shop/relay", data={"token": TOKEN}, timeout=10,
                           headers={"Referer": "http://evil.example/page"})
    assert answer.status_code == 403
    assert snapshot(r) == before


def test_retry_with_the_token_sends_stored_failures_back(web, shop, r):
    answer = post(web, "/spider/shop/retry")
    assert answer.status_code == 200
    assert "2 seeds sent to the work queue" in answer.text
    urls = [json.loads(raw)["url"] for raw in r.lrange(keys.work(NAME), 0, -1)]
    assert len(urls) == 5 and sorted(urls[-2:]) == ["http://a.example/hostile", "http://a.example/other"]


def test_relay_with_the_token_header_moves_the_backlog(web, shop, r):
    answer = requests.post(web.url + "/spider/shop/relay", headers={"X-Microspider-Token": TOKEN},
                           timeout=30)
    assert answer.status_code == 200
    assert "2 seeds moved to the work queue, 1 stayed in the backlog" in answer.text
    assert r.llen(keys.work(NAME)) == 5
    assert [json.loads(m)["age"] for m in r.zrange(keys.backlog(NAME), 0, -1)] == [3]


def test_unpark_with_the_token_gives_parked_seeds_a_due_time(web, shop, r):
    assert post(web, "/spider/shop/unpark", max_age="3").status_code == 200
    scores = [s for _, s in r.zrange(keys.backlog(NAME), 0, -1, withscores=True)]
    assert len(scores) == 3 and all(s != float("inf") for s in scores)
    assert post(web, "/spider/shop/unpark", max_age="x").status_code == 400


# -- the command ---------------------------------------------------------------------
def test_a_public_host_without_token_is_one_line_exit_2(tmp_path, redis_url):
    proc = microspider("web", "--redis", redis_url, "--host", "0.0.0.0", cwd=tmp_path, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("microspider: error: --host 0.0.0.0")
    assert "--token" in proc.stderr


def test_without_token_one_is_printed_and_it_works(redis_server, r, redis_url, tmp_path):
    populate(r, store_uri(tmp_path), NAME)
    server = WebServer(redis_url, store_uri(tmp_path), tmp_path).start()
    try:
        token_line = server.proc.stderr.readline()
        assert token_line.startswith("microspider: token for actions (retry, relay, unpark): ")
        token = token_line.rsplit(" ", 1)[1].strip()
        assert len(token) >= 30
        assert requests.post(server.url + "/spider/shop/relay", data={"token": TOKEN},
                             timeout=10).status_code == 403
        assert requests.post(server.url + "/spider/shop/relay", data={"token": token},
                             timeout=30).status_code == 200
        assert r.llen(keys.work(NAME)) == 5
    finally:
        assert server.stop() == 0
    assert server.lines[0] == "microspider: dashboard at %s/\n" % server.url


# -- the data adapter and the history kept -----------------------------------------
def test_states(redis_url, r):
    conn = Redis(redis_url)
    now = time.time()
    populate(r, "sqlite:///:memory:", NAME)
    assert data.state(conn, NAME, 1) == ("running", "work 3")
    assert data.state(conn, NAME, 0) == ("stopped", "work 3")
    r.sadd(keys.upstream("down"), NAME)
    r.hset(keys.meta("down"), "relay_mode", 0)
    assert data.state(conn, "down", 1) == ("waiting", "shop work 3")
    r.delete(keys.work(NAME), keys.backlog(NAME))
    assert data.state(conn, NAME, 0) == ("finished", "")
    assert data.state(conn, "never", 0) == ("stopped", "never ran")
    history = data.pages_history(conn, NAME, now)
    assert len(history) == 720 and history[-3] == 10 and history[-100] == 25 and sum(history) == 35
    conn.close()


def test_the_run_keeps_an_hour_of_pages(redis_url, r, tmp_path):
    class Keeper(Spider):
        name = "keeper"

        def parse(self, response, seed):
            pass

    now = int(time.time() // 5)
    r.hset(keys.pages("keeper"), mapping={now - 700: 1, now - 30: 2, now - 725: 3})
    run = Run("keeper", Keeper, config.resolve({}, Keeper, environ={}), redis_url, store_uri(tmp_path))
    run._reclaim()
    assert sorted(int(k) for k in r.hkeys(keys.pages("keeper"))) == [now - 700, now - 30]


def test_chain_layout_puts_each_spider_right_of_its_upstreams():
    layout = charts.chain({"city": [], "hotel": ["city"], "info": ["hotel", "city"], "lone": []})
    x = {n["name"]: n["x"] for n in layout["nodes"]}
    assert x["city"] == x["lone"] < x["hotel"] < x["info"]
    assert len(layout["edges"]) == 3
    assert charts.depths({"a": ["b"], "b": ["a"]}) in ({"a": 1, "b": 0}, {"a": 0, "b": 1})


def test_web_and_run_show_their_options_in_help(capsys):
    from microspider.cli import main

    assert main(["web", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--token", "--redis", "--mongo-uri", "--alert-webhook",
                 "--alert-format", "--stall-after", "--alert-failure-rate", "[default: 8642]"):
        assert flag in out, flag
    assert main(["run", "--help"]) == 0
    assert "--alert-webhook" in capsys.readouterr().out


@pytest.mark.slow   # heavier run: bash scripts/test.sh -m slow (docs/testing.md)
def test_the_demo_serves_the_dashboard_while_it_runs(tmp_path):
    import subprocess
    import sys

    from tests.crawl import ROOT
    from tests.servers import free_port, wait_until

    port = free_port()
    demo = subprocess.Popen([sys.executable, "-m", "examples.ctrip.demo", "--hotels", "300",
                             "--dir", str(tmp_path / "demo"), "--web", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = demo.stderr.readline()
        while line and "dashboard at" not in line:
            line = demo.stderr.readline()
        assert line.strip() == "demo: dashboard at http://127.0.0.1:%d/" % port
        assert demo.stderr.readline().startswith("demo: token for actions (retry, relay, unpark): ")
        found = wait_until(lambda: _names(port) >= {"ctrip_city", "ctrip_hotel", "ctrip_hotel_info"},
                           timeout=30, interval=0.5, message="the three spiders on /api/stat")
        assert found
        out, err = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, out[-2000:] + err[-2000:]
    assert out.strip().splitlines()[-1].startswith("COMPLETE: 297/297")
    with pytest.raises(requests.ConnectionError):    # the demo ended its dashboard
        requests.get("http://127.0.0.1:%d/api/stat" % port, timeout=2)


def _names(port):
    try:
        return set(requests.get("http://127.0.0.1:%d/api/stat" % port, timeout=2).json())
    except (requests.RequestException, ValueError):
        return set()


def test_redis_going_away_is_a_503_page_not_a_crash(tmp_path):
    from tests.servers import RedisServer

    server = RedisServer().start()
    web = None
    try:
        web = WebServer(server.url, store_uri(tmp_path), tmp_path).start()
        assert requests.get(web.url + "/api/stat", timeout=10).json() == {}
        server.stop()
        answer = requests.get(web.url + "/", timeout=30)
        assert answer.status_code == 503 and "Redis or the store does not answer" in answer.text
        assert "Content-Security-Policy" in answer.headers
    finally:
        if web is not None:
            assert web.stop() == 0
        server.cleanup()
