"""The impersonating transport against a site that fingerprints the TLS ClientHello (tests/tls_site.py).

It passes directly and through a real CONNECT proxy, over HTTP/2 when offered; the curl and
urllib3 transports are refused (so these tests can fail); a User-Agent of another browser family
is refused by the site and warned about at start.  The fetcher contract tests (test_fetcher.py,
test_fetcher_curl.py) run on this transport too."""
import os
import threading

import gevent
import pytest

from microspider import Seed, Spider
from microspider.config import resolve
from microspider.errors import ConfigError, FetchError
from microspider.proxies import ProxyPool
from microspider.transport import check_impersonate, make_fetcher
from microspider.transport.impersonate import browser_family
from tests.crawl import microspider, write_spider
from tests.proxyserver import ProxyServer
from tests.servers import RawServer
from tests.tls_site import TLSSite, fingerprint_id

FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


class Insecure(Spider):
    name = "insecure"
    verify = False          # the test site's certificate is self-signed
    headers = {"X-Spider": "yes"}

    def parse(self, response, seed):
        return ()


@pytest.fixture(scope="module")
def waf(certificate):
    site = TLSSite(certificate).start()
    yield site
    site.stop()


@pytest.fixture
def fetcher():
    """make(spider_cls=Insecure, proxies=None, **flags): a fetcher, closed after the test."""
    made = []

    def make(spider_cls=Insecure, proxies=None, **flags):
        settings = resolve(dict({"config": None, "impersonate": "chrome"}, **flags), spider_cls,
                           environ={})
        made.append(make_fetcher(spider_cls(), settings, proxies=proxies))
        return made[-1]

    yield make
    for f in made:
        f.close()


def test_the_impersonating_fetcher_passes_over_http2_with_chrome_headers_in_order(waf, fetcher):
    response = fetcher().fetch(Seed(waf.url + "/page", headers={"Accept-Language": "zh-CN"}))
    seen = response.json()
    assert response.status_code == 200 and seen["family"] == "chrome"
    assert seen["protocol"] == "HTTP/2" and seen["alpn"][0] == "h2"
    names = [name for name, _ in seen["headers"]]
    assert names.index("sec-ch-ua") < names.index("user-agent") < names.index("accept-encoding")
    headers = dict(seen["headers"])
    assert "Chrome/" in headers["user-agent"] and headers["x-spider"] == "yes"
    assert headers["accept-language"] == "zh-CN"        # the seed's header replaces the profile's
    assert names.index("accept-language") < names.index("x-spider")   # ...in the profile's place


def test_through_a_real_connect_proxy(waf, fetcher):
    proxy = ProxyServer("ok").start()
    try:
        f = fetcher(proxies=ProxyPool.from_source(proxy.url), retry=0)
        response = f.fetch(Seed(waf.url + "/proxied"))
        assert response.status_code == 200 and response.json()["family"] == "chrome"
        assert response.json()["protocol"] == "HTTP/2"     # ALPN through the tunnel
        assert proxy.hits >= 1
    finally:
        proxy.stop()


def test_a_reused_handle_carries_nothing_of_the_previous_transfer(waf, fetcher):
    proxy = ProxyServer("ok").start()
    try:
        f = fetcher(proxies=ProxyPool.from_source(proxy.url), retry=0)
        f.fetch(Seed(waf.url + "/form", method="POST", data={"k": "v"}))
        f.proxies = None                             # the same handle, direct this time
        hits = proxy.hits
        seen = f.fetch(Seed(waf.url + "/after")).json()
        assert len(f._free) == 1 and proxy.hits == hits
        assert [(v.method, v.path) for v in waf.visits[-2:]] == [("POST", "/form"), ("GET", "/after")]
        assert "content-type" not in dict(seen["headers"]) and seen["family"] == "chrome"
    finally:
        proxy.stop()


@pytest.mark.parametrize("transport", ["curl", "urllib3"])
def test_the_other_fetchers_are_refused(waf, fetcher, transport):
    f = fetcher(impersonate=None, fetcher=transport, retry=0)
    before = len(waf.visits)
    with pytest.raises(FetchError, match="HTTP 403"):
        f.fetch(Seed(waf.url + "/plain"))
    assert waf.visits[before].family is None     # the site saw an OpenSSL hello, not a browser's


@pytest.mark.parametrize("profile", ["chrome", "edge", "safari", "firefox"])
def test_each_profile_looks_like_its_browser_family(waf, fetcher, profile):
    response = fetcher(impersonate=profile).fetch(Seed(waf.url + "/" + profile))
    assert response.status_code == 200
    assert response.json()["family"] == browser_family(profile)


def test_http11_where_the_site_offers_no_http2(certificate, fetcher):
    site = TLSSite(certificate, http2=False).start()
    try:
        seen = fetcher().fetch(Seed(site.url + "/one")).json()
        assert seen["protocol"] == "HTTP/1.1" and seen["family"] == "chrome"
    finally:
        site.stop()


