"""The moving parts of a trial: processes we start (and end, by PID and process group), a crawl.

``Processes`` starts every command in its own process group, logs it to a
file, and at the end kills what is left of each group it started, also when a
trial fails.  ``Crawl`` is one chained crawl of a local site by microspider
``run`` commands against a private Redis and an SQLite store.
"""
import os
import signal
import subprocess
import time

import redis as redislib

from microspider.state import keys
from tests.crawl import cli_env, command
from tests.servers import RedisServer, redis_server_binary, wait_until

REDIS_DOWN = (redislib.ConnectionError, redislib.TimeoutError, redislib.BusyLoadingError)
CTRIP_SPIDERS = (("chaos_city", "tests.chaos.spiders:ChaosCity"),
                 ("chaos_hotel", "tests.chaos.spiders:ChaosHotel"),
                 ("chaos_info", "tests.chaos.spiders:ChaosInfo"))
# fast relays, short idle, few passes: a trial ends in seconds, yet every route is taken
FAST = ("--idle", "1", "--relay-delay", "0.05", "--max-age", "3", "--retry", "2", "--timeout", "5",
        "--pool", "50")


class Processes:
    """Commands started by a trial; ``end_all`` kills what remains of their process groups."""

    def __init__(self, folder):
        self.folder = folder
        self.started = []        # (Popen, log path)

    def start(self, args, env, label):
        log = os.path.join(self.folder, "%s.%d.log" % (label, len(self.started)))
        with open(log, "wb") as out:
            proc = subprocess.Popen(command(*args), cwd=self.folder, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        proc.log = log
        proc.label = label
        self.started.append(proc)
        return proc

    def run(self, args, env, label, timeout=60):
        """Start a command and wait for it; returns (exit code, log text)."""
        proc = self.start(args, env, label)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.end(proc)
        return proc.returncode, read_log(proc)

    def end(self, proc, sig=signal.SIGKILL):
        """Signal the process group of one command we started, if anything of it is left."""
        if proc.poll() is None or group_alive(proc.pid):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGKILL:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def end_all(self):
        for proc in self.started:
            self.end(proc)


def group_alive(pgid):
    """True if a process of process group `pgid` (ours: its leader was started by us) still runs."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def read_log(proc):
    with open(proc.log, "rb") as f:
        return f.read().decode("utf-8", "replace")


def worker_id_of(pid):
    """The microspider worker id of a worker process, from its environment (None if gone)."""
    import json

    from microspider.crawl.bootstrap import JOB_ENV

    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
        return json.loads(env[JOB_ENV.encode()])["id"]
    except (OSError, KeyError, ValueError):
        return None


class Crawl:
    """One chained crawl: ``run`` commands of some spiders against one Redis and one store."""

    def __init__(self, procs, redis_url, store_path, spiders=CTRIP_SPIDERS, env=None, args=FAST):
        self.procs = procs
        self.redis_url = redis_url
        self.store_path = store_path
        self.spiders = spiders
        self.env = env or cli_env()
        self.args = list(args)
        self.runs = {}           # spider name -> Popen of its current run
        self.exits = []          # (name, code, last log line) of every run that ended
        self.redis_flag = True   # False: no --redis, the embedded default of the folder
        self._client = None

    @property
    def conn_args(self):
        out = ["--mongo-uri", "sqlite:///" + self.store_path]
        return (["--redis", self.redis_url] if self.redis_flag else []) + out

    @property
    def redis(self):
        if self._client is None:
            self._client = client_for(self.redis_url)
        return self._client

    def start(self, workers=None, extra=()):
        """Start a `run` for every spider (downstream first: they must wait for upstreams)."""
        for name, ref in reversed(self.spiders):
            self.start_run(name, ref, (workers or {}).get(name, 1), extra)

    def start_run(self, name, ref=None, workers=1, extra=()):
        ref = ref or dict(self.spiders)[name]
        args = ["run", ref, "-w", str(workers)] + self.args + list(extra) + self.conn_args
        self.runs[name] = self.procs.start(args, self.env, "run-" + name)
        return self.runs[name]

    def alive(self):
        return {n: p for n, p in self.runs.items() if p.poll() is None}

    def wait(self, timeout, until_failure=False):
        """Wait for every run to end (or, `until_failure`, for one to end badly); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.collect_exits()
            if not self.runs or until_failure and any(code != 0 for _, code, _ in self.exits):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def collect_exits(self):
        for name, proc in list(self.runs.items()):
            if proc.poll() is not None:
                lines = read_log(proc).strip().splitlines()
                self.exits.append((name, proc.returncode, lines[-1] if lines else ""))
                del self.runs[name]

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal every live run and wait; a run still alive after `timeout` is killed."""
        for proc in self.alive().values():
            os.kill(proc.pid, sig)
        if not self.wait(timeout):
            for proc in self.alive().values():
                self.procs.end(proc)
            self.collect_exits()
            return False
        return True

    def workers(self, name=None):
        """{pid: run name} of the worker processes of the live runs."""
        from tests.crawl import children

        return {pid: n for n, p in self.alive().items() if name in (None, n) for pid in children(p.pid)}

    def ok_total(self):
        """Pages done so far by all spiders (None while Redis is unreachable)."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            for name, _ in self.spiders:
                pipe.hget(keys.stats(name), "ok")
            return sum(int(v or 0) for v in pipe.execute())
        except REDIS_DOWN:
            return None

    def in_flight(self):
        try:
            total = 0
            for name, _ in self.spiders:
                for key in self.redis.scan_iter(match=keys.inflight(name, "*"), count=1000):
                    total += self.redis.llen(key)
            return total
        except REDIS_DOWN:
            return None

    def wait_progress(self, since=None, timeout=60):
        """Seconds until the pages-done total grows past `since` (now's total by default)."""
        started = time.monotonic()
        if since is None:
            wait_until(lambda: self.ok_total() is not None, timeout=timeout, message="Redis")
            since = self.ok_total()
        wait_until(lambda: (self.ok_total() or -1) > since or not self.alive(), timeout=timeout,
                   interval=0.05, message="progress")
        return time.monotonic() - started

    def logs(self):
        return "\n".join(read_log(p) for p in self.procs.started if p.label.startswith("run-"))

    def close(self):
        if self._client is not None:
            self._client.close()
            self._client = None


class ChaosRedis(RedisServer):
    """A private redis-server on a fixed port with AOF, restartable on the same port and folder."""

    def __init__(self, port, datadir, fsync="everysec"):
        super().__init__(appendonly=True, port=port, datadir=datadir)
        self.fsync = fsync

    def start(self):
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--appendonly", "yes", "--appendfsync", self.fsync,
                "--daemonize", "no", "--loglevel", "warning"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_until(self._answers, timeout=15, message="redis-server on %d" % self.port)
        return self

    def client(self):
        return redislib.Redis(port=self.port, socket_timeout=10)


def client_for(url):
    """A plain client of the Redis at `url`: a cluster client for a comma-separated seed list,
    a client of the master for redis+sentinel://."""
    from microspider.connection import is_sentinel, redis_client

    if is_sentinel(url):
        return redis_client(url, socket_timeout=10)
    if "," in url:
        from tests.cluster import cluster_client

        return cluster_client(url)
    return redislib.Redis.from_url(url, socket_timeout=10)


class Roles:
    """Plain redis clients dressed as microspider.connection.Redis (its work/backlog/cache roles)."""

    def __init__(self, work, backlog=None):
        from redis.cluster import RedisCluster

        self.work, self.backlog, self.cache = work, backlog or work, work
        self.single = backlog is None or backlog is work
        self.cluster = isinstance(work, RedisCluster)
        self.sentinel = self.wait_replica = False     # the checker's writes need no replica
