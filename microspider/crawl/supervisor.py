"""``microspider run``: the supervising process of one spider on this machine.

The run process pushes start seeds (once per fresh crawl), starts ``-w N``
worker processes and heartbeats for them while they show signs of life,
restarts one that crashed (requeueing its in-flight seeds at once), relays the
backlog, reclaims seeds of dead workers elsewhere, shows progress, and ends the
crawl when it has been finished for ``--idle`` seconds.  SIGTERM/SIGINT reach
every worker; each puts its in-flight seeds back and exits.

Liveness never waits behind other work: the Redis heartbeat has its own loop.
Each worker reports through a pipe which seeds it is processing and that it is
alive; a worker silent for longer than ``--parse-timeout`` + HANG_GRACE is
killed.  When a worker dies or is killed that way, the seeds it was parsing
(else processing) are the suspects: each gets a crash counted, and one that
reaches ``--max-crashes`` is stored as a ``WorkerCrashed`` failure and parked
in the backlog instead of being fed to workers again.
"""
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import gevent
import gevent.os

from .. import embedded
from ..backoff import Backoff
from ..connection import mask
from ..errors import ConfigError, StoreError
from ..seed import Seed
from ..spider import instantiate
from ..state import Redis, SpiderState
from ..state.connection import UNAVAILABLE
from ..state.locks import LockTimeout
from ..store import failure_doc, open_store
from .bootstrap import JOB_ENV, worker_job
from .progress import Progress
from .relay import Relay
from .start import push_again, push_start_seeds
from .status import waiting_on

log = logging.getLogger("microspider")
TICK = 0.5
HEARTBEAT_EVERY = 2.0
RECLAIM_EVERY = 5.0
HANG_GRACE = 5.0         # seconds of silence past --parse-timeout before a worker counts as hung
CRASH_LIMIT = 5          # unexplained restarts within CRASH_WINDOW before the run gives up
CRASH_WINDOW = 60.0
REDIS_DOWN = UNAVAILABLE   # an outage or a cluster failover: back off and go on


def new_worker_id():
    return "%s-%d-%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:6])


class Child:
    """One worker process and what its monitor pipe has told us."""

    def __init__(self, proc, read_fd, clock):
        self.proc = proc
        self.read_fd = read_fd
        self.clock = clock
        self.last_sign = clock()
        self.processing = {}          # fingerprint -> "S" (processing) or "P" (parsing)
        self.hung = False
        self._pending = b""
        self.reader = gevent.spawn(self._read)

    def _read(self):
        while True:
            try:
                data = gevent.os.nb_read(self.read_fd, 65536)
            except OSError:
                return
            if not data:
                return
            self._take(data)

    def _take(self, data):
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            self.heard(line.decode("ascii", "replace"))

    def drain(self):
        """Read what a dead worker wrote last (its pipe holds it until EOF)."""
        self.reader.kill()
        while True:
            try:
                data = os.read(self.read_fd, 65536)
            except BlockingIOError:
                return  # the worker's end is still open somewhere: nothing more now
            except OSError:
                return
            if not data:
                return
            self._take(data)

    def heard(self, line):
        """Take one monitor line (see worker.Monitor)."""
        self.last_sign = self.clock()
        kind, _, fp = line.partition(" ")
        if kind in ("S", "P"):
            self.processing[fp] = kind
        elif kind == "D":
            self.processing.pop(fp, None)

    def suspects(self):
        """The seeds that may have killed this worker: those in parse, else those being processed."""
        parsing = [fp for fp, kind in self.processing.items() if kind == "P"]
        return parsing or list(self.processing)

    def silent_for(self):
        return self.clock() - self.last_sign

    def close(self):
        self.reader.kill(block=False)
        try:
            os.close(self.read_fd)
        except OSError:
            pass


def live_ids(children, limit):
    """The ids of children still running that spoke within `limit` seconds."""
    return [w for w, c in children.items() if c.proc.poll() is None and c.silent_for() <= limit]


