"""One identity: what the fetchers and real headless Chromium present, with and without sessions.

The probe site (``tests/identity_site.py``) records every request's headers and
serves a page whose script reports ``navigator.*``; each rendered page must show
no headless tell, and its headers and its script must both equal the identity
(``microspider.identity``) the page was meant to present.
"""
import json

import pytest

from microspider import Seed, Spider
from microspider.config import resolve
from microspider.identity import brand_list, from_agent, of_browser
from microspider.store import open_store
from microspider.transport.browser import RenderFetcher
from microspider.transport.curl_fetcher import CurlFetcher
from microspider.transport.impersonate import ImpersonateFetcher, profile_headers, profile_identity
from tests.crawl import microspider, write_spider
from tests.identity_site import IdentitySite

WINDOWS_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/150.0.0.0 Safari/537.36")
MAC_FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:150.0) Gecko/20100101 Firefox/150.0"


@pytest.fixture
def site():
    probe = IdentitySite().start()
    yield probe
    probe.stop()


class Probe(Spider):
    name = "probe"
    render_wait = "pre:not(:empty)"

    def parse(self, response, seed):
        pass


def rendered(site, user_agents=None, headers=None, path="/probe"):
    """(report of the page's script, headers the server got, response) of one rendered probe."""
    spider = type("P", (Probe,), {"user_agents": user_agents, "headers": headers})()
    f = RenderFetcher(spider, resolve({"render": True, "timeout": 15}, type(spider)))
    try:
        response = f.fetch(Seed(site.url + path))
        own = of_browser(f.pool.browsers()[0].user_agent)
    finally:
        f.close()
    report = json.loads(response.soup.select_one("pre#report").text)
    return report, site.headers_of(path)[-1], response, own


def assert_presents(report, headers, identity):
    """The page's script and the request headers both say exactly `identity`, and nothing headless."""
    said = json.dumps([report, headers])
    assert "headless" not in said.lower(), said
    assert report["webdriver"] is False
    assert report["userAgent"] == headers["User-Agent"] == identity.agent
    assert report["platform"] == identity.platform
    assert headers["Accept-Language"] == identity.language
    assert report["language"] == identity.locale
    if identity.sec_ch_ua is None:
        assert "sec-ch-ua" not in {k.lower() for k in headers}
        return
    assert headers["sec-ch-ua"] == identity.sec_ch_ua
    assert headers["sec-ch-ua-platform"] == '"%s"' % identity.ch_platform
    assert headers["sec-ch-ua-mobile"] == ("?1" if identity.mobile else "?0")
    data = report["userAgentData"]
    assert data["brands"] == identity.brands()
    assert data["platform"] == identity.ch_platform and data["mobile"] is bool(identity.mobile)


# -- the record itself ----------------------------------------------------------------------
def test_client_hints_follow_chromes_own_brand_list():
    # as Chrome 120 and 124 sent them
    assert brand_list("120") == '"Not_A Brand";v="8", "Chromium";v="120", "Google Chrome";v="120"'
    assert brand_list("124") == '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'
    windows = from_agent(WINDOWS_CHROME)
    assert (windows.platform, windows.ch_platform, windows.mobile) == ("Win32", "Windows", False)
    assert windows.sec_ch_ua == brand_list("150")
    firefox = from_agent(MAC_FIREFOX)    # Firefox sends no client hints at all
    assert firefox.sec_ch_ua is None and firefox.platform == "MacIntel"
    assert set(firefox.headers()) == {"User-Agent", "Accept-Language"}


def test_a_profiles_identity_is_what_its_libcurl_sends(site):
    identity = profile_identity("chrome")
    wire = dict(profile_headers(identity.profile))
    assert identity.agent == wire["user-agent"] and identity.sec_ch_ua == wire["sec-ch-ua"]
    assert identity.profile.startswith("chrome") and identity.ch_platform in ("Windows", "macOS")
    f = ImpersonateFetcher(Probe(), resolve({"impersonate": "chrome", "timeout": 10}, Probe))
    try:
        response = f.fetch(Seed(site.url + "/plain"))
    finally:
        f.close()
    got = site.headers_of("/plain")[-1]
    assert got["user-agent"] == identity.agent and got["sec-ch-ua"] == identity.sec_ch_ua
    assert got["accept-language"] == identity.language
    # response.request.headers show the profile's headers, as sent
    shown = response.request.headers
    assert shown["sec-ch-ua"] == identity.sec_ch_ua and shown["User-Agent"] == identity.agent
    assert list(k.lower() for k in shown)[:3] == [k.lower() for k, _ in profile_headers(identity.profile)][:3]


def test_the_plain_fetcher_sends_a_user_agents_whole_identity(site):
    spider = type("P", (Probe,), {"user_agents": [WINDOWS_CHROME]})()
    f = CurlFetcher(spider, resolve({"timeout": 10}, type(spider)))
    try:
        f.fetch(Seed(site.url + "/plain"))
    finally:
        f.close()
    got = site.headers_of("/plain")[-1]
    for name, value in from_agent(WINDOWS_CHROME).headers().items():
        assert got[name] == value, name


# -- rendered pages, without sessions -------------------------------------------------------
def test_a_rendered_page_shows_no_headless_tell_with_the_browsers_own_identity(site):
    report, headers, response, own = rendered(site)
    assert_presents(report, headers, own)
    assert "HeadlessChrome" not in own.agent and "Chrome/" in own.agent
    assert response.request.headers["User-Agent"] == own.agent


