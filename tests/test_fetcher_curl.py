"""The behaviours every transport must hold (proxies, timeouts, limits, encodings, bodies), and
what only the libcurl transports (curl, impersonate) have: a gevent loop under them, so a slow
server blocks one greenlet, and a handle that never stays in the multi after a Timeout or a kill."""
import socket
import struct
import threading
import time
import zlib

import brotli
import gevent
import pycurl
import pytest

from microspider import Seed
from microspider.config import resolve
from microspider.transport.curl_fetcher import CurlFetcher
from microspider.errors import FetchError
from microspider.transport import make_fetcher
from microspider.proxies import ProxyPool
from tests.proxyserver import ProxyServer
from tests.servers import RawServer, Site
from tests.socksserver import SocksServer
from tests.test_fetcher import S, fetcher, transport  # noqa: F401 - fixtures used below

PAGE = "<h1>%s</h1>"


def route(handler, path, attempt):
    if path == "/ua":
        return 200, {}, "%s|%s" % (handler.headers.get("User-Agent"),
                                   handler.headers.get("X-Spider"))
    if path == "/echo":
        return 200, {}, "%s|%s|%s" % (handler.command, handler.headers.get("Content-Type"),
                                      handler.body.decode())
    if path == "/deflate":
        return 200, {"Content-Encoding": "deflate"}, zlib.compress("压缩 deflate".encode("utf-8"))
    if path == "/br":
        return 200, {"Content-Encoding": "br"}, brotli.compress("压缩 br".encode("utf-8"))
    if path == "/captcha":
        return 200, {}, "please solve the captcha"
    if path == "/hop":
        return 301, {"Location": "/hop2"}, ""
    if path == "/hop2":
        return 302, {"Location": "/landed?y=2"}, ""
    return 200, {}, PAGE % path


@pytest.fixture(scope="module")
def site():
    s = Site(route).start()
    yield s
    s.stop()


