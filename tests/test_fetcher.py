"""Both fetchers (curl, urllib3) against real local HTTP servers: what parse receives, and what
counts as failed.  Every test runs once per transport (the `fetcher` fixture)."""
import gzip
import socket

import pytest
import requests

from microspider import Seed, Spider
from microspider.config import resolve
from microspider.errors import FetchError
from microspider.transport import FETCHERS, make_fetcher
from tests.servers import RawServer, Site


class S(Spider):
    name = "s"
    headers = {"X-Spider": "yes"}

    def parse(self, response, seed):
        return ()


@pytest.fixture(params=FETCHERS)
def transport(request):
    return request.param


@pytest.fixture
def fetcher(transport):
    """make(spider_cls=S, proxies=None, **flags): a fetcher of this test's transport."""
    made = []

    def make(spider_cls=S, proxies=None, **flags):
        flags = dict({"config": None, "fetcher": transport}, **flags)
        settings = resolve(flags, spider_cls, environ={})
        made.append(make_fetcher(spider_cls(), settings, proxies=proxies))
        return made[-1]

    yield make
    for f in made:
        f.close()


def route(handler, path, attempt):
    if path == "/redirect":
        return 302, {"Location": "/final?x=1"}, ""
    if path.startswith("/loop"):
        return 302, {"Location": "/loop%d" % (attempt % 2)}, ""
    if path == "/cookies":
        return 200, {"Set-Cookie": "sid=abc; Path=/"}, "ok"
    if path == "/echo":
        body = "%s|%s|%s|%s|%s" % (handler.command, handler.headers.get("Cookie"),
                                   handler.headers.get("X-Spider"), handler.headers.get("X-Seed"),
                                   handler.body.decode())
        return 200, {}, body
    if path == "/gzip":
        return 200, {"Content-Encoding": "gzip"}, gzip.compress("压缩".encode("utf-8"))
    if path == "/gbk":
        return 200, {"Content-Type": "text/html; charset=gbk"}, "<h1>北京</h1>".encode("gbk")
    if path == "/big":
        return 200, {}, b"x" * 5000
    if path.startswith("/flaky") and attempt <= 2:  # attempts count per path: /flaky?curl
        return 503, {}, "busy"
    if path == "/banned":
        return 403, {}, "go away"
    return 200, {}, "<h1>%s</h1>" % path


@pytest.fixture(scope="module")
def site():
    s = Site(route).start()
    yield s
    s.stop()


def test_response_is_a_requests_response_with_soup(site, fetcher):
    r = fetcher().fetch(Seed(site.url + "/page"))
    assert isinstance(r, requests.Response) and r.status_code == 200
    assert r.soup.h1.text == "/page" and r.url == site.url + "/page"
    assert r.headers["content-type"].startswith("text/html") and r.encoding == "utf-8"
    assert r.request.method == "GET" and r.request.url == site.url + "/page"
    assert r.request.headers["X-Spider"] == "yes" and r.request.body is None


def test_redirects_followed_and_final_url_kept(site, fetcher):
    r = fetcher().fetch(Seed(site.url + "/redirect"))
    assert r.url == site.url + "/final?x=1" and r.text == "<h1>/final?x=1</h1>"


def test_redirect_loop_is_a_failed_fetch(site, fetcher):
    with pytest.raises(FetchError, match="redirect"):
        fetcher(retry=0).fetch(Seed(site.url + "/loop"))


def test_cookies_headers_query_and_post_body_are_sent(site, fetcher):
    seed = Seed(site.url + "/echo", method="POST", headers={"X-Seed": "1"}, cookies={"a": "b"},
                data={"k": "v", "z": "1"})
    r = fetcher().fetch(seed)
    assert r.text == "POST|a=b|yes|1|k=v&z=1"
    assert fetcher().fetch(Seed(site.url + "/cookies")).cookies.get("sid") == "abc"


