"""Redis clients for the three roles of a spider's state: work, backlog and cache.

Roles on the same db share one client, so their commands can share one pipeline.
On a Redis Cluster (detected: ``INFO cluster`` says ``cluster_enabled:1``, or
several seed nodes were given) the three roles are one ``RedisCluster`` client;
a spider's keys share one hash tag, so they live on one slot of one master.
Behind Sentinel (``redis+sentinel://``) each role is a client of the service's
master that re-asks the sentinels on every new connection; ``sentinel`` tells
the gateway to have its transactions confirmed by a replica (``confirmed.py``).
``UNAVAILABLE`` lists the errors that mean "Redis cannot answer right now"
(a server down, a failover in progress): callers back off and retry on them.
"""
import re
import time
from urllib.parse import urlsplit

import redis
from redis.exceptions import (AskError, BusyLoadingError, ClusterError, RedisClusterException,
                              SlotNotCoveredError, TryAgainError)

from ..backoff import Backoff
from ..connection import is_sentinel, mask, parse_sentinel, redis_client, seed_urls
from ..errors import ConfigError, ConnectionFailed


class ClusterUnreachable(redis.ConnectionError):
    """The cluster client could not rebuild its view of the cluster (no seed node answered)."""


# A server down or loading, a master failing over (MOVED/ASK bubbling up, CLUSTERDOWN, TRYAGAIN),
# a slot that no live master covers yet: passing states, retried with back-off by the callers.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, BusyLoadingError, ClusterError,
               TryAgainError, AskError, SlotNotCoveredError)
# redis-py 8 caps a connection pool at 100 by default and raises MaxConnectionsError past it; a
# worker's greenlets (--pool, often over 100) may each hold a connection at once (the cool-down
# check of every request), so the pools here are as unbounded as they were before redis-py 8
SOCKET = {"socket_timeout": 30, "socket_connect_timeout": 5, "max_connections": 2 ** 31}
REPLICA_CHECK_EVERY = 5.0    # seconds a master's replica count is trusted before asking again
WAIT_TIMEOUT_MS = 2000       # how long WAIT waits for a replica's confirmation


class Redis:
    """The three Redis roles of a spider: work (+ in-flight, stats), backlog and cache.

    ``cluster`` None detects it (one round trip); True/False says it (a worker
    process is told by its run).  ``wait_replica``: on a cluster whose masters
    have replicas, writes to other slots are confirmed by a replica (WAIT)
    before the batch that depends on them is acknowledged.
    """

    def __init__(self, url, work_db=0, backlog_db=0, cache_db=0, check=True, cluster=None,
                 wait_replica=True, ca=None):
        self.url = url
        self.wait_replica = wait_replica
        self.sentinel = is_sentinel(url)
        self._replicas = {}
        seeds = seed_urls(url) if not self.sentinel else [url]
        if self.sentinel:
            cluster = False
        elif cluster is None:
            cluster = len(seeds) > 1 or _is_cluster(seeds[0])
        self.cluster = cluster
        if cluster:
            if _url_db(url):
                raise ConfigError("%s is a Redis Cluster, which has only db 0: drop /%d from the URL"
                                  % (mask(url), _url_db(url)))
            bad = [(flag, db) for flag, db in (("-o", work_db), ("-b", backlog_db), ("-c", cache_db)) if db]
            if bad:
                raise ConfigError("%s is a Redis Cluster, which has only db 0: drop %s"
                                  % (mask(url), " ".join("%s %d" % b for b in bad)))
            client = _cluster_client(seeds, patient=not check)
            self.work = self.backlog = self.cache = client
            self.single = True
            return
        clients = {}
        for role, db in (("work", work_db), ("backlog", backlog_db), ("cache", cache_db)):
            if db not in clients:
                clients[db] = redis_client(url, db, ca, health_check_interval=30, **SOCKET)
            setattr(self, role, clients[db])
        self.single = len(clients) == 1
        if check:
            self._check()

    def _check(self):
        try:
            self.work.ping()
        except redis.RedisError as exc:
            text = (str(exc).splitlines() or [type(exc).__name__])[0]
            if self.sentinel and text.startswith("No master found"):
                text = _no_master(self.work, parse_sentinel(self.url).service)
            raise ConnectionFailed("Redis at %s does not answer: %s" % (mask(self.url), text)) from None

    @classmethod
    def from_settings(cls, settings, url=None, check=True, cluster=None):
        from ..connection import resolve_redis

        url = url or resolve_redis(settings)
        base = _url_db(url)
        dbs = [getattr(settings, o) if o in settings.configured else base
               for o in ("work_queue", "backlog_queue", "cache_db")]
        return cls(url, *dbs, check=check, cluster=cluster,
                   wait_replica=not getattr(settings, "no_wait_replica", False),
                   ca=getattr(settings, "redis_ca", None))

    # -- cluster nodes ------------------------------------------------------------------
    def master_of(self, key):
        """(name, plain client) of the master holding `key`'s slot now (cluster only)."""
        node = self.work.get_node_from_key(key)
        return node.name, self.work.get_redis_connection(node)

    def has_replica(self, name, client, now=None):
        """Whether master `name` (a cluster node, a Sentinel master's host:port) has a replica
        online (asked at most every REPLICA_CHECK_EVERY s)."""
        now = time.monotonic() if now is None else now
        known = self._replicas.get(name)
        if known is None or now - known[1] > REPLICA_CHECK_EVERY:
            known = (client.info("replication").get("connected_slaves", 0) > 0, now)
            self._replicas[name] = known
        return known[0]

    def forget_replicas(self, name):
        self._replicas.pop(name, None)

    def refresh(self):
        """Re-read which master holds which slot (after a failover or a MOVED)."""
        if self.cluster:
            try:
                self.work.nodes_manager.initialize()
            except (RedisClusterException, redis.RedisError) as exc:
                raise ClusterUnreachable("Redis Cluster %s: %s" % (mask(self.url), exc)) from None

    def close(self):
        for client in {id(c): c for c in (self.work, self.backlog, self.cache)}.values():
            client.close()