@pytest.fixture
def servers():
    """start(server): started now, stopped after the test."""
    started = []

    def start(server):
        started.append(server.start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


class RecordingPool(ProxyPool):
    """A real ProxyPool that also keeps every report, to assert on what the fetcher said."""

    def __init__(self, urls):
        super().__init__(list(urls))
        self.reports = []

    def report(self, proxy, host, ok, latency=None):
        self.reports.append((proxy.url, ok))
        super().report(proxy, host, ok, latency)


def serve_raw(servers, answer, stall=False, reset=False):
    """A RawServer stopped with the test."""
    return servers(RawServer(answer, stall=stall, reset=reset))


# -- proxies -----------------------------------------------------------------------------
def test_http_proxy_carries_the_request_and_hears_of_the_success(site, servers, fetcher):
    proxy = servers(ProxyServer("ok"))
    pool = RecordingPool([proxy.url])
    r = fetcher(proxies=pool).fetch(Seed(site.url + "/via"))
    assert r.text == PAGE % "/via" and r.url == site.url + "/via"
    assert proxy.hits == 1 and pool.reports == [(proxy.url, True)]


def test_proxy_with_credentials(site, servers, fetcher):
    proxy = servers(ProxyServer("ok", auth=("user", "pw")))
    f = fetcher(proxies=RecordingPool([proxy.url]))
    assert f.fetch(Seed(site.url + "/auth")).status_code == 200
    wrong = proxy.url.replace("user:pw", "user:nope")
    with pytest.raises(FetchError, match="HTTP 407"):
        fetcher(proxies=RecordingPool([wrong]), retry=0).fetch(Seed(site.url + "/auth"))


@pytest.mark.parametrize("mode", ["refuse", "reset", "garbage"])
def test_a_failing_proxy_is_reported_retried_through_another_and_benched(site, servers, fetcher,
                                                                         mode):
    bad, good = servers(ProxyServer(mode)), servers(ProxyServer("ok"))
    pool = RecordingPool([bad.url, good.url])
    f = fetcher(proxies=pool, retry=1, timeout=2)
    assert f.fetch(Seed(site.url + "/a")).text == PAGE % "/a"
    assert pool.reports == [(bad.url, False), (good.url, True)] and f.retries == 1
    for n in range(3):      # round-robin keeps offering the bad one until it is benched
        f.fetch(Seed(site.url + "/b%d" % n))
    assert [url for url, ok in pool.reports if not ok] == [bad.url] * ProxyPool.MAX_FAILURES
    assert {pool.acquire("127.0.0.1").url for _ in range(4)} == {good.url}   # benched


def test_https_proxy_for_http_and_https_targets(site, tls_site, certificate, servers, fetcher):
    class Insecure(S):
        verify = False  # the proxy's and the site's certificates are self-signed

    proxy = servers(ProxyServer("ok", certfile=certificate))
    f = fetcher(Insecure, proxies=RecordingPool([proxy.url]), retry=0)
    assert f.fetch(Seed(site.url + "/tls-proxy")).text == PAGE % "/tls-proxy"
    target = "https://127.0.0.1:%d/x" % tls_site.server.server_address[1]
    assert f.fetch(Seed(target)).text == "secret page /x" and proxy.hits == 2


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks5_proxy(site, tls_site, servers, fetcher, scheme):
    class Insecure(S):
        verify = False

    proxy = servers(SocksServer(scheme))
    f = fetcher(Insecure, proxies=RecordingPool([proxy.url]), retry=0)
    assert f.fetch(Seed(site.url + "/socks")).text == PAGE % "/socks"
    target = "https://127.0.0.1:%d/s" % tls_site.server.server_address[1]
    assert f.fetch(Seed(target)).text == "secret page /s"
    assert proxy.hits >= 1


def test_a_ban_is_retried_through_another_proxy_then_fails(site, servers, fetcher):
    class Picky(S):
        def is_banned(self, response):
            return b"captcha" in response.content

    first, second = servers(ProxyServer("ok")), servers(ProxyServer("ok"))
    pool = RecordingPool([first.url, second.url])
    with pytest.raises(FetchError, match=r"after 2 attempts: HTTP 200 \(banned\)"):
        fetcher(Picky, proxies=pool, retry=1).fetch(Seed(site.url + "/captcha"))
    assert pool.reports == [(first.url, False), (second.url, False)]


# -- timeouts ----------------------------------------------------------------------------
def test_timeout_bounds_the_connect(servers, fetcher):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(8):      # fill the accept queue: further SYNs are dropped, connect() hangs
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    try:
        started = time.monotonic()
        with pytest.raises(FetchError, match="(?i)timed out|timeout"):
            fetcher(retry=0, timeout=0.5).fetch(Seed("http://127.0.0.1:%d/" % port))
        assert time.monotonic() - started < 3
    finally:
        for s in fillers + [srv]:
            s.close()


def test_timeout_between_bytes(servers, fetcher):
    stalled = serve_raw(servers, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst bytes",
                        stall=True)
    started = time.monotonic()
    with pytest.raises(FetchError, match="(?i)timed out|timeout"):
        fetcher(retry=0, timeout=1).fetch(Seed(stalled.url))
    assert 0.9 < time.monotonic() - started < 4


def test_a_trickle_of_bytes_is_not_a_timeout(servers, fetcher):
    srv = servers(Trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"abcde", every=0.4))
    started = time.monotonic()
    assert fetcher(retry=0, timeout=1).fetch(Seed(srv.url)).content == b"abcde"
    assert time.monotonic() - started > 1.5     # longer in all than the timeout, never idle so long


class Trickle:
    """Answers `head`, then one byte of `body` every `every` seconds."""

    def __init__(self, head, body, every):
        self.head, self.body, self.every = head, body, every
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d/" % self.srv.getsockname()[1]

    def start(self):
        self.srv.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self):
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(self.head)
            for i in range(len(self.body)):
                time.sleep(self.every)  # the server's pace, in its own thread
                conn.sendall(self.body[i:i + 1])

    def stop(self):
        self.srv.close()


# -- bodies ------------------------------------------------------------------------------
def test_a_streamed_body_over_max_body_fails(servers, fetcher):
    unsized = serve_raw(servers, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 6000)
    assert len(fetcher(max_body=6000).fetch(Seed(unsized.url)).content) == 6000
    with pytest.raises(FetchError, match="max-body"):
        fetcher(max_body=5999, retry=0).fetch(Seed(unsized.url))


def test_a_reset_body_is_a_failed_fetch(servers, fetcher):
    broken = serve_raw(servers, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"y" * 10,
                       reset=True)
    with pytest.raises(FetchError):
        fetcher(retry=0, timeout=2).fetch(Seed(broken.url))