def test_the_fingerprint_id_is_stable_across_connections(waf, fetcher):
    first = len(waf.hellos)
    for _ in range(3):
        fetcher().fetch(Seed(waf.url + "/again"))   # a new fetcher: a new connection each time
    hellos = waf.hellos[first:]
    assert len({fingerprint_id(h) for h in hellos}) == 1
    assert len({tuple(h.extensions) for h in hellos}) > 1   # though Chrome shuffles its extensions


def test_a_user_agent_of_another_family_is_refused_and_warned_at_start(waf, fetcher):
    class Firefoxy(Insecure):
        user_agents = [FIREFOX_UA]

    settings = resolve({"config": None, "impersonate": "chrome"}, Firefoxy, environ={})
    [warning] = check_impersonate(Firefoxy, settings)
    assert "Firefox/133.0" in warning and "chrome" in warning
    assert check_impersonate(Insecure, settings) == []
    with pytest.raises(FetchError, match="HTTP 403"):
        fetcher(Firefoxy, retry=0).fetch(Seed(waf.url + "/mismatch"))
    assert waf.visits[-1].verdict() == (403, "user agent disagrees")


def test_a_seed_user_agent_of_another_family_is_warned_once(waf, fetcher, caplog):
    f = fetcher(retry=0)
    for n in range(2):
        with pytest.raises(FetchError, match="HTTP 403"):
            f.fetch(Seed(waf.url + "/seed%d" % n, headers={"User-Agent": FIREFOX_UA}))
    assert len([r for r in caplog.records if "is not a chrome" in r.getMessage()]) == 1


def test_an_unknown_profile_is_a_config_error(fetcher):
    with pytest.raises(ConfigError, match="unknown --impersonate profile 'netscape4'"):
        fetcher(impersonate="netscape4")


def test_no_os_thread_per_request(fetcher):
    stalled = RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nslow", stall=True).start()
    f = fetcher(retry=0, timeout=30)
    threads = len(os.listdir("/proc/self/task"))
    greenlets = [gevent.spawn(f.fetch, Seed(stalled.url + "/%d" % n)) for n in range(20)]
    try:
        with gevent.Timeout(10):
            while f.curl.handles < 20:      # every transfer is in the one multi
                gevent.sleep(0.01)
        assert len(os.listdir("/proc/self/task")) <= threads + 1, threading.enumerate()
    finally:
        gevent.killall(greenlets)
        stalled.stop()
    assert f.curl.handles == 0


# -- the command line --------------------------------------------------------------------
WAF_SPIDER = '''
class Waf(Spider):
    name = "waf"
    start_urls = ["{url}/start"]
    verify = False
    {extra}

    def parse(self, response, seed):
        yield {{"_id": seed.url, "family": response.json()["family"]}}
'''


@pytest.fixture
def conn_args(redis_url, tmp_path):
    return ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]


def test_run_impersonate_crawls_the_fingerprinting_site(tmp_path, waf, conn_args):
    from microspider.store import open_store

    path = write_spider(tmp_path, "waf.py", WAF_SPIDER, url=waf.url, extra="")
    proc = microspider("run", path, "--impersonate", "chrome", "--idle", "0.3", *conn_args,
                       cwd=tmp_path, check=0)
    assert "not a" not in proc.stderr       # no User-Agent warning
    store = open_store("sqlite:///%s" % (tmp_path / "store.sqlite3"), "microspiders", "waf")
    assert [item["family"] for item in store.iter_items()] == ["chrome"]


def test_run_warns_once_of_a_user_agent_of_another_family(tmp_path, waf, conn_args):
    path = write_spider(tmp_path, "waf.py", WAF_SPIDER, url=waf.url,
                        extra="impersonate = 'chrome'\n    headers = {'User-Agent': %r}" % FIREFOX_UA)
    proc = microspider("run", path, "--retry", "0", "--no-backlog", "--idle", "0.3", *conn_args,
                       cwd=tmp_path, check=0)
    warnings = [line for line in proc.stderr.splitlines() if "is not a chrome" in line]
    assert len(warnings) == 1, proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--impersonate", "netscape4"], "unknown --impersonate profile 'netscape4'"),
    (["--impersonate", "chrome; rm"], "bad value"),
])
def test_bad_profiles_are_one_line_and_exit_2(tmp_path, waf, conn_args, args, message):
    path = write_spider(tmp_path, "waf.py", WAF_SPIDER, url=waf.url, extra="")
    proc = microspider("run", path, *args, *conn_args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_without_curl_cffi_a_spider_that_asks_for_it_gets_one_line_naming_the_extra(
        tmp_path, waf, conn_args):
    from tests.crawl import cli_env

    blocker = tmp_path / "blocker" / "curl_cffi"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named curl_cffi')\n")
    env = cli_env()
    env["PYTHONPATH"] = str(blocker.parent) + os.pathsep + env["PYTHONPATH"]
    path = write_spider(tmp_path, "waf.py", WAF_SPIDER, url=waf.url, extra="impersonate = 'chrome'")
    proc = microspider("run", path, *conn_args, cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "pip install microspider[impersonate]" in line
