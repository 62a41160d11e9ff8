"""The per-process loop: take -> fetch -> parse -> acknowledge.

One feeder greenlet takes batches of seeds into this worker's in-flight record,
``pool`` greenlets fetch and parse them, and one flusher greenlet writes the
outcomes in batches: the store first (items, failures), then one Redis
transaction (cache, backlog, sends, counters) that ends by acknowledging the
seeds.  A seed is acknowledged only after its outcome is stored, so a crash at
any point leaves it in flight, to be requeued.

A parse that runs past ``--parse-timeout`` is a parse failure (``ParseTimeout``):
a gevent Timeout ends one that yields, and ``check_parse_timeout`` (called
from a SIGALRM handler that the process entry installs) ends one that never
yields.  The worker tells its supervisor, through a ``Monitor``, which seeds it
is processing and that it is alive, so a seed that kills or hangs the whole
process can be named.

A seed that may not be fetched yet (its host cools down after a 429, a
robots.txt Crawl-delay, a robots.txt being fetched elsewhere) is *held*: it
stays in this worker's in-flight list, so ``kill -9`` loses nothing, while its
greenlet goes on to the next seed; ``_release_due`` hands it back to the pool
when its time comes.  No pool slot sleeps for a host.
"""
import collections
import heapq
import itertools
import logging
import os
import time

import gevent
import gevent.event
import gevent.queue

from ..backoff import Backoff
from ..errors import FetchError, MalformedSeed, NoProxy, NotYet, StoreError, Throttled
from ..seed import Seed
from ..state import SpiderState
from ..state.connection import UNAVAILABLE
from .outcome import (Batch, Cached, FetchFailed, Malformed, NoProxyLeft, ParseFailed, Parsed,
                      RobotsDenied, ThrottledTooLong, parse_failure, parse_response, parse_timeout)

log = logging.getLogger("microspider.worker")
FLUSH_INTERVAL = 0.05
IDLE_MAX = 0.5
BEAT_EVERY = 1.0
REDIS_DOWN = UNAVAILABLE   # an outage or a cluster failover (MOVED, CLUSTERDOWN, ...): retried
SHUTDOWN_ATTEMPTS = 8     # Redis retries while stopping (about 15 s)
HOLD_MAX = 10             # seeds held (waiting for a cooling host) per pool slot before taking stops


class ParseInterrupt(BaseException):
    """Raised into a parse past its timeout; a BaseException so a bare ``except Exception`` in parse cannot swallow it."""


class Monitor:
    """Tells the supervisor what this worker processes, one short line per event, through a pipe.

    ``S fp`` processing starts, ``P fp`` parse starts, ``D fp`` done, ``B`` alive.
    A D line is held back until its greenlet says its next S, or ``flush``es
    before it waits for work: a syscall less per page.  The greenlet does not
    yield in between, so no other line, and no parse, comes before that D.
    Without a pipe (tests, a worker started by hand) it does nothing.
    """

    def __init__(self, fd=None):
        self.fd = fd
        self.held = []            # D lines not said yet
        if fd is not None:
            os.set_blocking(fd, False)

    def _say(self, line=None):
        lines, self.held = self.held, []
        if self.fd is None:
            return
        if line is not None:
            lines.append(line)
        data = "\n".join(lines).encode("ascii") + b"\n"
        while data:
            try:
                data = data[os.write(self.fd, data):]
            except BlockingIOError:
                gevent.sleep(0.001)  # the supervisor reads this pipe continuously; never lose a line
            except OSError:           # the supervisor is gone: _watch_parent stops us
                self.fd = None
                return

    def start(self, fingerprint):
        self._say("S " + fingerprint)

    def parsing(self, fingerprint):
        self._say("P " + fingerprint)

    def done(self, fingerprint):
        self.held.append("D " + fingerprint)

    def flush(self):
        """Say the held-back D lines now (before this greenlet waits for work)."""
        if self.held:
            self._say()

    def beat(self):
        self._say("B")

    def beat_forever(self):
        """Say "alive" every BEAT_EVERY seconds (a greenlet; silence means a blocked process)."""
        while True:
            self.beat()
            gevent.sleep(BEAT_EVERY)