class ResetAfterFirst:
    """Answers the first request (keep-alive), then resets the connection at every later one."""

    def __init__(self):
        self.requests = 0
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d/" % self.srv.getsockname()[1]

    def start(self):
        self.srv.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            while conn.recv(65536):
                self.requests += 1
                if self.requests > 1:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def stop(self):
        self.srv.close()


def test_a_reused_connection_that_dies_is_one_failed_attempt_not_a_silent_resend(servers, fetcher):
    srv = servers(ResetAfterFirst())
    f = fetcher(retry=0)
    assert f.fetch(Seed(srv.url)).content == b"ok"
    with pytest.raises(FetchError):
        f.fetch(Seed(srv.url + "again"))       # sent on the kept-alive connection, which resets
    assert srv.requests == 2                   # libcurl alone would have sent it once more
    with pytest.raises(FetchError):
        fetcher(retry=1).fetch(Seed(srv.url + "twice"))
    assert srv.requests == 4                   # one request per attempt, no more


def test_repeated_set_cookie_headers_are_all_kept(servers, fetcher):
    two = serve_raw(servers, b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n"
                             b"X-Case: kept\r\nContent-Length: 2\r\n\r\nok")
    r = fetcher().fetch(Seed(two.url))
    assert r.cookies.get("a") == "1" and r.cookies.get("b") == "2"
    assert "a=1" in r.headers["set-cookie"] and "b=2" in r.headers["Set-Cookie"]
    assert r.headers["x-case"] == "kept" and r.reason == "OK"


def test_deflate_and_brotli_bodies_are_decoded(site, fetcher):
    assert fetcher().fetch(Seed(site.url + "/deflate")).content.decode("utf-8") == "压缩 deflate"
    assert fetcher().fetch(Seed(site.url + "/br")).content.decode("utf-8") == "压缩 br"


def test_redirect_chain_gives_the_final_url(site, fetcher):
    r = fetcher().fetch(Seed(site.url + "/hop"))
    assert r.url == site.url + "/landed?y=2" and r.text == PAGE % "/landed?y=2"
    assert r.request.url == site.url + "/hop"


# -- what is sent ------------------------------------------------------------------------
def test_user_agents_rotate_and_spider_headers_are_sent(site, fetcher):
    class Rotating(S):
        user_agents = ("ua-one", "ua-two")

    f = fetcher(Rotating)
    seen = [f.fetch(Seed(site.url + "/ua")).text for _ in range(3)]
    assert seen == ["ua-one|yes", "ua-two|yes", "ua-one|yes"]


def test_post_with_a_raw_body_and_with_a_form(site, fetcher):
    raw = fetcher().fetch(Seed(site.url + "/echo", method="POST", data="raw text"))
    assert raw.text == "POST|None|raw text" and raw.request.body == b"raw text"
    form = fetcher().fetch(Seed(site.url + "/echo", method="POST", data={"b": "2", "a": "1"}))
    assert form.text == "POST|application/x-www-form-urlencoded|a=1&b=2"


def test_verify_false_accepts_a_self_signed_site_and_verify_true_refuses_it(tls_site, fetcher):
    class Insecure(S):
        verify = False

    target = "https://127.0.0.1:%d/direct" % tls_site.server.server_address[1]
    assert fetcher(Insecure).fetch(Seed(target)).text == "secret page /direct"
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED|SSLError|certificate verify"):
        fetcher(retry=0).fetch(Seed(target))


# -- the curl transport on the gevent loop -----------------------------------------------
@pytest.fixture(params=["curl", "impersonate"])
def curl(request):
    """make(**flags): a CurlFetcher or its impersonating subclass (libcurl on the gevent loop)."""
    made = []

    def make(**flags):
        settings = resolve(dict({"config": None, "fetcher": request.param}, **flags), S, environ={})
        made.append(make_fetcher(S(), settings))
        assert isinstance(made[-1], CurlFetcher)
        return made[-1]

    yield make
    for f in made:
        f.close()


def off_the_multi(handle):
    """True if libcurl agrees the handle is in no multi: another multi accepts it."""
    if not isinstance(handle, pycurl.Curl):
        from curl_cffi._wrapper import lib

        probe = lib.curl_multi_init()
        try:
            if lib.curl_multi_add_handle(probe, handle._curl):
                return False
            return lib.curl_multi_remove_handle(probe, handle._curl) == 0
        finally:
            lib.curl_multi_cleanup(probe)
    probe = pycurl.CurlMulti()
    try:
        probe.add_handle(handle)
        probe.remove_handle(handle)
        return True
    except pycurl.error:
        return False
    finally:
        probe.close()


