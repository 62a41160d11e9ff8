"""Sessions in real crawls: the session site behind three proxies leaving from three loopback IPs."""
import json
import os
import signal
import time

import pytest

from microspider.store import open_store
from microspider.transport.impersonate import profile_identity
from tests.crawl import children, finish, microspider, start, stat, write_spider
from tests.proxyserver import ProxyServer
from tests.servers import wait_until
from tests.session_site import SessionRules, SessionSite
from tests.tls_site import TLSSite
from tests.cluster import cluster_url, redis_cluster  # noqa: F401 (fixtures)

SPIDER = '''
class S(Spider):
    name = "sess"
    start_urls = ["{url}/item/%d" % i for i in range({pages})]
{attributes}
    def is_banned(self, response):
        return response.status_code in (403, 429) or {ban!r} in response.content

    def parse(self, response, seed):
        assert response.status_code == 200 and b"<h1>" in response.content, response.text[:200]
        yield {{"_id": seed.url, "session": response.session}}
'''
AGENTS = ["agent-a/1.0", "agent-b/2.0"]
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
SOURCES = ("127.0.0.11", "127.0.0.12", "127.0.0.13")


@pytest.fixture
def three_proxies(tmp_path):
    proxies = [ProxyServer(source_address=ip).start() for ip in SOURCES]
    (tmp_path / "proxies.txt").write_text("".join(p.url + "\n" for p in proxies))
    yield proxies
    for p in proxies:
        p.stop()


def _spider(tmp_path, url, pages, ban=b"Blocked", **attributes):
    """Write the test spider with class `attributes` (user_agents, render, ...) and what a ban shows."""
    lines = "".join("    %s = %r\n" % kv for kv in attributes.items())
    write_spider(tmp_path, "s.py", SPIDER, url=url, pages=pages, attributes=lines, ban=ban)


def _items(tmp_path):
    return list(open_store("sqlite:///%s/s.sqlite3" % tmp_path, "x", "sess").iter_items())


def _run_args(tmp_path, redis_url, *extra):
    return ("run", str(tmp_path / "s.py"), "-p", "proxies.txt", "--idle", "0.5",
            "--relay-delay", "0.05", "--redis", redis_url,
            "--mongo-uri", "sqlite:///%s/s.sqlite3" % tmp_path) + extra


@pytest.mark.parametrize("fetcher", ["curl", "urllib3"])
def test_a_crawl_reuses_sessions_and_never_crosses_proxies(tmp_path, redis_url, three_proxies, fetcher):
    site = SessionSite(max_uses=20).start()
    try:
        _spider(tmp_path, site.url, 300, user_agents=AGENTS)
        microspider(*_run_args(tmp_path, redis_url, "-w", "2", "--pool", "8", "--sessions", "6",
                               "--session-max-uses", "15", "--fetcher", fetcher),
                    cwd=tmp_path, check=0, timeout=120)
        figures = stat(tmp_path, "sess", "--redis", redis_url,
                       "--mongo-uri", "sqlite:///%s/s.sqlite3" % tmp_path)
    finally:
        site.stop()
    items = _items(tmp_path)
    assert sorted(i["_id"] for i in items) == sorted("%s/item/%d" % (site.url, i) for i in range(300))
    assert site.crossings == 0 and site.refused == 0        # no cookie went through another identity
    assert site.ips() == set(SOURCES)                       # the site saw the three proxies
    made = figures["sessions"] + figures["sessions_retired"]
    assert site.grants <= min(300 / 6, 2 * made)            # sessions reused, not one grant per page
    assert max(g.pages for g in site.tokens.values()) <= 15  # a used-up session is not used again
    assert 0 < figures["sessions"] <= 6 and figures["sessions_retired"] >= 300 // 15 - 6
    assert len({i["session"] for i in items}) >= 300 // 15


