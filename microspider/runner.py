"""``microspider run``: the supervising process and the worker processes it starts.

The run process pushes start seeds (once per fresh crawl), starts ``-w N``
worker processes, heartbeats for them while they live, restarts one that
crashed (requeueing its in-flight seeds at once), relays the backlog, reclaims
seeds of dead workers elsewhere, shows progress, and ends the crawl when it
has been finished for ``--idle`` seconds.  SIGTERM/SIGINT reach every worker;
each puts its in-flight seeds back and exits.
"""
import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import gevent
import redis as redislib

from . import embedded, keys, status
from .config import Settings
from .connection import Redis, mask
from .errors import ConfigError, StoreError
from .queues import Queues
from .relay import Relay
from .spider import collect, instantiate, load_spider
from .store import open_store

log = logging.getLogger("microspider")
JOB_ENV = "MICROSPIDER_WORKER_JOB"
TICK = 0.5
RECLAIM_EVERY = 5.0
CRASH_LIMIT = 5          # restarts within CRASH_WINDOW before the run gives up
CRASH_WINDOW = 60.0
REDIS_DOWN = (redislib.ConnectionError, redislib.TimeoutError, redislib.BusyLoadingError)


def new_worker_id():
    return "%s-%d-%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:6])


# -- start seeds -------------------------------------------------------------------
def push_start_seeds(redis, spider, now=None):
    """Push the spider's start seeds if the crawl is fresh; returns how many (None: not fresh)."""
    name = spider.name
    lock = keys.seeding(name)
    if not redis.work.set(lock, new_worker_id(), nx=True, ex=600):
        return None  # another process is seeding this crawl
    try:
        queues = Queues(redis, name)
        fresh = (not redis.work.llen(keys.work(name)) and not redis.backlog.zcard(keys.backlog(name))
                 and not redis.cache.scard(keys.cache(name)) and not queues.in_flight())
        if not fresh:
            return None
        try:
            _, sends = collect(spider, spider.start_seeds)
        except Exception as exc:
            raise ConfigError("%s.start_seeds failed: %s: %s"
                              % (type(spider).__name__, type(exc).__name__, exc)) from None
        pipe = redis.work.pipeline(transaction=True)
        for target, seed in sends:
            queues.push([seed], target, pipe=pipe)
            if target != name:
                pipe.sadd(keys.upstream(target), name)
                pipe.sadd(keys.SPIDERS, target)
        pipe.execute()
        return len(sends)
    finally:
        redis.work.delete(lock)


# -- the worker process ---------------------------------------------------------------
def worker_job(spider_ref, settings, redis_url, store_uri, worker_id):
    return json.dumps({"spider": spider_ref, "settings": _settings_dict(settings),
                       "redis": redis_url, "store": store_uri, "id": worker_id})


def _settings_dict(settings):
    out = dataclasses.asdict(settings)
    out["configured"] = sorted(settings.configured)
    return out


def run_worker(job_text):
    """Body of a worker process (called by ``microspider _worker`` after patching)."""
    from .fetcher import Fetcher
    from .worker import Worker

    job = json.loads(job_text)
    values = dict(job["settings"])
    values["configured"] = frozenset(values["configured"])
    settings = Settings(**values)
    spider = instantiate(load_spider(job["spider"]))
    redis = Redis.from_settings(settings, url=job["redis"], check=False)  # register() waits for it
    store = _open_store_patiently(job["store"], settings.mongo_db, spider.name)
    proxies = limiter = host_limiter = None
    if settings.http_proxy:
        from .proxies import ProxyPool

        proxies = ProxyPool.from_source(settings.http_proxy, redis=redis.work)
    if settings.rate:
        from .ratelimit import RateLimiter

        limiter = RateLimiter(redis.work, keys.ratelimit(spider.name), settings.rate)
    if settings.rate_per_host:
        from .ratelimit import HostRateLimiter

        host_limiter = HostRateLimiter(redis.work, spider.name, settings.rate_per_host)
    if settings.render:
        from .render import RenderFetcher as Fetcher  # noqa: F811 - pages rendered in a browser
    fetcher = Fetcher(spider, settings, proxies=proxies, limiter=limiter, host_limiter=host_limiter)
    worker = Worker(spider, settings, redis, store, job["id"], fetcher, proxies=proxies)
    gevent.signal_handler(signal.SIGTERM, worker.stop)
    gevent.signal_handler(signal.SIGINT, worker.stop)
    worker.run()
    store.close()
    return 1 if worker.failed else 0