def test_a_slow_server_blocks_only_its_own_greenlet(site, servers, curl):
    stalled = serve_raw(servers, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nslow", stall=True)
    f = curl(retry=0, timeout=2)
    done = []

    def fetch(url):
        try:
            f.fetch(Seed(url))
            done.append(url)
        except FetchError:
            done.append("failed " + url)

    slow = gevent.spawn(fetch, stalled.url)
    fast = [gevent.spawn(fetch, site.url + "/fast%d" % n) for n in range(20)]
    gevent.joinall(fast, timeout=10)
    assert sorted(done) == sorted(site.url + "/fast%d" % n for n in range(20)), done
    assert not slow.dead and f.curl.handles == 1   # the slow one is still waiting for bytes
    slow.join(10)
    assert done[-1] == "failed " + stalled.url
    assert f.curl.handles == 0 and not f.curl.errors


@pytest.mark.parametrize("stop", ["timeout", "kill"])
def test_a_timeout_or_kill_during_a_transfer_leaves_no_handle_in_the_multi(site, servers, curl,
                                                                           stop):
    stalled = serve_raw(servers, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nslow", stall=True)
    f = curl(retry=0, timeout=30)
    if stop == "timeout":
        with pytest.raises(gevent.Timeout):
            with gevent.Timeout(0.3):
                f.fetch(Seed(stalled.url))
    else:
        g = gevent.spawn(f.fetch, Seed(stalled.url))
        deadline = time.monotonic() + 5
        while f.curl.handles != 1:      # poll (cooperatively) until the transfer is under way
            assert time.monotonic() < deadline, "the transfer never started"
            gevent.sleep(0.01)
        g.kill()
        assert g.dead and isinstance(g.value, gevent.GreenletExit)
    assert f.curl.handles == 0
    assert f._free and all(off_the_multi(h) for h in f._free)
    assert f.fetch(Seed(site.url + "/after")).text == PAGE % "/after"   # the handle is reusable
    assert f.curl.handles == 0 and not f.curl.errors


def test_handles_are_reused_and_many_transfers_share_one_multi(site, curl):
    f = curl()
    greenlets = [gevent.spawn(f.fetch, Seed(site.url + "/many%d" % n)) for n in range(30)]
    gevent.joinall(greenlets, timeout=20, raise_error=True)
    assert [g.value.text for g in greenlets] == [PAGE % ("/many%d" % n) for n in range(30)]
    pooled = len(f._free)
    assert 1 <= pooled <= 30 and f.curl.handles == 0
    for n in range(10):
        f.fetch(Seed(site.url + "/again%d" % n))
    assert len(f._free) == pooled       # sequential fetches took handles from the free list


def test_closing_the_fetcher_during_a_transfer_fails_that_transfer(servers, curl):
    stalled = serve_raw(servers, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nslow", stall=True)
    f = curl(retry=0, timeout=30)
    g = gevent.spawn(f.fetch, Seed(stalled.url))
    deadline = time.monotonic() + 5
    while f.curl.handles != 1:
        assert time.monotonic() < deadline, "the transfer never started"
        gevent.sleep(0.01)
    f.close()
    g.join(5)
    assert g.dead and isinstance(g.exception, FetchError) and "closed" in str(g.exception)
    assert f.curl.handles == 0


def test_an_error_in_a_callback_is_recorded_and_fails_the_transfer_instead_of_hanging(site, curl):
    f = curl(retry=0)

    class Broken:
        """The real multi, except that driving it raises (as a bug in the hub's callback would)."""

        def __init__(self, multi):
            self.multi = multi

        def __getattr__(self, name):
            return getattr(self.multi, name)

        def socket_action(self, fd, mask):
            raise RuntimeError("bug in the io callback")

    f.curl.multi = Broken(f.curl.multi)
    with gevent.Timeout(5):
        with pytest.raises(FetchError, match="internal error in the socket_action"):
            f.fetch(Seed(site.url + "/broken"))
    assert f.curl.handles == 0 and [where for where, _ in f.curl.errors] == ["socket_action"]
    f.curl.multi = f.curl.multi.multi