def test_banned_sessions_are_retired_and_their_seeds_retried_elsewhere(tmp_path, redis_url, three_proxies):
    site = SessionSite(max_uses=5).start()     # the site ends a session long before 50 uses
    try:
        _spider(tmp_path, site.url, 200, user_agents=AGENTS)
        microspider(*_run_args(tmp_path, redis_url, "--pool", "6", "--sessions", "4", "--retry", "5"),
                    cwd=tmp_path, check=0, timeout=120)
        figures = stat(tmp_path, "sess", "--redis", redis_url,
                       "--mongo-uri", "sqlite:///%s/s.sqlite3" % tmp_path)
    finally:
        site.stop()
    assert len(_items(tmp_path)) == 200 and figures["failures"] == 0
    assert site.crossings == 0
    assert figures["sessions_retired"] >= 200 // 5 - 4
    # a session the site has ended is dropped at its first "Blocked": only requests already in
    # flight on it (at most --pool 6) meet the ban after that
    assert site.refused <= 6 * figures["sessions_retired"]


def test_kill_9_of_a_worker_loses_nothing_and_the_pool_recovers(tmp_path, redis_url, three_proxies):
    site = SessionSite(max_uses=1000).start()
    try:
        _spider(tmp_path, site.url, 1500, user_agents=AGENTS)
        proc = start(*_run_args(tmp_path, redis_url, "-w", "2", "--pool", "4", "--sessions", "5",
                                "--session-max-uses", "40"), cwd=tmp_path)
        wait_until(lambda: site.pages >= 200, timeout=60, message="a crawl under way")
        workers = children(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        code, _, err = finish(proc, timeout=150)
        figures = stat(tmp_path, "sess", "--redis", redis_url,
                       "--mongo-uri", "sqlite:///%s/s.sqlite3" % tmp_path)
    finally:
        site.stop()
    assert code == 0, err[-2000:]
    assert len({i["_id"] for i in _items(tmp_path)}) == 1500
    assert site.crossings == 0 and 0 < figures["sessions"] <= 5
    assert max(g.pages for g in site.tokens.values()) <= 40



@pytest.mark.slow   # the default run warms sessions in test_a_browser_warms_impersonated_sessions...
def test_a_browser_warms_each_session_and_the_plain_fetcher_does_the_rest(tmp_path, redis_url,
                                                                          three_proxies):
    site = SessionSite(max_uses=1000, challenge=True).start()
    try:
        _spider(tmp_path, site.url, 150, ban=b"Checking your browser", user_agents=[CHROME],
                session_warmup="render", render_wait="h1")
        microspider(*_run_args(tmp_path, redis_url, "--pool", "6", "--sessions", "3",
                               "--session-max-uses", "50", "--render-pages", "1", "--timeout", "15"),
                    cwd=tmp_path, check=0, timeout=240)
    finally:
        site.stop()
    items = _items(tmp_path)
    assert len({i["_id"] for i in items}) == 150
    assert site.crossings == 0
    assert 0 < site.navigations <= 150 / 10                  # a challenge solved once serves many pages
    assert site.pages - site.navigations >= 150 * 0.8        # most pages came by the plain fetcher


@pytest.mark.slow   # heavier run: bash scripts/test.sh -m slow (docs/testing.md)
def test_rendered_pages_keep_their_session_cookies(tmp_path, redis_url, three_proxies, engine):
    site = SessionSite(max_uses=1000, challenge=True).start()
    try:
        _spider(tmp_path, site.url, 30, ban=b"Checking your browser", user_agents=[CHROME],
                render=True, render_wait="h1", render_engine=engine, render_fallback=False)
        microspider(*_run_args(tmp_path, redis_url, "--pool", "2", "--sessions", "2",
                               "--render-pages", "2", "--timeout", "15"),
                    cwd=tmp_path, check=0, timeout=240)
    finally:
        site.stop()
    assert len({i["_id"] for i in _items(tmp_path)}) == 30
    assert site.crossings == 0 and site.pages >= 30
    if engine == "chromium":   # the site knows a browser by Upgrade-Insecure-Requests; Lightpanda sends none
        assert site.navigations >= 30                     # every page in the browser...
    assert site.grants <= 4                                # ...with the cookie its session earned



def test_impersonated_sessions_keep_their_tls_fingerprint(tmp_path, redis_url, three_proxies,
                                                          certificate):
    rules = SessionRules(max_uses=1000)     # cookies bound to the TLS fingerprint and User-Agent
    site = TLSSite(certificate, route=rules.tls_route).start()
    try:
        _spider(tmp_path, site.url, 120, impersonate="chrome", verify=False)  # a self-signed certificate
        microspider(*_run_args(tmp_path, redis_url, "--pool", "6", "--sessions", "3",
                               "--session-max-uses", "40"), cwd=tmp_path, check=0, timeout=180)
    finally:
        site.stop()
    assert len({i["_id"] for i in _items(tmp_path)}) == 120
    assert rules.crossings == 0 and rules.refused == 0
    assert {tls[0] for tls, _ in rules.identities()} == {"chrome"}
    assert rules.grants <= 120 / 10 and all(p.hits for p in three_proxies)


def test_a_browser_warms_impersonated_sessions_and_the_cookie_holds_for_the_fetcher(
        tmp_path, redis_url, three_proxies, certificate):
    """session_warmup = "render" + impersonate: the warm-up tab presents the profile's identity,
    so a challenge cookie bound to IP + User-Agent (browser-class TLS required) serves the fetcher."""
    rules = SessionRules(max_uses=1000, challenge=True)
    site = TLSSite(certificate, route=rules.ip_route).start()
    try:
        _spider(tmp_path, site.url, 150, ban=b"Checking your browser", impersonate="chrome",
                session_warmup="render", render_wait="h1", verify=False)
        started = time.monotonic()
        microspider(*_run_args(tmp_path, redis_url, "--pool", "6", "--sessions", "3",
                               "--session-max-uses", "60", "--render-pages", "1", "--timeout", "15"),
                    cwd=tmp_path, check=0, timeout=240)
        elapsed = time.monotonic() - started
        figures = stat(tmp_path, "sess", "--redis", redis_url,
                       "--mongo-uri", "sqlite:///%s/s.sqlite3" % tmp_path)
    finally:
        site.stop()
    items = _items(tmp_path)
    made = figures["sessions"] + figures["sessions_retired"]
    print("warm-up crawl: %d pages, %d challenges for %d sessions, %d mismatches, %d refused, %.1f s"
          % (len(items), rules.grants, made, rules.crossings, rules.refused, elapsed))
    assert sorted(i["_id"] for i in items) == sorted(site.url + "/item/%d" % n for n in range(150))
    assert rules.crossings == 0 and rules.refused == 0        # no identity mismatch, ever
    assert rules.grants <= made + 1                           # about one challenge per session
    assert rules.pages >= 150 and {ip for ip, _ in rules.identities()} == set(SOURCES)
    assert {agent for _, agent in rules.identities()} == {profile_identity("chrome").agent}


@pytest.mark.cluster
def test_sessions_on_a_redis_cluster(tmp_path, cluster_url, three_proxies):
    site = SessionSite(max_uses=1000).start()
    try:
        _spider(tmp_path, site.url, 200, user_agents=AGENTS)
        microspider(*_run_args(tmp_path, cluster_url, "-w", "2", "--pool", "6", "--sessions", "4",
                               "--session-max-uses", "20"), cwd=tmp_path, check=0, timeout=180)
        figures = stat(tmp_path, "sess", "--redis", cluster_url,
                       "--mongo-uri", "sqlite:///%s/s.sqlite3" % tmp_path)
    finally:
        site.stop()
    assert len({i["_id"] for i in _items(tmp_path)}) == 200 and site.crossings == 0
    assert 0 < figures["sessions"] <= 4 and figures["sessions_retired"] >= 200 // 20 - 4
    assert max(g.pages for g in site.tokens.values()) <= 20