def _no_master(client, service):
    """Why the sentinels gave no master: the first sentinel's own error, else an unknown service."""
    for sentinel in client.connection_pool.sentinel_manager.sentinels:
        try:
            sentinel.ping()
        except redis.RedisError as exc:
            return "no sentinel answers: %s" % (str(exc).splitlines() or [type(exc).__name__])[0]
    return "the sentinels know no live master of service %r (a wrong name, or it is down)" % service


def _is_cluster(url):
    client = redis.Redis.from_url(url, **SOCKET)
    try:
        return bool(client.info("cluster").get("cluster_enabled"))
    except redis.RedisError:
        return False  # not answering: the single-server path reports it as before
    finally:
        client.close()


def _cluster_client(seeds, patient):
    """A RedisCluster over these seed URLs; `patient` retries for a minute (a worker starting
    while a failover is under way) instead of failing at once."""
    from redis.cluster import ClusterNode, RedisCluster

    if tuple(int(x) for x in re.findall(r"\d+", redis.__version__)[:2]) < (6, 1):
        raise ConfigError("a Redis Cluster needs redis-py 6.1 or later (transactions on one slot): "
                          "pip install -U redis")
    others = []
    for seed in seeds[1:]:
        parts = urlsplit(seed)
        others.append(ClusterNode(parts.hostname, parts.port or 6379))
    deadline = time.monotonic() + (60 if patient else 0)
    backoff = Backoff(0.2, 5.0)
    while True:
        try:
            client = RedisCluster(url=_without_db(seeds[0]), startup_nodes=others,
                                  require_full_coverage=False, **SOCKET)
            return client
        except (RedisClusterException, redis.RedisError) as exc:
            if time.monotonic() >= deadline:
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ConnectionFailed("Redis Cluster at %s does not answer: %s"
                                       % (mask(",".join(seeds)), text)) from None
            time.sleep(backoff.next())


def _without_db(url):
    """The seed URL without a /0 path (RedisCluster takes no db)."""
    parts = urlsplit(url)
    return parts._replace(path="").geturl()


def _url_db(url):
    if is_sentinel(url):
        return parse_sentinel(url).db
    parts = urlsplit(seed_urls(url)[0]) if "," in url else urlsplit(url)
    if parts.scheme == "unix":
        match = re.search(r"[?&]db=(\d+)", url)
        return int(match.group(1)) if match else 0
    path = parts.path.strip("/")
    return int(path) if path.isdigit() else 0
