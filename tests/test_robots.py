"""robots.txt (--robots): RFC 9309 rules by Protego, shared through the real redis-server."""

import pytest

from microspider import Seed, Spider
from microspider.config import Settings
from microspider.crawl.robots import Robots, origin_of
from microspider.errors import NotYet
from microspider.proxies import ProxyPool
from microspider.state import Redis, SpiderState
from microspider.store import open_store
from microspider.transport.fetcher import Urllib3Fetcher
from tests.crawl import microspider, stat, write_spider
from tests.proxyserver import ProxyServer
from tests.servers import Site, wait_until

RULES = """\
User-agent: mybot
Disallow: /

User-agent: *
Disallow: /private/
Allow: /private/ok
Disallow: /*.pdf$
Disallow: /tmp*/x
"""


class _Spider(Spider):
    name = "rob"

    def parse(self, response, seed):
        return ()


class RobotsSite:
    """A site whose /robots.txt answer can change; records who asked for it."""

    def __init__(self, status=200, text=RULES):
        self.status, self.text = status, text
        self.asked_from = []
        self.site = Site(self.route).start()
        self.url = self.site.url

    def route(self, handler, path, attempt):
        if path == "/robots.txt":
            self.asked_from.append(handler.client_address[0])
            return self.status, {"Content-Type": "text/plain"}, self.text
        return 200, {}, "<h1>%s</h1>" % path

    def stop(self):
        self.site.stop()


@pytest.fixture
def site():
    s = RobotsSite()
    yield s
    s.stop()


def robots_for(redis_url, agent="*", proxies=None, **kwargs):
    fetcher = Urllib3Fetcher(_Spider(), Settings(retry=1, timeout=5, pool=2), proxies=proxies)
    store = SpiderState(Redis(redis_url), "rob").robots_store()
    return Robots(store, fetcher, agent, **kwargs)


def test_disallow_allow_and_wildcards(redis_url, site):
    robots = robots_for(redis_url)
    verdict = {path: robots.allowed(Seed(site.url + path)) for path in (
        "/", "/a/b", "/private/x", "/private/ok", "/private/ok/deeper", "/f.pdf", "/f.pdf?x=1",
        "/tmp1/x", "/tmp/y")}
    assert verdict == {"/": True, "/a/b": True, "/private/x": False, "/private/ok": True,
                       "/private/ok/deeper": True, "/f.pdf": False, "/f.pdf?x=1": True,
                       "/tmp1/x": False, "/tmp/y": True}
    assert site.asked_from == ["127.0.0.1"]          # once for every seed of the origin


def test_the_agent_picks_its_group(redis_url, site):
    robots = robots_for(redis_url, agent="mybot")
    assert robots.allowed(Seed(site.url + "/a")) is False


def test_fetched_once_for_every_process(redis_url, site):
    first, second = robots_for(redis_url), robots_for(redis_url)
    assert first.allowed(Seed(site.url + "/a"))
    assert not second.allowed(Seed(site.url + "/private/x"))
    assert len(site.asked_from) == 1


def test_a_4xx_robots_txt_allows_everything(redis_url):
    site = RobotsSite(status=404, text="User-agent: *\nDisallow: /\n")
    try:
        robots = robots_for(redis_url)
        assert robots.allowed(Seed(site.url + "/private/x"))
    finally:
        site.stop()


def test_a_5xx_robots_txt_disallows_for_now_and_is_asked_again(redis_url):
    site = RobotsSite(status=500, text="oops")
    try:
        robots = robots_for(redis_url, unavailable_ttl=0.5)
        with pytest.raises(NotYet) as caught:
            robots.allowed(Seed(site.url + "/a"))
        assert 0 < caught.value.wait <= 0.5
        with pytest.raises(NotYet):                  # not asked again within the wait
            robots.allowed(Seed(site.url + "/b"))
        assert len(site.asked_from) == 1
        site.status, site.text = 200, RULES

        def decided():
            try:
                return robots.allowed(Seed(site.url + "/private/x")) is False
            except NotYet:
                return False
        wait_until(decided, timeout=5, message="robots.txt asked for again")
        assert len(site.asked_from) == 2
    finally:
        site.stop()