def _open_store_patiently(uri, db, name, wait=gevent.sleep):
    """open_store, retried with back-off (and said) while the store cannot be opened."""
    delay = 0.5
    while True:
        try:
            return open_store(uri, db, name)
        except StoreError as exc:
            log.warning("%s: %s; retrying in %.0fs", name, exc, delay)
            wait(delay)
            delay = min(delay * 2, 30.0)


# -- the run process -------------------------------------------------------------------
class Run:
    """Supervises the worker processes of one spider on this machine."""

    def __init__(self, spider_ref, spider_cls, settings, redis_url, store_uri, out=sys.stderr):
        self.ref = spider_ref
        self.spider = instantiate(spider_cls)
        self.name = self.spider.name
        self.settings = settings
        self.redis_url = redis_url
        self.store_uri = store_uri
        self.redis = Redis.from_settings(settings, url=redis_url)
        self.queues = Queues(self.redis, self.name)
        self.relay = Relay(self.redis, self.name, settings.relay_mode, settings.max_age,
                           settings.relay_delay)
        self.out = out
        self.tty = out.isatty()
        self.children = {}       # worker id -> Popen
        self.crashes = []
        self._warned = -1e9
        self.stopping = False
        self.reason = None

    def start(self):
        name, redis = self.name, self.redis
        pipe = redis.work.pipeline(transaction=False)
        pipe.sadd(keys.SPIDERS, name)
        pipe.hset(keys.meta(name), mapping={
            "relay_mode": self.settings.relay_mode, "max_age": self.settings.max_age,
            "started": time.time()})
        for up in self.spider.upstream or ():
            pipe.sadd(keys.upstream(name), up)
        pipe.execute()
        reclaimed = self.queues.reclaim_dead()
        if reclaimed:
            log.info("%s: %d seeds of dead workers back in the work queue", name, reclaimed)
        self.relay.unpark()
        pushed = push_start_seeds(redis, self.spider)
        if pushed is not None:
            log.info("%s: fresh crawl, %d start seeds pushed", name, pushed)
        self.before = self._counters()
        self.started = time.monotonic()
        for _ in range(self.settings.worker):
            self._spawn()

    def _spawn(self):
        worker_id = new_worker_id()
        env = dict(os.environ, **{JOB_ENV: worker_job(self.ref, self.settings, self.redis_url,
                                                      self.store_uri, worker_id)})
        self.children[worker_id] = subprocess.Popen(
            [sys.executable, "-m", "microspider", "_worker"], env=env)
        try:
            self.queues.heartbeat([worker_id])
        except REDIS_DOWN:
            pass  # the next tick heartbeats again
        return worker_id

    def stop(self, reason="stopped"):
        if not self.stopping:
            self.stopping, self.reason = True, reason

    def loop(self):
        """Supervise until the crawl is finished or a signal arrives; returns the exit code."""
        state = {"idle_since": None, "reclaimed": 0.0, "shown": 0.0}
        delay = TICK
        while not self.stopping:
            gevent.sleep(delay)
            try:
                self._tick(state)
                delay = TICK
            except REDIS_DOWN as exc:
                state["idle_since"] = None
                delay = min(delay * 2, 5.0)
                self._warn("Redis unreachable (%s); workers keep their seeds, retrying" % exc)
                self._restart_embedded()
        return self._shutdown()

    def _restart_embedded(self):
        """If this run uses the embedded Redis and it died, start it again (its AOF has the data)."""
        if self.redis_url != embedded.current_url() or embedded.answers(self.redis_url):
            return
        try:
            embedded.redis_url()
            log.warning("%s: the embedded Redis was down; restarted it from its AOF", self.name)
        except Exception as exc:  # reported, and tried again on the next failed tick
            self._warn("cannot restart the embedded Redis: %s" % exc)

    def _tick(self, state):
        self.queues.heartbeat(list(self.children))
        if self._reap() == "gave up":
            self.stop("workers keep crashing")
            return
        self.relay.move_due()
        if time.monotonic() - state["reclaimed"] > RECLAIM_EVERY:
            state["reclaimed"] = time.monotonic()
            self._reclaim()
        waiting = status.waiting_on(self.redis, self.name)
        if waiting is None and not self.settings.forever:
            state["idle_since"] = state["idle_since"] or time.monotonic()
            if time.monotonic() - state["idle_since"] >= self.settings.idle:
                self.stop("finished")
        else:
            state["idle_since"] = None
        if time.monotonic() - state["shown"] >= (1.0 if self.tty else 10.0):
            state["shown"] = time.monotonic()
            self._show(waiting)

    def _warn(self, message, every=10.0):
        if time.monotonic() - self._warned >= every:
            self._warned = time.monotonic()
            log.warning("%s: %s", self.name, message)

    def _reap(self):
        for worker_id, proc in list(self.children.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.children[worker_id]
            restart = not self.stopping
            if restart:
                self.crashes = [t for t in self.crashes if time.monotonic() - t < CRASH_WINDOW]
                self.crashes.append(time.monotonic())
                if len(self.crashes) > CRASH_LIMIT:
                    self.queues.requeue_inflight(worker_id)   # its seeds must not stay in flight
                    self.redis.work.zrem(keys.workers(self.name), worker_id)
                    return "gave up"
                self._spawn()
            # if Redis is down this raises; the seeds stay in flight and are reclaimed later
            moved = self.queues.requeue_inflight(worker_id)
            self.redis.work.zrem(keys.workers(self.name), worker_id)
            if restart:
                log.warning("%s: worker %s exited with %s; %d in-flight seeds requeued; restarted",
                            self.name, worker_id, code, moved)
        return None

    def _reclaim(self):
        moved = self.queues.reclaim_dead()
        if moved:
            log.warning("%s: %d seeds of dead workers back in the work queue", self.name, moved)
        bucket = int(time.time() // 5)
        old = [k for k in self.redis.work.hkeys(keys.pages(self.name)) if int(k) < bucket - 24]
        if old:
            self.redis.work.hdel(keys.pages(self.name), *old)

    def _shutdown(self):
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while any(p.poll() is None for p in self.children.values()) and time.monotonic() < deadline:
            self._quietly(self.queues.heartbeat, [w for w, p in self.children.items() if p.poll() is None])
            gevent.sleep(0.05)
        for worker_id, proc in self.children.items():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self._quietly(self.queues.requeue_inflight, worker_id)
            self._quietly(self.redis.work.zrem, keys.workers(self.name), worker_id)
        self.children = {}
        if self.tty:
            self.out.write("\n")
        self._quietly(self.summary)
        return 1 if self.reason == "workers keep crashing" else 0

    def _quietly(self, call, *args):
        """A Redis call at shutdown: if Redis is gone, seeds stay in flight and are reclaimed later."""
        try:
            return call(*args)
        except REDIS_DOWN as exc:
            self._warn("Redis unreachable at shutdown (%s); in-flight seeds are reclaimed later" % exc)
            return None

    def _counters(self):
        stats = self.redis.work.hgetall(keys.stats(self.name))
        return {k.decode(): int(v) for k, v in stats.items()}

    def _show(self, waiting):
        c = status.counts(self.redis, self.name)
        line = ("%s: work %d | in flight %d | backlog %d (due %d, waiting %d, over age %d) | ok %d | items %d"
                " | failures %d | %.1f pages/s%s" % (
                    self.name, c["work"], c["in_flight"], c["backlog"], c["backlog_due"],
                    c["backlog_waiting"], c["backlog_over_age"], c["counters"].get("ok", 0), c["counters"].get("items", 0),
                    c["counters"].get("parse_failures", 0), c["pages_per_s"],
                    " | waiting on %s" % waiting if waiting and waiting.startswith("upstream") else ""))
        if self.tty:
            self.out.write("\r\033[K" + line)
            self.out.flush()
        else:
            log.info(line)

    def summary(self):
        after = self._counters()
        delta = {k: after.get(k, 0) - self.before.get(k, 0) for k in set(after) | set(self.before)}
        elapsed = max(time.monotonic() - self.started, 1e-6)
        fields = ("ok", "retried", "backlogged", "parse_failures", "fetch_failures", "cached",
                  "items", "dropped", "quarantined", "store_errors")
        text = ", ".join("%s %d" % (f.replace("_", " "), delta.get(f, 0)) for f in fields
                         if delta.get(f, 0) or f in ("ok", "items"))
        log.info("%s %s after %.1fs: %s; %.1f pages/s (Redis %s)", self.name, self.reason, elapsed,
                 text, delta.get("ok", 0) / elapsed, mask(self.redis_url))
        return delta


def run(spider_ref, spider_cls, settings, redis_url, store_uri):
    """Run a spider until finished or signalled; returns the exit code."""
    if settings.render:
        from .render import check_render

        check_render(settings)  # a missing extra or browser: one line, before any worker starts
    runner = Run(spider_ref, spider_cls, settings, redis_url, store_uri)
    gevent.signal_handler(signal.SIGTERM, runner.stop, "stopped by SIGTERM")
    gevent.signal_handler(signal.SIGINT, runner.stop, "stopped by SIGINT")
    runner.start()
    return runner.loop()