def test_gzip_and_declared_encodings(site, fetcher):
    assert fetcher().fetch(Seed(site.url + "/gzip")).content.decode("utf-8") == "压缩"
    r = fetcher().fetch(Seed(site.url + "/gbk"))
    assert r.encoding == "gb18030" and r.soup.h1.text == "北京"   # gbk read as gb18030, as browsers do


def test_retryable_status_is_retried_then_fails(site, fetcher, transport):
    f = fetcher(retry=2)
    assert f.fetch(Seed(site.url + "/flaky?" + transport)).status_code == 200 and f.retries == 2
    with pytest.raises(FetchError, match="HTTP 403"):
        fetcher(retry=1).fetch(Seed(site.url + "/banned"))   # default is_banned: 403


def test_rate_limiters_are_waited_for_before_each_attempt(site, transport):
    """--rate and --rate-per-host: both limiters' waits, slept before every attempt, retries too."""
    class Limiter:
        def reserve(self):
            return 0.25

    class PerHost:
        def for_host(self, host):
            return Limiter() if host == "127.0.0.1" else None

    waits = []
    settings = resolve({"config": None, "fetcher": transport, "retry": 2}, S, environ={})
    f = make_fetcher(S(), settings, limiter=Limiter(), host_limiter=PerHost(), sleep=waits.append)
    try:
        assert f.fetch(Seed(site.url + "/flaky?rate-" + transport)).status_code == 200
    finally:
        f.close()
    assert waits == [0.25] * 6          # 3 attempts, each waiting for the spider's and the host's


def test_max_body(site, fetcher):
    assert len(fetcher(max_body=5000).fetch(Seed(site.url + "/big")).content) == 5000
    with pytest.raises(FetchError, match="max-body"):
        fetcher(max_body=4999, retry=0).fetch(Seed(site.url + "/big"))


@pytest.mark.parametrize("answer, message", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
     "IncompleteRead|ProtocolError|incomplete body"),
    (b"garbage\r\n\r\n", "Error"),
    (b"", "Error"),
])
def test_truncated_and_broken_answers_are_failed_fetches(answer, message, fetcher):
    raw = RawServer(answer).start()
    try:
        with pytest.raises(FetchError, match=message):
            fetcher(retry=0, timeout=2).fetch(Seed(raw.url))
    finally:
        raw.stop()


def test_timeout_is_a_failed_fetch(fetcher):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)  # accepts, never answers
    try:
        with pytest.raises(FetchError, match="timed out|Timeout"):
            fetcher(retry=0, timeout=0.3).fetch(Seed("http://127.0.0.1:%d/" % srv.getsockname()[1]))
    finally:
        srv.close()


def test_https_target_through_an_http_proxy(tls_site, fetcher):
    from tests.proxyserver import ProxyServer

    class Insecure(S):
        verify = False  # the test site's certificate is self-signed

    proxy = ProxyServer("ok").start()
    try:
        from microspider.proxies import ProxyPool

        f = fetcher(Insecure, proxies=ProxyPool.from_source(proxy.url), retry=0)
        target = "https://127.0.0.1:%d/hotel" % tls_site.server.server_address[1]
        r = f.fetch(Seed(target))
        assert r.text == "secret page /hotel" and r.url == target     # a CONNECT tunnel
        assert proxy.hits == 1
        refused = "CERTIFICATE_VERIFY_FAILED|SSLError|certificate verify"
        with pytest.raises(FetchError, match=refused):
            fetcher(proxies=ProxyPool.from_source(proxy.url), retry=0).fetch(Seed(target))
    finally:
        proxy.stop()


def test_the_transport_package_imports_nothing_above_it():
    import subprocess
    import sys

    code = ("import sys, microspider.transport.fetcher, "
            "microspider.transport.curl_fetcher, microspider.transport.response, "
            "microspider.transport.impersonate, microspider.transport.browser, "
            "microspider.proxies.check\n"
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['microspider', 'crawl'], ['microspider', 'ops'], ['microspider', 'cli'], "
            "['microspider', 'web'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