class Run:
    """Supervises the worker processes of one spider on this machine."""

    def __init__(self, spider_ref, spider_cls, settings, redis_url, store_uri, out=sys.stderr,
                 clock=time.monotonic, now=time.time):
        self.ref = spider_ref
        self.spider = instantiate(spider_cls)
        self.name = self.spider.name
        self.settings = settings
        self.redis_url = redis_url
        self.store_uri = store_uri
        self.redis = Redis.from_settings(settings, url=redis_url)
        self.state = SpiderState(self.redis, self.name)
        self.relay = Relay(self.state, settings.relay_mode, settings.max_age, settings.relay_delay)
        self.progress = Progress(self.redis, self.name, out)
        self.clock, self.now = clock, now
        self.children = {}       # worker id -> Child
        self.crashes = []
        self._warned = -1e9
        self._store = None
        self.stopping = False
        self.reason = None
        self.alerter = None      # a web.alerts.Alerter, with --alert-webhook
        self.adopter = None      # the greenlet moving a 0.1 cache into the new one

    def start(self):
        self.state.record_start(self.settings.relay_mode, self.settings.max_age,
                                list(self.spider.upstream or ()), recrawl=self.settings.recrawl,
                                no_cache=self.settings.no_cache)
        reclaimed = self.state.reclaim_dead()
        if reclaimed:
            log.info("%s: %d seeds of dead workers back in the work queue", self.name, reclaimed)
        try:
            self.relay.unpark(wait=5.0)
        except LockTimeout as exc:  # another relay holds it; parked seeds are unparked by a later run
            log.warning("%s: %s; parked seeds left as they are", self.name, exc)
        pushed = push_start_seeds(self.redis, self.spider, self.now())
        if pushed is not None:
            log.info("%s: fresh crawl, %d start seeds pushed", self.name, pushed)
        if self.state.cache.has_legacy():
            self.adopter = gevent.spawn(self._adopt_legacy_cache)
        self.progress.begin(self.state.counters())
        for _ in range(self.settings.worker):
            self._spawn()

    def _adopt_legacy_cache(self):
        """Move a 0.1 cache (a set) into the buckets, a chunk at a time, while the crawl runs."""
        log.info("%s: moving the 0.1 cache into the new one while crawling", self.name)
        moved, backoff = 0, Backoff(TICK, 5.0)
        while not self.stopping:
            try:
                n = self.state.cache.adopt_legacy(self.now())
            except REDIS_DOWN:
                gevent.sleep(backoff.next())
                continue
            if not n:
                log.info("%s: 0.1 cache moved (%d fingerprints)", self.name, moved)
                return
            moved += n
            gevent.sleep(0)

    def _push_again(self):
        try:
            pushed = push_again(self.redis, self.spider, self.settings.every, self.now())
        except ConfigError as exc:  # start_seeds raised: say so, try again next period
            self._warn("--every: %s" % exc, every=max(60.0, self.settings.every))
            return
        if pushed is not None:
            log.info("%s: --every %gs: %d start seeds pushed again", self.name, self.settings.every, pushed)

    def _spawn(self):
        worker_id = new_worker_id()
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        env = dict(os.environ, **{JOB_ENV: worker_job(self.ref, self.settings, self.redis_url,
                                                      self.store_uri, worker_id, write_fd,
                                                      self.redis.cluster)})
        try:
            proc = subprocess.Popen([sys.executable, "-m", "microspider", "_worker"], env=env,
                                    pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        self.children[worker_id] = Child(proc, read_fd, self.clock)
        try:
            self.state.heartbeat([worker_id])
        except REDIS_DOWN:
            pass  # the heartbeat loop tries again
        return worker_id

    def stop(self, reason="stopped"):
        if not self.stopping:
            self.stopping, self.reason = True, reason

    # -- the loops -------------------------------------------------------------------------
    def loop(self):
        """Supervise until the crawl is finished or a signal arrives; returns the exit code."""
        heart = gevent.spawn(self._heartbeat_loop)
        state = {"idle_since": None, "reclaimed": 0.0, "shown": 0.0}
        backoff = Backoff(TICK, 5.0)   # a tick every TICK; slower while Redis is down
        try:
            while not self.stopping:
                gevent.sleep(backoff.delay)
                try:
                    self._tick(state)
                    backoff.reset()
                except REDIS_DOWN as exc:
                    state["idle_since"] = None
                    backoff.grow()
                    self._warn("Redis unreachable (%s); workers keep their seeds, retrying" % exc)
                    self._restart_embedded()
                except LockTimeout as exc:
                    self._warn("%s; relaying later" % exc)
        finally:
            heart.kill()
            if self.adopter is not None:
                self.adopter.kill()
        return self._shutdown()

    def live_children(self):
        """Ids of the workers to heartbeat for: running, and not silent past the hang limit."""
        return live_ids(self.children, self.settings.parse_timeout + HANG_GRACE)

    def _heartbeat_loop(self):
        while True:
            try:
                self.state.heartbeat(self.live_children())
            except REDIS_DOWN:
                pass  # the tick says so; workers keep their seeds while Redis is away
            gevent.sleep(HEARTBEAT_EVERY)

    def _tick(self, state):
        self._kill_hung()
        if self._reap() == "gave up":
            self.stop("workers keep crashing")
            return
        self.relay.move_due()
        if self.settings.every:
            self._push_again()
        if self.clock() - state["reclaimed"] > RECLAIM_EVERY:
            state["reclaimed"] = self.clock()
            self._reclaim()
        waiting = waiting_on(self.redis, self.name)
        if waiting is None and not (self.settings.forever or self.settings.every):
            state["idle_since"] = state["idle_since"] or self.clock()
            if self.clock() - state["idle_since"] >= self.settings.idle:
                self.stop("finished")
        else:
            state["idle_since"] = None
        if self.alerter:
            self.alerter.check(self.redis, self.name, finished=waiting is None)
        if self.clock() - state["shown"] >= (1.0 if self.progress.tty else 10.0):
            state["shown"] = self.clock()
            self.progress.show(waiting)

    def _warn(self, message, every=10.0):
        if self.clock() - self._warned >= every:
            self._warned = self.clock()
            log.warning("%s: %s", self.name, message)

    def _restart_embedded(self):
        """If this run uses the embedded Redis and it died, start it again (its AOF has the data)."""
        if self.redis_url != embedded.current_url() or embedded.answers(self.redis_url):
            return
        try:
            embedded.redis_url()
            log.warning("%s: the embedded Redis was down; restarted it from its AOF", self.name)
        except Exception as exc:  # reported, and tried again on the next failed tick
            self._warn("cannot restart the embedded Redis: %s" % exc)

    # -- crashed and hung workers ---------------------------------------------------------
    def _kill_hung(self):
        limit = self.settings.parse_timeout + HANG_GRACE
        for worker_id, child in self.children.items():
            if not child.hung and child.proc.poll() is None and child.silent_for() > limit:
                log.warning("%s: worker %s silent for %.0fs (a parse that never returns?); killing it",
                            self.name, worker_id, child.silent_for())
                child.hung = True
                child.proc.kill()

    def _reap(self):
        for worker_id, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None:
                continue
            child.drain()
            del self.children[worker_id]
            child.close()
            if self.stopping:
                self.state.unregister_worker(worker_id)
                continue
            suspects = child.suspects()
            parked = self._blame(worker_id, suspects)
            if not suspects:
                self.crashes = [t for t in self.crashes if self.clock() - t < CRASH_WINDOW]
                self.crashes.append(self.clock())
                if len(self.crashes) > CRASH_LIMIT:
                    self.state.unregister_worker(worker_id)   # its seeds must not stay in flight
                    return "gave up"
            self._spawn()
            # if Redis is down this raises; the seeds stay in flight and are reclaimed later
            moved = self.state.unregister_worker(worker_id)
            log.warning("%s: worker %s %s; %d in-flight seeds requeued%s; restarted", self.name,
                        worker_id, "hung and was killed" if child.hung else "exited with %s" % code,
                        moved, ", %d stored as WorkerCrashed" % parked if parked else "")
        return None

    def _blame(self, worker_id, suspects):
        """Count a crash for each suspect; park and store those at --max-crashes. Returns how many."""
        if not suspects:
            return 0
        counts = self.state.count_crashes(suspects)
        doomed = {fp for fp, n in counts.items() if n >= self.settings.max_crashes}
        if not doomed:
            return 0
        found = {}
        for raw in self.state.inflight_of(worker_id):
            try:
                seed = Seed.from_json(raw)
            except ValueError:
                continue
            if seed.fingerprint in doomed:
                found[raw] = seed
        docs = [failure_doc(seed, "WorkerCrashed", "its processing killed or hung the worker "
                            "process %d times (--max-crashes)" % counts[seed.fingerprint], "")
                for seed in found.values()]
        try:
            self.store().save_failures(docs)
        except StoreError as exc:
            self._warn("%s; crashing seeds stay in the queue" % exc)
            return 0
        self.state.park_inflight(worker_id, {raw: float("inf") for raw in found})
        return len(found)

    def store(self):
        if self._store is None:
            self._store = open_store(self.store_uri, self.settings.mongo_db, self.name)
        return self._store

    def _reclaim(self):
        moved = self.state.reclaim_dead()
        if moved:
            log.warning("%s: %d seeds of dead workers back in the work queue", self.name, moved)
        self.state.prune_pages()

    # -- the end ----------------------------------------------------------------------------
    def _shutdown(self):
        for child in self.children.values():
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = self.clock() + 10
        while any(c.proc.poll() is None for c in self.children.values()) and self.clock() < deadline:
            self._quietly(self.state.heartbeat, [w for w, c in self.children.items() if c.proc.poll() is None])
            gevent.sleep(0.05)
        for worker_id, child in self.children.items():
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()
            child.close()
            self._quietly(self.state.unregister_worker, worker_id)
        self.children = {}
        self._quietly(self.progress.summary, self.reason, mask(self.redis_url))
        if self._store is not None:
            self._store.close()
        return 1 if self.reason == "workers keep crashing" else 0

    def _quietly(self, call, *args):
        """A Redis call at shutdown: if Redis is gone, seeds stay in flight and are reclaimed later."""
        try:
            return call(*args)
        except REDIS_DOWN as exc:
            self._warn("Redis unreachable at shutdown (%s); in-flight seeds are reclaimed later" % exc)
            return None


def run(spider_ref, spider_cls, settings, redis_url, store_uri, alerter=None):
    """Run a spider until finished or signalled; returns the exit code."""
    if settings.render or (settings.sessions and settings.session_warmup == "render"):
        from ..render import check_render, render_warnings

        check_render(settings)  # a missing extra or browser: one line, before any worker starts
        for warning in render_warnings(spider_cls, settings):
            log.warning("%s: %s", spider_cls.name, warning)
    from ..transport import check_impersonate

    for warning in check_impersonate(spider_cls, settings):  # a missing extra: one line, exit 2
        log.warning("%s: %s", spider_cls.name, warning)
    runner = Run(spider_ref, spider_cls, settings, redis_url, store_uri)
    runner.alerter = alerter
    gevent.signal_handler(signal.SIGTERM, runner.stop, "stopped by SIGTERM")
    gevent.signal_handler(signal.SIGINT, runner.stop, "stopped by SIGINT")
    runner.start()
    return runner.loop()
