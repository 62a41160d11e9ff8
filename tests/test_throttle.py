"""Throttling: 429 / 503 + Retry-After cool the host down for every process, on the real redis-server."""
import email.utils
import math
import threading
import time

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from microspider.state import Redis, SpiderState
from microspider.store import open_store
from microspider.transport.response import make_response
from microspider.transport.throttle import Throttle, is_throttling, member, retry_after
from microspider.errors import Throttled
from tests.crawl import microspider, stat, write_spider
from tests.servers import Site


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
class ThrottlingSite:
    """Every `every`-th request outside a window opens one: 429 with Retry-After in seconds,
    as an HTTP date, or none (the client's first doubling step, 1 s), in turn.  Records every
    request's arrival and when its cool-down check passed in the client (X-Checked-At)."""

    def __init__(self, first=30, every=30):
        self.first, self.every = first, every
        self.lock = threading.Lock()
        self.windows = []         # [opened, end, mode, headers, opened]
        self.arrivals = []        # (time, path, status, when the client checked the cool-down)
        self.count = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                site.answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def throttled(self):
        return sum(1 for a in self.arrivals if a[2] == 429)

    def answer(self, handler):
        now = time.time()         # as soon as the request is read, before any wait of ours
        time.sleep(0.005)
        opened = None
        with self.lock:
            self.count += 1
            window = self.windows[-1] if self.windows and now < self.windows[-1][1] else None
            if window is None and self.count >= self.first and self.count % self.every == 0:
                mode = ("seconds", "date", "none")[len(self.windows) % 3]
                if mode == "date":
                    end = float(math.ceil(now + 1.5))
                    header = {"Retry-After": email.utils.formatdate(end, usegmt=True)}
                elif mode == "seconds":
                    end, header = now + 1.0, {"Retry-After": "1"}
                else:
                    end, header = now + 1.0, {}
                window = opened = [now, end, mode, header, now]
                self.windows.append(window)
            status = 429 if window is not None else 200
            self.arrivals.append((now, handler.path, status,
                                  float(handler.headers.get("X-Checked-At") or 0)))
        body = b"slow down" if status == 429 else b"<h1>%s</h1>" % handler.path.encode()
        handler.send_response(status)
        for name, value in (window[3] if window else {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()

    def inside(self, known):
        """Requests that arrived inside a window although they were checked after a process had
        recorded its cool-down (`known`: when cool-downs were recorded): sent into a window."""
        out = []
        for opened, end, mode, _, _ in self.windows:
            knew = min((t for t in known if t >= opened), default=end)
            out += [(mode, "opened %.3f knew %+.3f checked %+.3f arrived %+.3f end %+.3f" % (
                opened, knew - opened, a[3] - opened, a[0] - opened, end - opened))
                for a in self.arrivals if opened <= a[0] < end and a[3] > knew]
        return out

    def in_flight(self):
        """Requests that arrived inside a window (all checked before it was known: in flight)."""
        return [a for a in self.arrivals for w in self.windows if w[4] <= a[0] < w[1]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


SPIDER = '''
class S(Spider):
    name = "thr"
    start_urls = ["{url}/p/%d" % i for i in range({pages})]

    def parse(self, response, seed):
        yield {{"_id": seed.url}}
'''
# Test instrumentation, loaded in the worker processes with the spider: each request says when
# its greenlet last passed the cool-down check, and each process notes in KNOWN when it recorded a
# cool-down, so the test can tell what was in flight from what was sent into a window.
CHECK_STAMP = '''
import threading as _threading, time as _time
from microspider.transport import fetcher as _fetcher, throttle as _throttle
_local = _threading.local()
_before, _headers = _throttle.Throttle.before, _fetcher.Fetcher.request_headers
_after = _throttle.Throttle.after

def _noted_after(self, *args):
    try:
        return _after(self, *args)
    except _throttle.Throttled:
        with open(KNOWN, "a") as f:
            f.write("%r\\n" % _time.time())
        raise

def _stamped_before(self, host, proxy):
    asked = _time.time()          # when the check was sent to Redis
    found = _before(self, host, proxy)
    _local.checked = asked
    return found

def _stamped_headers(self, seed):
    headers = _headers(self, seed)
    headers["X-Checked-At"] = repr(getattr(_local, "checked", 0.0))
    return headers

_throttle.Throttle.before, _fetcher.Fetcher.request_headers = _stamped_before, _stamped_headers
_throttle.Throttle.after = _noted_after
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
