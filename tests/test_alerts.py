"""Alerts: a real Redis, a local HTTP receiver for the webhooks, an injected clock."""
import json
import time

import pytest

from microspider.state import keys
from microspider.state import Redis
from microspider.errors import ConfigError
from microspider.web import alerts
from tests.crawl import microspider, write_spider
from tests.servers import Site, wait_until

NAME = "shop"


class Clock:
    def __init__(self, start):
        self.t = start

    def __call__(self):
        return self.t


@pytest.fixture
def receiver():
    """A local webhook: the JSON bodies it received, in order."""
    got = []

    def route(handler, path, attempt):
        got.append((path, json.loads(handler.body)))
        return 200, {"Content-Type": "application/json"}, '{"ok": true}'
    site = Site(route).start()
    site.got = got
    yield site
    site.stop()


@pytest.fixture
def conn(redis_url):
    redis = Redis(redis_url)
    yield redis
    redis.close()


def inline(func, *args):
    func(*args)   # deliver at once, in the test's thread


def stalled_spider(r, now, started_ago=700):
    """A spider with work waiting, a live worker, and no page done since it started."""
    r.sadd(keys.SPIDERS, NAME)
    r.hset(keys.meta(NAME), mapping={"relay_mode": 0, "max_age": 5, "started": now - started_ago})
    r.rpush(keys.work(NAME), '{"url": "http://a.example/1"}')
    r.zadd(keys.workers(NAME), {"w1": now + 10 ** 6})


def alerter(site, fmt, clock, **extra):
    return alerts.Alerter([site.url + "/hook"], fmt, stall_after=600, failure_rate=0.5, now=clock,
                          spawn=inline, **extra)


EXPECTED_SHAPE = {
    "slack": lambda text: {"text": text},
    "dingtalk": lambda text: {"msgtype": "text", "text": {"content": text}},
    "wecom": lambda text: {"msgtype": "text", "text": {"content": text}},
    "feishu": lambda text: {"msg_type": "text", "content": {"text": text}},
}


@pytest.mark.parametrize("fmt", ["dingtalk", "wecom", "feishu", "slack"])
def test_a_stall_reaches_the_webhook_in_its_format(fmt, receiver, conn, r):
    now = time.time()
    stalled_spider(r, now)
    sent = alerter(receiver, fmt, Clock(now)).check(conn, NAME)
    assert [a["kind"] for a in sent] == ["stalled"]
    text = sent[0]["text"]
    assert text.startswith("microspider: shop stalled: 1 seeds waiting") and "no page done for 11 min" in text
    assert receiver.got == [("/hook", EXPECTED_SHAPE[fmt](text))]


def test_json_format_carries_spider_kind_text_and_time(receiver, conn, r):
    now = time.time()
    stalled_spider(r, now)
    alerter(receiver, "json", Clock(now)).check(conn, NAME)
    (path, body), = receiver.got
    assert body["spider"] == NAME and body["kind"] == "stalled" and body["time"] == now
    assert body["text"].startswith("microspider: shop stalled")


def test_no_stall_alert_before_stall_after_or_without_live_workers(receiver, conn, r):
    now = time.time()
    stalled_spider(r, now, started_ago=500)
    assert alerter(receiver, "json", Clock(now)).check(conn, NAME) == []
    r.delete(keys.workers(NAME))
    assert alerter(receiver, "json", Clock(now + 200)).check(conn, NAME) == []
    assert receiver.got == []


