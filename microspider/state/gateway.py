"""SpiderState: the one gateway to a spider's Redis state.

Every read and write of a spider's keys goes through here (and the Cache,
Backlog and rate limiters it hands out); no other module builds a key or
holds a Lua script.  Delivery is at-least-once: ``take`` moves seeds from the
head of the work queue (its highest priority level first: ``queue.py``) into
the worker's own in-flight list in one Lua call;
``commit`` writes an Outcome batch and ends by removing its seeds from in
flight.  A worker that dies leaves its in-flight list behind, and
``reclaim_dead`` puts it back at the head of the work queue once the worker's
heartbeat has expired.

Every seed a batch sends (to this spider or another), every start seed and
every ``push`` is *admitted* by its target's frontier (``Cache.admit``): one Lua
call queues the seeds whose URL that spider never queued, and counts the others
as duplicates.  The relay, the recovery of in-flight seeds, ``retry`` and
``push --force`` move seeds whatever the frontier says.

On a Redis Cluster one spider's keys share a hash tag, so they live on one slot:
every script and transaction here touches that slot only.  Writes to other
spiders' slots (sends, upstream links, the registry) are separate, confirmed
writes made before the spider's own transaction (see ``confirmed.py``).
"""
import time

from . import keys
from .backlog import Backlog
from .cache import Cache
from .chunking import by_index
from .confirmed import ConfirmedWrites, transaction
from .locks import Lock
from . import queue
from .queue import WorkQueue
from .ratelimit import HostRateLimiter, RateLimiter
from .robots import RobotsStore
from .sessions import SessionStore
from .scripts import ALERT_ONCE, RECLAIM, REQUEUE, REQUEUE_UNHELD, TAKE
from .throttle import Cooldowns

HEARTBEAT_TTL = 15.0
CHUNK = 1000
PAGE_BUCKET = 5            # seconds per bucket of the pages-done history
PAGES_KEPT = 3600          # seconds of that history kept (the dashboard charts an hour)


def spiders(redis):
    """Names of every spider that ever ran or was sent seeds, sorted."""
    return sorted(n.decode() for n in redis.work.smembers(keys.SPIDERS))


def is_known(redis, name):
    return bool(redis.work.sismember(keys.SPIDERS, name))