class Worker:
    """Runs one spider in this process until ``stop()``."""

    def __init__(self, spider, settings, redis, store, worker_id, fetcher, proxies=None,
                 monitor=None, clock=time.monotonic, now=time.time, robots=None):
        self.spider = spider
        self.settings = settings
        self.name = spider.name
        self.state = SpiderState(redis, self.name)
        self.store = store
        self.id = worker_id
        self.fetcher = fetcher
        self.proxies = proxies
        self.robots = robots          # a crawl.robots.Robots with --robots
        self.monitor = monitor or Monitor()
        self.clock, self.now = clock, now
        self.local = gevent.queue.Queue()
        self.batch = Batch()          # finished seeds, acknowledged by the next flush
        self.unfinished = 0           # taken and not yet processed (acknowledged or not)
        self.holding = collections.Counter()  # raw seeds taken and not yet acknowledged
        self.take_failed = False      # a take may have run without its reply reaching us
        self.linked = set()           # spiders we already recorded as our downstream
        self.parsing = {}             # greenlet -> when its parse started (clock)
        self.stopping = False
        self.done = gevent.event.Event()
        self.held = []                # heap of (due clock, order, raw, seed): seeds told to wait
        self._order = itertools.count()
        self._due_changed = gevent.event.Event()
        self.paused_until = 0.0       # no usable proxy: take nothing until then
        self.failed = False           # the feeder or flusher died: exit non-zero
        self._warned = {}

    # -- life cycle ------------------------------------------------------------
    def run(self):
        self._retry_redis(lambda: self.state.register_worker(self.id), "register")
        workers = [gevent.spawn(self._process_loop) for _ in range(self.settings.pool)]
        feeder = gevent.spawn(self._feed)
        flusher = gevent.spawn(self._flush_loop)
        for greenlet in (feeder, flusher):
            greenlet.link_exception(self._crashed)
        helpers = [gevent.spawn(self._watch_parent), gevent.spawn(self._release_due)]
        if self.proxies is not None:
            helpers.append(gevent.spawn(self._tend_proxies))
        self.done.wait()
        feeder.kill()
        gevent.killall(workers, timeout=5)
        gevent.killall(helpers, timeout=1)
        flusher.kill()
        # bounded: with Redis gone for good, what is not acknowledged stays in flight there
        try:
            self._flush(attempts=SHUTDOWN_ATTEMPTS)
        except Exception as exc:  # what could not be written stays in flight, requeued below
            log.error("%s: last acknowledgement failed: %r", self.name, exc)
            self.failed = True
        self._retry_redis(lambda: self.state.unregister_worker(self.id), "requeue in-flight seeds",
                          attempts=SHUTDOWN_ATTEMPTS)
        self.fetcher.close()

    def stop(self):
        """Stop taking seeds; in-flight seeds go back to the work queue."""
        self.stopping = True
        self.done.set()

    def _crashed(self, greenlet):
        log.error("%s: %s died: %r; stopping (its in-flight seeds are requeued)", self.name,
                  getattr(greenlet, "_run", greenlet).__name__, greenlet.exception)
        self.failed = True
        self.stop()

    # -- feeding ---------------------------------------------------------------
    def _feed(self):
        idle = Backoff(0.01, IDLE_MAX)
        pool = self.settings.pool
        while not self.stopping:
            if self.unfinished - len(self.held) > pool or len(self.held) >= HOLD_MAX * pool:
                gevent.sleep(0.005)
                continue
            pause = self.paused_until - self.clock()
            if pause > 0:
                gevent.sleep(min(pause, 1.0))
                continue
            want = 2 * pool - (self.unfinished - len(self.held))
            raws = self._retry_redis(lambda: self._take(want), "take")
            if self.take_failed:
                self._retry_redis(self._requeue_unheld, "requeue lost takes")
            if not raws:
                gevent.sleep(idle.next())
                continue
            idle.reset()
            self.unfinished += len(raws)
            self.holding.update(raws)
            for raw, seed in self._skip_cached(raws):
                self.local.put((raw, seed))

    def _take(self, n):
        try:
            return self.state.take(self.id, n)
        except REDIS_DOWN:
            self.take_failed = True
            raise

    def _requeue_unheld(self):
        moved = self.state.requeue_unheld(self.id, list(self.holding.elements()))
        self.take_failed = False
        if moved:
            log.warning("%s: %d seeds of a take whose reply was lost went back to the queue",
                        self.name, moved)

    def _skip_cached(self, raws):
        decoded = []
        for raw in raws:
            try:
                decoded.append((raw, Seed.from_json(raw)))
            except MalformedSeed as exc:
                log.warning("%s: malformed seed quarantined: %s", self.name, exc)
                self._record(Malformed(raw))
        if self.settings.no_cache or not decoded:
            return decoded
        flags = self._retry_redis(lambda: self.state.cache.contains(
            [s.cache_key for _, s in decoded], self.settings.recrawl, self.now()), "cache")
        fresh = []
        for (raw, seed), hit in zip(decoded, flags):
            if hit:
                self._record(Cached(raw, seed))
            else:
                fresh.append((raw, seed))
        return fresh

    # -- processing ------------------------------------------------------------
    def _process_loop(self):
        while True:
            raw, seed = self._next_seed()
            self.monitor.start(seed.fingerprint)
            try:
                self._process(raw, seed)
            except gevent.GreenletExit:
                raise
            except BaseException:  # a bug of ours must not shrink the pool or strand the seed
                log.exception("%s: unexpected error on %s; the seed goes to the backlog", self.name, seed)
                self._record(FetchFailed(raw, seed))
            finally:
                self.monitor.done(seed.fingerprint)

    def _next_seed(self):
        """The next (raw, seed) to process; what the monitor holds back goes out before waiting for one."""
        try:
            return self.local.get_nowait()
        except gevent.queue.Empty:
            self.monitor.flush()
            return self.local.get()

    def _process(self, raw, seed):
        try:
            if self.robots is not None and not self.robots.allowed(seed):
                return self._record(RobotsDenied(raw, seed))
            response = self.fetcher.fetch(seed)
        except Throttled as exc:
            if exc.over_cap:
                log.info("%s: %s; the seed goes to the backlog", self.name, exc)
                return self._record(ThrottledTooLong(raw, seed))
            return self._hold(raw, seed, exc.wait)
        except NotYet as exc:
            return self._hold(raw, seed, exc.wait)
        except NoProxy as exc:
            wait = (self.proxies.next_ready_in() if self.proxies else None) or 5.0
            self.paused_until = max(self.paused_until, self.clock() + wait)
            self._warn_once("noproxy", "%s: %s; seeds go to the backlog, taking none for %.0fs",
                            self.name, exc, wait)
            return self._record(NoProxyLeft(raw, seed))
        except FetchError as exc:
            log.debug("%s: fetch failed: %s", self.name, exc)
            return self._record(FetchFailed(raw, seed))
        except gevent.GreenletExit:
            raise
        except BaseException as exc:  # a header that cannot be encoded, an is_banned that raised
            self._warn_once("fetch", "%s: fetch of %s failed: %r", self.name, seed.url, exc)
            return self._record(FetchFailed(raw, seed))
        self.monitor.parsing(seed.fingerprint)
        record, raised = self._parse(raw, seed, response)
        if raised:   # a page another engine rendered gets one more try in Chromium, if there is one
            again = self.fetcher.rerender(seed, response)
            if again is not None:
                record, _ = self._parse(raw, seed, again)
        self._record(record)

    def _parse(self, raw, seed, response):
        """(the record of parsing `response`, whether parse raised)."""
        try:
            items, sends = self._timed(lambda: parse_response(self.spider, response, seed))
        except gevent.GreenletExit:
            raise  # the worker is stopping: the seed stays in flight and goes back
        except (ParseInterrupt, gevent.Timeout):
            failure = parse_timeout(seed, self.settings.parse_timeout, response)
            return ParseFailed(raw, seed, failure), False
        except BaseException as exc:  # sys.exit() or KeyboardInterrupt in parse is a parse failure too
            log.debug("%s: parse failed on %s: %r", self.name, seed.url, exc)
            return ParseFailed(raw, seed, parse_failure(seed, exc, response)), True
        return Parsed(raw, seed, items, sends), False

    def _timed(self, call):
        """Run a parse under --parse-timeout (gevent Timeout, plus the SIGALRM check)."""
        me = gevent.getcurrent()
        self.parsing[me] = self.clock()
        try:
            with gevent.Timeout(self.settings.parse_timeout):
                return call()
        finally:
            self.parsing.pop(me, None)

    def check_parse_timeout(self):
        """Raise ParseInterrupt in the running greenlet if its parse is overdue (from a signal handler).

        A parse that never yields keeps its greenlet running; a signal handler runs
        in that greenlet, between two of its bytecodes, so raising here ends it.
        """
        started = self.parsing.get(gevent.getcurrent())
        if started is not None and self.clock() - started > self.settings.parse_timeout:
            raise ParseInterrupt()

    def _hold(self, raw, seed, wait):
        """Keep a seed (still in flight) until `wait` seconds have passed; the greenlet moves on."""
        heapq.heappush(self.held, (self.clock() + wait, next(self._order), raw, seed))
        self._due_changed.set()

    def _release_due(self):
        """Hand held seeds back to the pool as they come due (a greenlet)."""
        while True:
            self._due_changed.clear()
            if not self.held:
                self._due_changed.wait()
                continue
            left = self.held[0][0] - self.clock()
            if left > 0:
                self._due_changed.wait(left)
                continue
            _, _, raw, seed = heapq.heappop(self.held)
            self.local.put((raw, seed))

    def _record(self, record):
        self.batch.add(record)
        self.unfinished -= 1

    # -- acknowledging -----------------------------------------------------------
    def _flush_loop(self):
        while True:
            gevent.sleep(FLUSH_INTERVAL)
            self._flush()

    def _flush(self, attempts=None):
        batch, self.batch = self.batch, Batch()
        throttle = self.fetcher.throttle
        throttled = throttle.pop_answers() if throttle is not None else 0
        if not batch and not throttled:   # held seeds finish nothing, but their 429s count now
            return
        stored = self._save(batch)
        outcome = batch.outcome(self.name, stored, self.settings, self.now(), self.linked)
        retried, self.fetcher.retries = self.fetcher.retries, 0
        outcome.count("retried", retried)
        outcome.count("throttled", throttled)
        fallbacks, self.fetcher.fallbacks = self.fetcher.fallbacks, 0
        outcome.count("render_fallbacks", fallbacks)   # pages another engine failed on, in Chromium
        sessions = getattr(self.fetcher, "sessions", None)
        if sessions is not None:  # counted in this batch's transaction: no extra round trip
            outcome.count("session_round_trips", sessions.store.pop_round_trips())
        self._retry_redis(lambda: self.state.commit(outcome, self.id), "acknowledge", attempts)
        self.holding.subtract(outcome.done)
        self.holding += collections.Counter()  # drops the zero counts

    def _save(self, batch):
        """Write the store's part of a batch; False (and said) when the store refused it."""
        try:
            batch.save(self.store)
            return True
        except StoreError as exc:
            self._warn_once("store", "%s: %s; affected seeds stay safe in the backlog", self.name, exc)
            return False

    # -- helpers ---------------------------------------------------------------
    def _retry_redis(self, call, what, attempts=None):
        """Run a Redis call, backing off and retrying while Redis is unreachable."""
        backoff, n = Backoff(0.1, 5.0), 0
        while True:
            try:
                return call()
            except REDIS_DOWN as exc:
                n += 1
                if attempts and n >= attempts:
                    log.error("%s: gave up on %s: %s (seeds stay in flight; reclaimed later)",
                              self.name, what, exc)
                    return None
                self._warn_once("redis", "%s: Redis unreachable during %s (%s); retrying",
                                self.name, what, exc)
                gevent.sleep(backoff.next())

    def _warn_once(self, topic, message, *args, every=10.0):
        now = self.clock()
        if now - self._warned.get(topic, -every) >= every:
            self._warned[topic] = now
            log.warning(message, *args)

    def _watch_parent(self):
        parent = os.getppid()
        while True:
            gevent.sleep(1.0)
            if os.getppid() != parent:
                log.warning("%s: the run process is gone; stopping", self.name)
                self.stop()
                return

    def _tend_proxies(self):
        while True:
            gevent.sleep(5.0)
            try:
                self.proxies.refresh()
                self.proxies.flush_stats()
            except Exception as exc:  # a proxy source hiccup must not stop the crawl
                self._warn_once("proxies", "%s: proxy source: %s", self.name, exc)