def test_a_page_done_recently_is_no_stall(receiver, conn, r):
    now = time.time()
    stalled_spider(r, now, started_ago=5000)
    r.hset(keys.pages(NAME), int(now // 5) - 2, 3)  # a page 10 s ago
    assert alerter(receiver, "json", Clock(now)).check(conn, NAME) == []


def test_the_same_alert_at_most_once_an_hour_across_processes(receiver, conn, r):
    now = time.time()
    stalled_spider(r, now)
    clock = Clock(now)
    first = alerter(receiver, "slack", clock)
    assert len(first.check(conn, NAME)) == 1
    clock.t += 4          # looked at less than CHECK_EVERY ago: not even looked
    assert first.check(conn, NAME) == []
    clock.t += 600
    assert first.check(conn, NAME) == []
    other = alerter(receiver, "slack", Clock(now + 1800))    # another process, same Redis
    assert other.check(conn, NAME) == []
    clock.t = now + 3599
    assert first.check(conn, NAME) == []
    clock.t = now + 3606   # (and CHECK_EVERY after the last look)
    assert [a["kind"] for a in first.check(conn, NAME)] == ["stalled"]
    assert len(receiver.got) == 2


def test_parse_failure_share_over_five_minutes(receiver, conn, r):
    now = time.time()
    r.sadd(keys.SPIDERS, NAME)
    r.hset(keys.meta(NAME), mapping={"relay_mode": 0, "max_age": 5, "started": now})
    r.hset(keys.stats(NAME), mapping={"ok": 100, "parse_failures": 10})
    clock = Clock(now)
    watcher = alerter(receiver, "json", clock)
    assert watcher.check(conn, NAME) == []            # one sample: no share yet
    clock.t += 60
    r.hset(keys.stats(NAME), mapping={"ok": 110, "parse_failures": 19})   # 9 of 19: below 0.5
    assert watcher.check(conn, NAME) == []
    clock.t += 60
    r.hset(keys.stats(NAME), mapping={"ok": 112, "parse_failures": 40})   # 30 of 42 since the start
    sent = watcher.check(conn, NAME)
    assert [a["kind"] for a in sent] == ["failure_rate"]
    assert "71% of parsed pages failed over the last 2 min (30 of 42; threshold 50%)" in sent[0]["text"]
    clock.t += 400        # the window slides: the last 5 minutes saw nothing new
    assert watcher.check(conn, NAME) == []


def test_too_few_outcomes_say_nothing(receiver, conn, r):
    now = time.time()
    r.sadd(keys.SPIDERS, NAME)
    clock = Clock(now)
    watcher = alerter(receiver, "json", clock)
    watcher.check(conn, NAME)
    clock.t += 10
    r.hset(keys.stats(NAME), mapping={"ok": 1, "parse_failures": 10})
    assert watcher.check(conn, NAME) == []


def test_a_finished_crawl_is_told_once_when_it_ends(receiver, conn, r):
    now = time.time()
    stalled_spider(r, now, started_ago=10)
    clock = Clock(now)
    watcher = alerter(receiver, "feishu", clock)
    assert watcher.check(conn, NAME) == []
    r.delete(keys.work(NAME))
    r.hset(keys.stats(NAME), "ok", 7)
    clock.t += 5
    sent = watcher.check(conn, NAME)
    assert [a["kind"] for a in sent] == ["finished"]
    assert receiver.got[-1][1] == {"msg_type": "text",
                                   "content": {"text": "microspider: shop finished: crawl finished: "
                                                       "7 pages done, 0 parse failures counted"}}
    clock.t += 5
    assert watcher.check(conn, NAME) == []
    fresh = alerter(receiver, "feishu", Clock(now + 20))   # started after the end: nothing to tell
    assert fresh.check(conn, NAME) == []
    assert len(receiver.got) == 1


def test_bad_alert_options_are_config_errors():
    with pytest.raises(ConfigError, match="http:// or https://"):
        alerts.from_options(["ftp://x"])
    with pytest.raises(ConfigError, match="--stall-after"):
        alerts.from_options(["http://x"], stall_after=0)
    with pytest.raises(ConfigError, match="--alert-failure-rate"):
        alerts.from_options(["http://x"], failure_rate=1.5)
    assert alerts.from_options([]) is None


SPIDER = '''
class Tiny(Spider):
    name = "tiny"
    start_urls = ["{url}/"]

    def parse(self, response, seed):
        yield {{"_id": seed.url}}
'''


def test_run_sends_the_finished_alert(receiver, redis_url, tmp_path):
    site = Site(lambda handler, path, attempt: (200, {}, "<h1>hi</h1>")).start()
    try:
        path = write_spider(tmp_path, "tiny.py", SPIDER, url=site.url)
        proc = microspider("run", path, "--idle", "0.3", "--redis", redis_url, "--mongo-uri",
                           "sqlite:///%s" % (tmp_path / "s.sqlite3"), "--alert-webhook",
                           receiver.url + "/run", "--alert-format", "slack", cwd=tmp_path)
    finally:
        site.stop()
    assert proc.returncode == 0, proc.stderr[-2000:]
    wait_until(lambda: receiver.got, timeout=5, message="the alert")
    assert receiver.got == [("/run", {"text": "microspider: tiny finished: crawl finished: "
                                              "1 pages done, 0 parse failures counted"})]


def test_run_refuses_a_bad_webhook(tmp_path, redis_url):
    proc = microspider("run", "nosuch.py", "--redis", redis_url, "--alert-webhook", "nope",
                       cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--alert-webhook 'nope'" in proc.stderr


def test_web_watches_every_spider_and_alerts(receiver, redis_url, r, tmp_path):
    from tests.webserver import WebServer

    now = time.time()
    stalled_spider(r, now, started_ago=100)
    server = WebServer(redis_url, "sqlite:///%s" % (tmp_path / "s.sqlite3"), tmp_path,
                       "--alert-webhook", receiver.url + "/web", "--alert-format", "wecom",
                       "--stall-after", "60").start()
    try:
        wait_until(lambda: receiver.got, timeout=15, message="the stall alert from web")
    finally:
        assert server.stop() == 0
    (path, body), = receiver.got
    assert path == "/web" and body["msgtype"] == "text"
    assert body["text"]["content"].startswith("microspider: shop stalled: 1 seeds waiting")
