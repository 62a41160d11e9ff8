"""The session pool on a real private Redis: size, uses, jars shared between processes, retirement."""
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from microspider.proxies import ProxyPool
from microspider.seed import Seed
from microspider.sessions import SessionPool
from microspider.state.sessions import SessionStore

HOST = "shop.test"
PROXIES = ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"]


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _pool(r, size=3, max_uses=50, proxies=None, clock=None, **kw):
    return SessionPool(SessionStore(r, "s"), size, max_uses, proxies=proxies, now=clock or Clock(),
                       sleep=lambda s: None, **kw)


def _answer(status=200, set_cookie=(), location=None, url="http://shop.test/"):
    resp = requests.Response()
    resp.status_code = status
    resp.headers = CaseInsensitiveDict({"Location": location} if location else {})
    resp.url = url
    resp.__dict__["_set_cookie"] = list(set_cookie)
    return resp


def test_two_processes_share_one_pool_that_never_grows_past_size(r):
    a, b = _pool(r, size=4), _pool(r, size=4)
    taken = {a.take(HOST).id for _ in range(8)} | {b.take(HOST).id for _ in range(8)}
    assert r.hlen("microspider:{s}:sessions") == 4 and len(taken) == 4
    retired = set()
    for _ in range(10):                         # retire and refill from both sides
        for pool in (a, b):
            session = pool.take(HOST)
            pool.retire(session, "banned", HOST)
            retired.add(session.id)
            assert r.hlen("microspider:{s}:sessions") <= 4
    assert r.hlen("microspider:{s}:sessions") == 4 and len(retired) >= 10
    # b may retire a session a already retired (b had not heard yet): counted once
    assert int(r.hget("microspider:{s}:stats", "sessions_retired")) == len(retired)


def test_a_retired_session_is_not_taken_again_here_or_elsewhere(r):
    clock = Clock()
    a, b = _pool(r, size=2, clock=clock), _pool(r, size=2, clock=clock)
    first = a.take(HOST)
    assert b.take(HOST, exclude=()) is not None
    a.retire(first, "banned", HOST)
    assert all(a.take(HOST).id != first.id for _ in range(20))
    # b learns it at its next reservation (uses run out) or refresh, whichever comes first
    clock.t += SessionPool.REFRESH
    assert all(b.take(HOST).id != first.id for _ in range(20))


def test_uses_are_reserved_in_blocks_and_a_used_up_session_is_replaced(r):
    a, b = _pool(r, size=1, max_uses=25), _pool(r, size=1, max_uses=25)
    seen = {}
    for _ in range(40):
        for pool in (a, b):
            session = pool.take(HOST)
            seen[session.id] = seen.get(session.id, 0) + 1
    assert all(n <= 25 for n in seen.values())      # never past session_max_uses, across processes
    assert len(seen) >= 80 // 25 and int(r.hget("microspider:{s}:stats", "sessions_retired")) >= 2


def test_a_jar_travels_between_processes_and_only_changes_are_written(r):
    a, b = _pool(r, size=1), _pool(r, size=1)
    session = a.take(HOST)
    a.absorb(session, _answer(set_cookie=["sid=abc; Path=/", "lang=en; Domain=.shop.test"]), HOST)
    key = "microspider:{s}:session:" + session.id
    assert r.hget(key, "shop.test\tsid") == b"abc"
    before = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    a.absorb(session, _answer(set_cookie=["sid=abc; Path=/"]), HOST)  # unchanged: no write
    assert r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0) == before
    other = b.take(HOST)
    assert other.id == session.id and other.cookies_for("www.shop.test") == {"lang": "en"}
    assert other.cookies_for(HOST) == {"sid": "abc", "lang": "en"}
    assert other.cookies_for("elsewhere.test") == {}
    a.absorb(session, _answer(set_cookie=["sid=; Max-Age=0"]), HOST)
    assert r.hget(key, "shop.test\tsid") is None