def test_a_rendered_page_presents_the_spiders_user_agent_whole(site):
    report, headers, _, _ = rendered(site, user_agents=[WINDOWS_CHROME],
                                     headers={"Accept-Language": "de-DE,de;q=0.8,en;q=0.5"})
    identity = from_agent(WINDOWS_CHROME, "de-DE,de;q=0.8,en;q=0.5")
    assert identity.platform == "Win32" and identity.language == "de-DE,de;q=0.9,en;q=0.8"
    assert_presents(report, headers, identity)
    assert report["high"]["platformVersion"] == "10.0.0"


def test_a_rendered_page_with_a_firefox_user_agent_sends_no_client_hints(site):
    report, headers, _, _ = rendered(site, user_agents=[MAC_FIREFOX])
    assert_presents(report, headers, from_agent(MAC_FIREFOX))


# -- with sessions --------------------------------------------------------------------------
SESSION_SPIDER = '''
class S(Spider):
    name = "ident"
    start_urls = ["{url}/probe?n=%d" % i for i in range({pages})]
    render = True
    render_wait = "pre:not(:empty)"
    sessions = 2
{attributes}
    def parse(self, response, seed):
        yield {{"_id": seed.url, "report": response.soup.select_one("pre#report").text,
               "session": response.session}}
'''


@pytest.mark.parametrize("profile", ["chrome", pytest.param(None, marks=pytest.mark.slow)],
                         ids=["impersonate", "browser-own"])   # the browser's own identity: also
# test_a_rendered_page_shows_no_headless_tell_with_the_browsers_own_identity, in the default run
def test_sessions_render_their_identity_exactly(site, tmp_path, redis_url, profile):
    attributes = "    impersonate = %r\n" % profile if profile else ""
    write_spider(tmp_path, "s.py", SESSION_SPIDER, url=site.url, pages=6, attributes=attributes)
    microspider("run", str(tmp_path / "s.py"), "--idle", "0.5", "--timeout", "15",
                "--redis", redis_url, "--mongo-uri", "sqlite:///%s/s.sqlite3" % tmp_path,
                cwd=tmp_path, check=0, timeout=180)
    items = list(open_store("sqlite:///%s/s.sqlite3" % tmp_path, "x", "ident").iter_items())
    assert len(items) == 6 and all(item["session"] for item in items)
    if profile:
        identity = profile_identity(profile)
    else:   # no profile, no user_agents: the browser's own, without its headless tell
        agent = json.loads(items[0]["report"])["userAgent"]
        identity = of_browser(agent)
        assert "Chrome/" in agent and "X11; Linux" in agent
    for item in items:
        path = item["_id"][len(site.url):]
        assert_presents(json.loads(item["report"]), site.headers_of(path)[-1], identity)


# -- TLS session tickets ------------------------------------------------------------------
TICKET_SPIDER = '''
class S(Spider):
    name = "tickets"
    start_urls = ["{url}/item/%d" % i for i in range({pages})]
    verify = False
    sessions = 3
{attributes}
    def parse(self, response, seed):
        assert response.status_code == 200
        yield {{"_id": seed.url, "session": response.session}}
'''


def ticket_use(site):
    """(connections that resumed a ticket this site issued, those that resumed another IP's)."""
    earned = {hello.issued: hello.ip for hello in site.connections if hello.issued}
    resumed = [hello for hello in site.connections if hello.psk in earned]
    return len(resumed), sum(1 for hello in resumed if earned[hello.psk] != hello.ip)


@pytest.mark.parametrize("attributes", ["", "    impersonate = 'chrome'\n"], ids=["curl", "impersonate"])
def test_tls_tickets_are_resumed_only_by_the_session_that_earned_them(tmp_path, redis_url, certificate,
                                                                     attributes):
    from tests.proxyserver import ProxyServer
    from tests.tls_site import TLSSite

    site = TLSSite(certificate, http2=False, route=lambda visit: (200, [], b"<h1>ok</h1>"),
                   waf=False, tickets=True, close=True).start()
    proxies = [ProxyServer(source_address=ip).start() for ip in ("127.0.0.11", "127.0.0.12", "127.0.0.13")]
    try:
        (tmp_path / "proxies.txt").write_text("".join(p.url + "\n" for p in proxies))
        write_spider(tmp_path, "t.py", TICKET_SPIDER, url=site.url, pages=60, attributes=attributes)
        microspider("run", str(tmp_path / "t.py"), "-p", "proxies.txt", "--pool", "6", "--idle", "0.5",
                    "--redis", redis_url, "--mongo-uri", "sqlite:///%s/t.sqlite3" % tmp_path,
                    cwd=tmp_path, check=0, timeout=180)
    finally:
        site.stop()
        for p in proxies:
            p.stop()
    items = list(open_store("sqlite:///%s/t.sqlite3" % tmp_path, "x", "tickets").iter_items())
    assert len(items) == 60
    resumed, crossed = ticket_use(site)
    assert {hello.ip for hello in site.connections} == {"127.0.0.11", "127.0.0.12", "127.0.0.13"}
    assert resumed >= 10        # tickets were used...
    assert crossed == 0         # ...each only through the proxy and identity that earned it