def test_an_unreachable_robots_txt_disallows_for_now(redis_url):
    robots = robots_for(redis_url, unavailable_ttl=30)
    with pytest.raises(NotYet):
        robots.allowed(Seed("http://127.0.0.1:9/a"))    # nothing listens on the discard port


def test_crawl_delay_spaces_requests_for_every_process(redis_url):
    site = RobotsSite(text="User-agent: *\nCrawl-delay: 1.5\n")
    try:
        first, second = robots_for(redis_url), robots_for(redis_url)
        assert first.allowed(Seed(site.url + "/a"))
        with pytest.raises(NotYet) as caught:
            second.allowed(Seed(site.url + "/b"))
        assert 1.0 < caught.value.wait <= 1.5
    finally:
        site.stop()


def test_robots_txt_is_fetched_through_the_spiders_proxy(redis_url, site):
    proxy = ProxyServer(source_address="127.0.0.11").start()
    try:
        robots = robots_for(redis_url, proxies=ProxyPool([proxy.url]))
        assert not robots.allowed(Seed(site.url + "/private/x"))
    finally:
        proxy.stop()
    assert site.asked_from == ["127.0.0.11"] and proxy.hits == 1


def test_origins():
    assert origin_of("HTTP://Shop.Example:80/a?b") == "http://shop.example"
    assert origin_of("https://shop.example:8443/") == "https://shop.example:8443"


CRAWL = '''
class S(Spider):
    name = "robcrawl"
    start_urls = ["{url}/page/%d" % i for i in range(6)] + ["{url}/private/%d" % i for i in range(4)] \\
        + ["{url}/private/ok"]

    def parse(self, response, seed):
        yield {{"_id": seed.url, "at": __import__("time").time()}}
'''


def test_a_crawl_obeys_robots_txt_with_two_processes(tmp_path, redis_url):
    site = RobotsSite(text="User-agent: *\nDisallow: /private/\nAllow: /private/ok\nCrawl-delay: 0.3\n")
    store = "sqlite:///%s/s.sqlite3" % tmp_path
    try:
        write_spider(tmp_path, "s.py", CRAWL, url=site.url)
        microspider("run", "s.py", "--robots", "-w", "2", "--pool", "4", "--idle", "0.5",
                    "--redis", redis_url, "--mongo-uri", store, cwd=tmp_path, check=0, timeout=90)
        figures = stat(tmp_path, "robcrawl", "--redis", redis_url, "--mongo-uri", store)
        private = [site.site.count("/private/%d" % i) for i in range(4)]
    finally:
        site.stop()
    items = sorted(open_store(store, "x", "robcrawl").iter_items(), key=lambda i: i["at"])
    assert sorted(i["_id"].rsplit("/", 2)[-2:] == ["private", "ok"] or "/page/" in i["_id"]
                  for i in items) == [True] * 7
    assert private == [0, 0, 0, 0]                   # disallowed pages never requested
    assert len(site.asked_from) == 1                 # one robots.txt fetch for both processes
    assert figures["robots_denied"] == 4 and figures["failures"] == 0
    assert figures["work"] == 0 and figures["backlog"] == 0 and figures["in_flight"] == 0
    gaps = [b["at"] - a["at"] for a, b in zip(items, items[1:])]
    assert min(gaps) > 0.25, gaps                    # Crawl-delay across both processes


def test_a_file_stored_between_look_and_claim_is_not_fetched_again(redis_url, site):
    first, second = robots_for(redis_url), robots_for(redis_url)
    assert second.store.get(origin_of(site.url)) is None      # the second process looks: nothing
    assert first.allowed(Seed(site.url + "/a"))               # the first fetches and stores it
    # the second goes on to fetch it: its claim is refused, since it is stored, and it reads that
    assert not second.store.claim(origin_of(site.url), 10)
    status, body, _ = second._fetch(origin_of(site.url))
    assert status == 200 and body == RULES.encode()
    assert len(site.asked_from) == 1