def test_exchange_follows_redirects_and_sends_the_cookie_a_302_set(r):
    pool = _pool(r, size=1, agents=["agent-x"])
    session = pool.take(HOST)
    sent = []

    def request(seed, proxy):
        sent.append((seed.url, dict(seed.cookies), seed.headers.get("User-Agent"), seed.method))
        if seed.url == "http://shop.test/page":
            if "sid" in seed.cookies:
                return _answer(200, url=seed.url)
            return _answer(302, location="/grant?to=/page")
        return _answer(302, set_cookie=["sid=t1; Path=/"], location="http://shop.test/page")

    response = pool.exchange(request, Seed("http://shop.test/page", method="POST", data={"q": "1"},
                                           cookies={"mine": "1"}), session)
    assert response.status_code == 200 and response.session == session.id
    assert [u for u, _, _, _ in sent] == ["http://shop.test/page", "http://shop.test/grant?to=/page",
                                         "http://shop.test/page"]
    assert sent[-1][1] == {"sid": "t1", "mine": "1"} and sent[-1][3] == "GET"
    assert {agent for _, _, agent, _ in sent} == {"agent-x"}


def test_fresh_bans_bench_the_proxy_one_ban_does_not(r):
    proxies = ProxyPool(PROXIES)
    pool = _pool(r, size=3, proxies=proxies)
    first = pool.take(HOST)
    assert {s.proxy for s in pool._sessions.values()} == set(PROXIES)  # spread over the proxies
    pool.retire(first, "banned", HOST)
    assert proxies.is_ready(first.proxy, HOST)                          # one ban: the session only
    for _ in range(SessionPool.BURNT - 1):
        burnt = next(s for s in pool._sessions.values() if s.proxy == first.proxy)
        pool.retire(burnt, "banned", HOST)
    assert not proxies.is_ready(first.proxy, HOST)
    assert all(pool.take(HOST).proxy != first.proxy for _ in range(10))


def test_a_dropped_proxy_retires_its_sessions(r):
    clock = Clock()
    proxies = ProxyPool(PROXIES)
    pool = _pool(r, size=3, proxies=proxies, clock=clock)
    pool.take(HOST)
    proxies._replace(proxies.proxies[:2])       # what a refresh of the source does
    clock.t += SessionPool.REFRESH
    pool.take(HOST)
    live = SessionStore(r, "s").live()
    assert len(live) == 3 and {i["proxy"] for i in live.values()} <= set(PROXIES[:2])


def test_a_dead_holder_strands_nothing(r):
    a = _pool(r, size=2, max_uses=20)
    held = a.take(HOST)                         # a reserved a block, then its process died
    del a
    b = _pool(r, size=2, max_uses=20)
    ids = [b.take(HOST).id for _ in range(12)]
    assert held.id in ids                       # b uses what is left of it, no lease to wait out
    assert r.hlen("microspider:{s}:sessions") <= 2


def test_clear_forgets_the_pool(redis_url, r):
    from microspider.state import Redis, SpiderState

    state = SpiderState(Redis(redis_url), "s")
    pool = SessionPool(state.sessions, 2, 50, sleep=lambda s: None)
    session = pool.take(HOST)
    pool.absorb(session, _answer(set_cookie=["sid=1"]), HOST)
    assert r.exists("microspider:{s}:session:" + session.id)
    state.forget()
    assert not r.keys("microspider:{s}:session*")


def test_sessions_on_a_benched_proxy_make_room_for_a_working_one(r):
    proxies = ProxyPool(PROXIES[:2])
    pool = _pool(r, size=1, proxies=proxies)
    first = pool.take(HOST)
    proxies.bench(first.proxy, HOST)            # e.g. its connections keep failing
    second = pool.take(HOST)
    assert second is not None and second.id != first.id and second.proxy != first.proxy
    assert r.hlen("microspider:{s}:sessions") == 1
    proxies.bench(second.proxy, HOST)           # every proxy benched: no churn, no session
    assert pool.take(HOST) is None and int(r.hget("microspider:{s}:stats", "sessions_retired")) == 1


@pytest.mark.parametrize("flag,value", [("--sessions", "-1"), ("--session-max-uses", "0"),
                                        ("--session-warmup", "browser")])
def test_bad_session_options_are_one_line_errors(tmp_path, flag, value):
    from tests.crawl import microspider, write_spider

    write_spider(tmp_path, "s.py", "class S(Spider):\n    name = 's'\n    def parse(self, r, s):\n        pass\n")
    proc = microspider("run", flag, value, "s.py", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and flag in proc.stderr