class SpiderState:
    """The Redis state of spider `name`; `redis` is a state.connection.Redis (three roles)."""

    def __init__(self, redis, name):
        self.redis = redis
        self.name = name
        self.client = redis.work
        self.work_key = keys.work(name)
        self.queue = WorkQueue(self.client, name)
        self.cache = Cache(redis.cache, name)
        self.backlog = Backlog(redis, name)
        self._take = self.client.register_script(TAKE)
        self._requeue = self.client.register_script(REQUEUE)
        self._reclaim = self.client.register_script(RECLAIM)
        self._requeue_unheld = self.client.register_script(REQUEUE_UNHELD)
        self._sessions = None
        self._frontiers = {name: self.cache}

    # -- registry, settings and links ----------------------------------------------------
    def register(self):
        self.client.sadd(keys.SPIDERS, self.name)

    def record_start(self, relay_mode, max_age, upstream=(), now=None, recrawl=None, no_cache=False):
        """Register the spider, its run settings and its declared upstreams.

        `recrawl` and `no_cache` go to the frontier, which every sender's admission reads."""
        self.cache.record_settings(recrawl, no_cache)
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(keys.SPIDERS, self.name)
        pipe.hset(keys.meta(self.name), mapping={
            "relay_mode": relay_mode, "max_age": max_age, "started": now or time.time()})
        if upstream:
            pipe.sadd(keys.upstream(self.name), *upstream)
        pipe.execute()

    def link_to(self, targets, pipe=None):
        """Record this spider as an upstream of `targets` (and make them known).

        `pipe` is a pipeline on one server, or ConfirmedWrites on a cluster."""
        p = pipe or self._other_slots()
        for target in targets:
            p.sadd(keys.upstream(target), self.name)
            p.sadd(keys.SPIDERS, target)
        if pipe is None:
            p.execute()

    def _other_slots(self):
        """Where writes to other spiders' keys go: ConfirmedWrites on a cluster, else a pipeline."""
        if self.redis.cluster:
            return ConfirmedWrites(self.redis)
        return self.client.pipeline(transaction=False)

    def add_upstreams(self, names):
        if names:
            self.client.sadd(keys.upstream(self.name), *names)
            writes = self._other_slots()
            writes.sadd(keys.SPIDERS, *names)
            writes.execute()

    def upstreams(self):
        return sorted(u.decode() for u in self.client.smembers(keys.upstream(self.name)))

    def meta(self):
        """What the spider's last run recorded (relay_mode, max_age, started), as text."""
        return {k.decode(): v.decode() for k, v in self.client.hgetall(keys.meta(self.name)).items()}

    def alert_once(self, kind, now, quiet=3600):
        """True if no `kind` alert of this spider went out in the last `quiet` seconds, and
        records this one; atomic, so several processes (runs, dashboards) agree."""
        return bool(self.client.eval(ALERT_ONCE, 1, keys.alerted(self.name, kind), repr(float(now)),
                                     quiet, int(quiet * 2)))

    def progress(self):
        """(meta, seeding, work length, upstreams) in one round trip (two on a cluster): what
        `finished` needs."""
        pipe = self._pipeline_with_length()
        pipe.hgetall(keys.meta(self.name))
        pipe.exists(keys.seeding(self.name))
        pipe.smembers(keys.upstream(self.name))
        work, (meta, seeding, upstream) = self._execute_with_length(pipe)
        meta = {k.decode(): v.decode() for k, v in meta.items()}
        return meta, bool(seeding), work, sorted(u.decode() for u in upstream)

    # -- workers and in-flight seeds ------------------------------------------------------
    def register_worker(self, worker, now=None):
        self.heartbeat([worker], now)
        self.register()

    def heartbeat(self, workers, now=None):
        if workers:
            expiry = (now or time.time()) + HEARTBEAT_TTL
            self.client.zadd(keys.workers(self.name), {w: expiry for w in workers})

    def unregister_worker(self, worker):
        """Put the worker's in-flight seeds back and forget it; returns how many went back."""
        moved = self.requeue_inflight(worker)
        self.client.zrem(keys.workers(self.name), worker)
        return moved

    def live_workers(self, now=None):
        return self.client.zcount(keys.workers(self.name), now or time.time(), "+inf")

    def take(self, worker, n):
        """Move up to n seeds from work (highest priority first) into the worker's in-flight
        list; return them."""
        return self._take(keys=[self.work_key, keys.inflight(self.name, worker)], args=[n])

    def requeue_inflight(self, worker):
        """Put a worker's in-flight seeds back at the head of the work queue (of their levels)."""
        return self._requeue(keys=[keys.inflight(self.name, worker), self.work_key])

    def requeue_unheld(self, worker, held):
        """Requeue this worker's in-flight seeds that it does not hold (lost take replies)."""
        return self._requeue_unheld(keys=[keys.inflight(self.name, worker), self.work_key], args=held)

    def reclaim_dead(self, now=None):
        """Requeue the in-flight seeds of workers whose heartbeat expired; returns how many."""
        prefix = keys.inflight(self.name, "")
        return self._reclaim(keys=[keys.workers(self.name), self.work_key],
                             args=[now or time.time(), prefix])

    def inflight_of(self, worker):
        """The raw seeds a worker holds in flight."""
        return self.client.lrange(keys.inflight(self.name, worker), 0, -1)

    def count_crashes(self, fingerprints):
        """Add one crash to each fingerprint; returns {fingerprint: crashes so far}."""
        pipe = self.client.pipeline(transaction=False)
        for fp in fingerprints:
            pipe.hincrby(keys.crashes(self.name), fp, 1)
        return dict(zip(fingerprints, pipe.execute()))

    def clear_crashes(self, fingerprints):
        if fingerprints:
            self.client.hdel(keys.crashes(self.name), *fingerprints)

    def park_inflight(self, worker, scored):
        """Move {raw in `worker`'s in-flight list: backlog score} to the backlog."""
        if not scored:
            return
        self.backlog.add(scored)
        pipe = self.client.pipeline(transaction=True)
        for raw in scored:
            pipe.lrem(keys.inflight(self.name, worker), 1, raw)
        pipe.execute()

    def in_flight(self):
        workers = self.client.zrange(keys.workers(self.name), 0, -1)
        if not workers:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for w in workers:
            pipe.llen(keys.inflight(self.name, w.decode()))
        return sum(pipe.execute())

    # -- the work queue -------------------------------------------------------------------
    def push(self, seeds, target=None):
        """Append seeds to a work queue (this spider's by default), each to its priority's
        level, whatever the frontier says; returns how many (``retry``).

        On a cluster the write is confirmed by a replica when the master has one."""
        raws = [s.to_json() for s in seeds]
        self.push_raw(raws, target)
        return len(raws)

    def admit(self, seeds, target=None, force=False, now=None, recrawl=None):
        """Queue the seeds the frontier of `target` (this spider by default) does not know;
        returns (queued, duplicates).  With `force` every seed is queued, done or not;
        `recrawl` overrides the one the target's run recorded.

        Confirmed by a replica like every push (cluster, Sentinel)."""
        target = target or self.name
        pairs = [(s.cache_key, s.to_json()) for s in seeds]
        if not pairs:
            return 0, 0
        if self.redis.cluster:
            writes = ConfirmedWrites(self.redis)
            self._admit(target, pairs, writes, force, now, recrawl)
            result = writes.execute()[0]
        else:
            writes, _ = self._admission_pipe()
            self._admit(target, pairs, writes, force, now, recrawl)
            result = writes.execute()[-1]
        return int(result[0]), int(result[1])

    def frontier(self, name):
        """The frontier (a Cache) of spider `name`, on this run's cache db."""
        found = self._frontiers.get(name)
        if found is None:
            found = self._frontiers[name] = Cache(self.redis.cache, name)
        return found

    def _admit(self, target, pairs, writes, force=False, now=None, recrawl=None):
        """Queue one admission of (cache key, raw) `pairs` for `target` into `writes`."""
        work_db = None if self.redis.single else _db_of(self.redis.work)
        self.frontier(target).admit(pairs, keys.work(target), keys.stats(target), force, now,
                                    pipe=writes, work_db=work_db, recrawl=recrawl)

    def _admission_pipe(self):
        """Where an admission runs on one server: the cache db's transaction (it writes the work
        db itself when -o and -c differ), confirmed behind Sentinel."""
        client = self.redis.cache
        return transaction(self.redis, client), client is not self.client

    def push_raw(self, raws, target=None):
        """Append already-encoded seeds to a work queue (this spider's by default)."""
        if not raws:
            return
        key = keys.work(target or self.name)
        if self.redis.cluster:
            writes = ConfirmedWrites(self.redis)
            queue.push(writes, key, raws)
            writes.execute()
        else:
            queue.push(transaction(self.redis, self.client), key, raws).execute()

    def push_start(self, sends, force=False, now=None):
        """Push start seeds [(target, seed)] and record the links and the time.

        With `force` the seeds are taken out of their spiders' caches first, so
        they are fetched again (``run --every``).  One transaction on one server.
        On a cluster the other spiders' seeds and the links go first, this
        spider's own seeds last: a crash in between leaves this spider fresh, so
        the next run pushes them all again (duplicates, never loss)."""
        by_target = {}
        for target, seed in sends:
            by_target.setdefault(target, []).append((seed.cache_key, seed.to_json()))
        others = [t for t in by_target if t != self.name]
        stamp = repr(float(time.time() if now is None else now))
        if self.redis.cluster:
            writes = ConfirmedWrites(self.redis)
            for target in others:
                self._admit(target, by_target[target], writes, force, now)
            self.link_to(others, writes)
            writes.execute()
            if self.name in by_target:
                writes = ConfirmedWrites(self.redis)
                self._admit(self.name, by_target[self.name], writes, force, now)
                writes.execute()
            self.client.hset(keys.meta(self.name), "start_pushed", stamp)
            return
        admissions, apart = self._admission_pipe()
        pipe = transaction(self.redis, self.client) if apart else admissions
        for target, pairs in by_target.items():
            self._admit(target, pairs, admissions, force, now)
        if apart:
            admissions.execute()
        self.link_to(others, pipe)
        pipe.hset(keys.meta(self.name), "start_pushed", stamp)
        pipe.execute()

    def last_start_push(self):
        """When the start seeds were last pushed (epoch s), or None."""
        found = self.client.hget(keys.meta(self.name), "start_pushed")
        return float(found) if found is not None else None

    def seeding_lock(self):
        """Held while start seeds are pushed (a fresh crawl is seeded once, even with -w N)."""
        return Lock(self.client, keys.seeding(self.name), ttl=600, wait=0)

    def is_fresh(self):
        """Work, backlog, cache and in-flight all empty: nothing of this crawl exists yet."""
        return not (self.queue.length() or self.backlog.size() or self.cache.known()
                    or self.in_flight())

    def sizes(self, now):
        """(work, quarantined, live workers, live sessions, pages hash, counters) in one round
        trip (two on a cluster)."""
        pipe = self._pipeline_with_length()
        pipe.llen(keys.quarantine(self.name))
        pipe.zcount(keys.workers(self.name), now, "+inf")
        pipe.hlen(keys.sessions(self.name))
        pipe.hgetall(keys.pages(self.name))
        pipe.hgetall(keys.stats(self.name))
        work, (quarantined, workers, sessions, pages, stats) = self._execute_with_length(pipe)
        pages = {int(k): int(v) for k, v in pages.items()}
        return work, quarantined, workers, sessions, pages, _ints(stats)

    def _pipeline_with_length(self):
        """A pipeline whose first command asks the work queue's length (every level).

        A cluster pipeline takes no script: there ``_execute_with_length`` asks apart."""
        pipe = self.client.pipeline(transaction=False)
        if not self.redis.cluster:
            pipe.eval(queue.LENGTH, 1, self.work_key)
        return pipe

    def _execute_with_length(self, pipe):
        """(work queue length, the pipeline's other results)."""
        if self.redis.cluster:
            return self.queue.length(), pipe.execute()
        work, *rest = pipe.execute()
        return work, rest

    def queue_chunks(self, queue):
        """Lists of raw seeds of 'work' (take order: highest priority first), 'quarantine' or
        'backlog' (due order), CHUNK at a time."""
        if queue == "backlog":
            yield from self.backlog.chunks()
        elif queue == "work":
            yield from self.queue.chunks()
        else:
            key = keys.quarantine(self.name)
            yield from by_index(lambda a, b: self.client.lrange(key, a, b), CHUNK)

    def inflight_chunks(self):
        """Lists of raw seeds held in flight by any worker, live or dead (for migrate)."""
        found = sorted(self.client.scan_iter(match=keys.inflight(self.name, "*"), count=CHUNK))
        for key in found:
            yield from by_index(lambda a, b, key=key: self.client.lrange(key, a, b), CHUNK)

    def quarantine(self, raws):
        if raws:
            self.client.rpush(keys.quarantine(self.name), *raws)

    # -- counters -------------------------------------------------------------------------
    def counters(self):
        return _ints(self.client.hgetall(keys.stats(self.name)))

    def pages_done(self):
        """{bucket: pages done in it}; a bucket is PAGE_BUCKET seconds (epoch // PAGE_BUCKET)."""
        return {int(k): int(v) for k, v in self.client.hgetall(keys.pages(self.name)).items()}

    def prune_pages(self, now=None):
        """Drop pages-done buckets older than PAGES_KEPT."""
        oldest = int((now or time.time()) // PAGE_BUCKET) - PAGES_KEPT // PAGE_BUCKET
        old = [k for k in self.client.hkeys(keys.pages(self.name)) if int(k) < oldest]
        if old:
            self.client.hdel(keys.pages(self.name), *old)

    # -- acknowledging a batch ---------------------------------------------------------------
    def commit(self, outcome, worker, now=None):
        """Write an Outcome and acknowledge its seeds (removing them from `worker`'s in flight).

        Sends to other spiders, links, and the cache/backlog when they live in
        other dbs go first; this spider's own keys and the acknowledgement last,
        in one MULTI.  A crash in between repeats work, never loses it.  On a
        cluster the first part is ConfirmedWrites (replica-confirmed, one round
        trip per master written to) and the MULTI holds this spider's slot only.
        """
        now = now or time.time()
        write_first = self._write_first_on_cluster if self.redis.cluster else self._write_first
        own = write_first(outcome, now)
        self._count(own, outcome, now)
        inflight = keys.inflight(self.name, worker)
        for raw in outcome.done:
            own.lrem(inflight, 1, raw)
        own.execute()

    def _write_first(self, outcome, now):
        """On one server: run the writes to other dbs; return the MULTI of the work db, filled.

        Behind Sentinel that MULTI is confirmed by a replica (``WAIT``) before it
        counts as written; its WAIT covers the earlier writes of the master too.
        """
        own = transaction(self.redis, self.client)
        shared = self.redis.single
        other = {}

        def pipe_for(client):
            if shared or client is self.client:
                return own
            return other.setdefault(id(client), client.pipeline(transaction=True))

        self._send(outcome, pipe_for(self.redis.cache), pipe_for(self.client), now)
        self.cache.add(outcome.cache_adds, pipe_for(self.redis.cache), now)
        self.cache.remove(outcome.unseen, pipe_for(self.redis.cache))
        self.backlog.add(outcome.backlog, pipe_for(self.redis.backlog))
        for p in other.values():
            p.execute()
        return own

    def _write_first_on_cluster(self, outcome, now):
        """On a cluster: confirm the sends and links, add to the cache; return this slot's MULTI.

        Every send (this spider's too) and link first, replica-confirmed; then the
        cache (a script, which a cluster pipeline cannot hold).  A crash after the
        cache leaves a seed cached whose outcome is all written: no loss.
        """
        writes = ConfirmedWrites(self.redis)
        self._send(outcome, writes, writes, now)
        writes.execute()
        self.cache.add(outcome.cache_adds, None, now)
        self.cache.remove(outcome.unseen)
        own = self.client.pipeline(transaction=True)
        self.backlog.add(outcome.backlog, own)
        return own

    def _send(self, outcome, admissions, links, now):
        """Queue the batch's admissions into `admissions` and its new downstream links into
        `links` (pipelines, or ConfirmedWrites on a cluster)."""
        for target, pairs in outcome.sends.items():
            self._admit(target, pairs, admissions, now=now)
        self.link_to(outcome.links, links)

    def _count(self, pipe, outcome, now):
        """Queue the quarantined seeds, the counters and the pages done of a batch."""
        if outcome.quarantine:
            pipe.rpush(keys.quarantine(self.name), *outcome.quarantine)
        for field, n in outcome.stats.items():
            pipe.hincrby(keys.stats(self.name), field, n)
        if outcome.pages:
            pipe.hincrby(keys.pages(self.name), int(now // PAGE_BUCKET), outcome.pages)

    # -- sessions -------------------------------------------------------------------------
    @property
    def sessions(self):
        """The spider's session pool in Redis (``--sessions``), a SessionStore."""
        if self._sessions is None:
            self._sessions = SessionStore(self.client, self.name)
        return self._sessions

    # -- rate limits ----------------------------------------------------------------------
    def rate_limiter(self, rate, burst=None):
        """The ``--rate`` bucket of this spider (shared by all its processes)."""
        return RateLimiter(self.client, keys.ratelimit(self.name), rate, burst)

    def host_rate_limiter(self, rate, burst=None):
        """The ``--rate-per-host`` buckets of this spider."""
        return HostRateLimiter(self.client, lambda host: keys.ratelimit(self.name, host), rate, burst)

    # -- throttling and robots.txt -------------------------------------------------------------
    def cooldowns(self):
        """The cool-downs of hosts that throttled this spider (429, 503 + Retry-After)."""
        return Cooldowns(self.client, keys.cooling(self.name), keys.cooling_steps(self.name))

    def robots_store(self):
        """The robots.txt files and Crawl-delay slots of this spider (``--robots``)."""
        name = self.name
        return RobotsStore(self.client, lambda origin: keys.robots(name, origin),
                           lambda origin: keys.robots_lock(name, origin),
                           lambda host: keys.crawl_delay(name, host))

    # -- clearing ---------------------------------------------------------------------------
    def clear_work(self):
        """Delete the work queue, every level; returns how many seeds went."""
        return self.queue.clear()

    def clear_quarantine(self):
        return _unlink_counted(self.client, keys.quarantine(self.name), "llen")

    def forget(self):
        """Delete every engine key of the spider and forget it; returns how many keys went."""
        name = self.name
        fixed = [keys.workers(name), keys.stats(name), keys.pages(name), keys.meta(name), keys.crashes(name),
                 keys.upstream(name), keys.seeding(name), keys.relaylock(name), keys.ratelimit(name)]
        fixed += [keys.sessions(name), keys.cooling(name), keys.cooling_steps(name)]
        patterns = [keys.inflight(name, "*"), keys.ratelimit(name, "*"), keys.alerted(name, "*"),
                    keys.session(name, "*"), keys.robots(name, "*"), keys.robots_lock(name, "*"),
                    keys.crawl_delay(name, "*")]
        found = fixed + [k for p in patterns for k in self.client.scan_iter(match=p, count=CHUNK)]
        n = 0
        for start in range(0, len(found), CHUNK):
            n += self.client.unlink(*found[start:start + CHUNK])
        pipe = self.client.pipeline(transaction=False)
        for other in spiders(self.redis):  # a forgotten upstream would keep its downstreams waiting
            pipe.srem(keys.upstream(other), name)
        pipe.execute()
        self.client.srem(keys.SPIDERS, name)  # last: until then `clear` can find it and be run again
        return n


def _db_of(client):
    return client.connection_pool.connection_kwargs.get("db", 0)


def _unlink_counted(client, key, size):
    pipe = client.pipeline(transaction=True)
    getattr(pipe, size)(key)
    pipe.unlink(key)
    return pipe.execute()[0]


def _ints(mapping):
    return {k.decode(): int(v) for k, v in mapping.items()}
