"""`run -p`: real local forward proxies between the worker and a local site."""
import signal

import pytest

from microspider.state import keys
from microspider.store import open_store
from tests.crawl import finish, microspider, start, write_spider
from tests.proxyserver import ProxyServer
from tests.servers import Site, wait_until

SPIDER = '''
class P(Spider):
    name = "p"
    start_urls = ["{url}/%d" % i for i in range(30)]
    def parse(self, response, seed):
        yield {{"_id": seed.url}}
'''


@pytest.fixture
def proxies():
    started = []

    def make(mode):
        p = ProxyServer(mode=mode).start()
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def test_dead_proxies_are_avoided_and_nothing_is_lost(tmp_path, redis_url, r, proxies):
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    good, dead, garbage = proxies("ok"), proxies("refuse"), proxies("garbage")
    (tmp_path / "proxies.txt").write_text("%s\n# a comment\n%s\nnot a proxy\n%s\n"
                                          % (good.url, dead.url, garbage.url))
    try:
        path = write_spider(tmp_path, "p.py", SPIDER, url=site.url)
        proc = microspider("run", path, "-p", "proxies.txt", "--pool", "4", "--retry", "3",
                           "--idle", "0.3", "--relay-delay", "0.05", "--redis", redis_url,
                           "--mongo-uri", "sqlite:///%s/s.sqlite3" % tmp_path, cwd=tmp_path, check=0)
    finally:
        site.stop()
    assert "proxies.txt:4: skipped" in proc.stderr  # the bad line is reported, the rest used
    items = {i["_id"] for i in open_store("sqlite:///%s/s.sqlite3" % tmp_path, "x", "p").iter_items()}
    assert len(items) == 30
    assert good.hits >= 30
    assert garbage.hits <= 6                            # benched after a few failures per worker


def test_all_dead_pool_backlogs_what_it_holds_and_waits(tmp_path, redis_url, r, proxies):
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    dead = proxies("reset")
    try:
        path = write_spider(tmp_path, "p.py", SPIDER, url=site.url)
        proc = start("run", path, "-p", dead.url, "--pool", "4", "--retry", "2", "--relay-mode", "2",
                     "--redis", redis_url, "--mongo-uri", "sqlite:///%s/s.sqlite3" % tmp_path,
                     cwd=tmp_path)
        wait_until(lambda: r.zcard(keys.backlog("p")) >= 4, timeout=30, message="seeds backlogged")
        hits = dead.hits
        work = r.llen(keys.work("p"))
        assert work > 0                                  # the worker stopped taking seeds
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc, timeout=20)
    finally:
        site.stop()
    assert code == 0 and "no usable proxy" in err and "taking none for" in err
    assert hits <= 12                                    # benched, not hammered
    assert r.zcard(keys.backlog("p")) + r.llen(keys.work("p")) == 30   # nothing lost
    assert site.count("/0") == 0
