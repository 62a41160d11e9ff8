"""Trial kinds 1-4, each a crawl of the Ctrip-like site around one fault.

1. kill9   - SIGKILL a random worker process at a random moment; supervision restarts it.
2. signals - SIGTERM / SIGINT to `run` (or to its whole group, like Ctrl-C) while much is in
             flight; `run` must exit 0 within 10 s; the crawl then resumes to its end.
3. redis   - restart the private Redis mid-crawl (graceful, or SIGKILL with fsync always),
             and kill the embedded Redis (the next command starts it again).
4. store   - the SQLite store locked past its busy timeout, or made read-only; and an
             unreachable MongoDB refused at start.
"""
import os
import signal
import sqlite3
import stat
import time

from microspider import embedded

from microspider.state import keys
from microspider.store import open_store
from tests.chaos.harness import ChaosRedis, Processes, worker_id_of
from tests.chaos.redisproxy import ReplyDropper
from tests.chaos.trial import CtripTrial, run_trial
from tests.crawl import children, cli_env
from tests.servers import free_port, wait_until

SIGNAL_LIMIT = 10.0


def _random_moment(suite, crawl, rng, share=0.6):
    """Wait for a random moment of the crawl: when a random share of its pages (up to `share`) is done."""
    target = rng.randint(1, max(1, int(share * suite.pages())))
    wait_until(lambda: (crawl.ok_total() or 0) >= target or not crawl.alive(), timeout=120,
               interval=0.02, message="%d pages done" % target)


# -- 1. kill -9 -----------------------------------------------------------------------------------
def kill9(suite, trials):
    return [run_trial(suite, "kill9", "kill -9 #%d" % (i + 1), lambda r: _kill9(suite, r))
            for i in range(trials)]


def _kill9(suite, result):
    rng = suite.rng
    with CtripTrial(suite, "kill9", result) as t:
        t.start()
        _random_moment(suite, t.crawl, rng, share=0.9)
        workers = t.crawl.workers()
        if not workers:
            result.notes.append("every run had ended: nothing to kill")
        else:   # a random worker, among those holding seeds if any does: the harder case
            held = {pid: _held_by(t.crawl, name, worker_id_of(pid)) for pid, name in workers.items()}
            pid = rng.choice(sorted(p for p in workers if held[p]) or sorted(workers))
            name, wid, held = workers[pid], worker_id_of(pid), held[pid]
            run = t.crawl.runs[name]
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            wait_until(lambda: run.poll() is not None or (
                not t.crawl.redis.exists(keys.inflight(name, wid))
                and len(children(run.pid)) >= t.WORKERS[name] and pid not in children(run.pid)),
                timeout=30, message="the killed worker replaced")
            result.recovered(time.monotonic() - killed)
            result.name += " (%s, %d in flight)" % (name, held)
        t.finish()
        logs = t.crawl.logs()
        # a worker killed holding nothing while its run was already ending is not restarted (the
        # run had decided to stop: nothing of it is left to do); any other kill must be reported
        ending = workers and held == 0 and "%s finished after" % name in logs
        if workers and "in-flight seeds requeued" not in logs and not ending:
            result.problems.append("the supervisor did not report the restart")
        t.check()


def _held_by(crawl, name, wid):
    return crawl.redis.llen(keys.inflight(name, wid)) if wid else 0


# -- 2. SIGTERM / SIGINT ------------------------------------------------------------------------------
SIGNAL_VARIANTS = (("SIGTERM", "run"), ("SIGINT", "group"), ("SIGINT", "run"), ("SIGTERM", "group"))


def signals(suite, trials):
    out = []
    for i in range(trials):
        sig, target = SIGNAL_VARIANTS[i % len(SIGNAL_VARIANTS)]
        out.append(run_trial(suite, "signals", "%s to the %s" % (sig, target),
                             lambda r: _signal(suite, r, getattr(signal, sig), target)))
    return out


def _signal(suite, result, sig, target):
    with CtripTrial(suite, "signals", result, slow=1.5) as t:
        t.start()
        name = "chaos_info"
        wait_until(lambda: _held(t.crawl, name) >= 40, timeout=60, interval=0.05,
                   message="heavy in-flight work")
        run = t.crawl.runs[name]
        held = _held(t.crawl, name)
        (os.killpg if target == "group" else os.kill)(run.pid, sig)
        sent = time.monotonic()
        try:
            code = run.wait(SIGNAL_LIMIT + 5)
        except Exception:
            code = None
        took = time.monotonic() - sent
        result.recovered(took)
        result.name += " (%d in flight)" % held
        if code != 0 or took > SIGNAL_LIMIT:
            result.problems.append("run %s: exit %s after %.1fs (want 0 within %.0fs)"
                                   % (name, code, took, SIGNAL_LIMIT))
        t.crawl.collect_exits()
        t.crawl.exits = [e for e in t.crawl.exits if e[0] != name]
        left = _held(t.crawl, name)
        if left:
            result.problems.append("%d seeds of %s still in flight after it stopped" % (left, name))
        t.crawl.start_run(name, workers=t.WORKERS[name])  # the operator starts it again
        t.finish()
        t.check()


def _held(crawl, name):
    redis = crawl.redis
    return sum(redis.llen(k) for k in redis.scan_iter(match=keys.inflight(name, "*")))


# -- 3. Redis restarts ----------------------------------------------------------------------------------
def redis_restarts(suite, trials):
    variants = [("graceful restart", lambda r: _private_redis(suite, r, "everysec", False)),
                ("SIGKILL, fsync always", lambda r: _private_redis(suite, r, "always", True)),
                ("embedded, SIGKILL", lambda r: _embedded(suite, r, True)),
                ("embedded, SIGTERM", lambda r: _embedded(suite, r, False)),
                ("down while a worker starts", lambda r: _private_redis(suite, r, "everysec", False, True)),
                ("the reply of a take lost", lambda r: _lost_take_reply(suite, r))]
    return [run_trial(suite, "redis", *variants[i % len(variants)]) for i in range(trials)]


def _private_redis(suite, result, fsync, hard, starting=False, down=2.0):
    with CtripTrial(suite, "redis", result, fsync=fsync) as t:
        t.start()
        _random_moment(suite, t.crawl, suite.rng)
        if starting:   # kill a worker; Redis goes as its replacement starts (before it connects)
            run = t.crawl.runs["chaos_info"]
            victim = sorted(children(run.pid))[0]
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: victim not in children(run.pid) and len(children(run.pid)) >= 2,
                       timeout=20, interval=0.01, message="the replacement worker")
        (t.server.kill if hard else t.server.stop)()
        time.sleep(down)
        t.server.start()
        back = time.monotonic()
        t.crawl.close()
        _recover(t, result, 60, time.monotonic() - back)
        t.finish()
        _redis_logs(t, result)
        t.check()


def _lost_take_reply(suite, result):
    """Redis runs a take but its reply never arrives (as when it shuts down right after)."""
    with CtripTrial(suite, "redis", result) as t:
        proxy = ReplyDropper(t.server.port)
        try:
            t.crawl.redis_url = proxy.url
            t.start()
            _random_moment(suite, t.crawl, suite.rng)
            proxy.arm()
            wait_until(lambda: proxy.dropped.is_set() or not t.crawl.alive(), timeout=60,
                       message="a take to lose")
            if not proxy.dropped.is_set():
                result.notes.append("no take was lost: the crawl had ended")
            t.finish(timeout=30 + 2 * suite.expected_seconds())
            t.check()
        finally:
            t.crawl.close()
            proxy.stop()


def _recover(t, result, timeout, ended=0.0):
    """Record how long until pages are done again (`ended` if no run is left to do them)."""
    if not t.crawl.alive():
        return result.recovered(ended)
    try:
        result.recovered(t.crawl.wait_progress(timeout=timeout))
    except AssertionError:
        result.problems.append("no page done within %.0fs after the fault ended" % timeout)


def _redis_logs(t, result):
    logs = t.crawl.logs()
    if "Redis unreachable" not in logs:
        result.problems.append("no worker logged that Redis was unreachable")
    crashed = [l for l in logs.splitlines() if "exited with" in l and "exited with -9" not in l]
    if crashed:
        result.problems.append("a worker crashed: %s" % crashed[0].strip()[:200])


def _line(text, needle):
    return next((l.strip() for l in text.splitlines() if needle in l), "")[:200]


def _embedded(suite, result, hard, down=3.0):
    """The runs use the embedded Redis of their folder; kill it, then let the next command start it."""
    if embedded.answers("redis://127.0.0.1:6379"):
        result.notes.append("skipped: a Redis answers at 127.0.0.1:6379, so `run` would not use the embedded one")
        return
    with CtripTrial(suite, "redis", result) as t:
        t.crawl.redis_flag = False    # no --redis: the embedded default of the trial folder
        t.start()
        url = wait_until(lambda: embedded._running_url(embedded.home(t.folder)), timeout=30,
                         message="the embedded Redis")
        t.crawl.redis_url = url
        try:
            _random_moment(suite, t.crawl, suite.rng)
            pid = embedded.pid(base=t.folder)
            os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
            wait_until(lambda: not os.path.exists("/proc/%d" % pid), timeout=10, message="Redis gone")
            time.sleep(down)
            alive = sorted(t.crawl.alive())
            result.notes.append("%.0fs after the embedded Redis died: runs alive: %s; it answers again "
                                "(restarted by a run): %s" % (down, ", ".join(alive) or "none",
                                                              "yes" if embedded.answers(url) else "no"))
            code, out = t.procs.run(["stat", "chaos_info"], t.crawl.env, "stat", timeout=60)
            back = time.monotonic()
            if code != 0:
                result.problems.append("the next command (stat) failed: %s" % out.strip()[-200:])
            t.crawl.close()
            _recover(t, result, 60, time.monotonic() - back)
            t.finish()
            _redis_logs(t, result)
            t.check()
        finally:
            t.crawl.close()
            embedded.stop(base=t.folder)


# -- 4. the store -------------------------------------------------------------------------------------
def store_faults(suite, trials, lock_seconds=33.0):
    variants = [("locked past the busy timeout", lambda r: _store_locked(suite, r, lock_seconds)),
                ("store unopenable, a worker restarts", lambda r: _store_unopenable(suite, r)),
                ("MongoDB unreachable at start", lambda r: _mongo_refused(suite, r))]
    return [run_trial(suite, "store", variants[i % len(variants)][0], variants[i % len(variants)][1])
            for i in range(trials)]


def _store_locked(suite, result, hold):
    with CtripTrial(suite, "store", result) as t:
        t.start()
        _random_moment(suite, t.crawl, suite.rng, share=0.5)
        lock = sqlite3.connect(t.store_path, timeout=5, isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            time.sleep(hold)
            lock.execute("ROLLBACK")
        finally:
            lock.close()
        _recover(t, result, 90)
        t.finish()
        _store_logs(t, result, expect_errors=hold > 30)
        t.check()


def _store_logs(t, result, expect_errors=True):
    errors = sum(int(t.crawl.redis.hget(keys.stats(n), "store_errors") or 0) for n, _ in t.crawl.spiders)
    logged = "stay safe in the backlog" in t.crawl.logs()
    result.notes.append("store_errors %d, logged %s" % (errors, logged))
    if expect_errors and not (errors and logged):
        result.problems.append("the store failure was not counted and logged (store_errors %d, logged %s)"
                               % (errors, logged))


def _store_unopenable(suite, result, hold=6.0):
    """The store cannot be opened for a while (read-only, or - for root, whom chmod does not stop -
    not a database any more), and a worker restarts meanwhile: it must not take the run down."""
    with CtripTrial(suite, "store", result) as t:
        t.start()
        _random_moment(suite, t.crawl, suite.rng, share=0.2)
        files = [t.store_path + s for s in ("", "-wal", "-shm")]
        root = os.geteuid() == 0
        try:
            if root:   # live connections keep their files open; a new one finds garbage
                for path in files:
                    _rename(path, path + ".aside")
                with open(t.store_path, "wb") as f:
                    f.write(b"this is not an SQLite database\n" * 64)
            else:
                for path in files:
                    _chmod(path, stat.S_IRUSR)
            victims = t.crawl.workers("chaos_info")
            if victims:
                os.kill(sorted(victims)[0], signal.SIGKILL)   # its replacement opens the store now
            time.sleep(hold)
        finally:
            if root:
                for path in files:
                    _rename(path + ".aside", path)
            else:
                for path in files:
                    _chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        logs = t.crawl.logs()
        said = _line(logs, "cannot be opened") or _line(logs, "stay safe")
        result.notes.append("%s: %s" % ("not a database" if root else "read-only", said or "nothing logged"))
        if not said:
            result.problems.append("the unusable store was not reported in the log")
        _recover(t, result, 90)
        t.finish()
        t.check()


def _rename(src, dst):
    try:
        os.replace(src, dst)
    except FileNotFoundError:
        pass


def _chmod(path, mode):
    try:
        os.chmod(path, mode)
    except FileNotFoundError:
        pass  # the -wal and -shm files come and go with connections


def _mongo_refused(suite, result):
    folder = suite.folder("store")
    procs = Processes(folder)
    server = ChaosRedis(suite.redis_port, folder).start()
    try:
        uri = "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=500" % free_port()
        started = time.monotonic()
        code, out = procs.run(["run", "tests.chaos.spiders:ChaosCity", "--redis",
                               "redis://127.0.0.1:%d" % suite.redis_port, "--mongo-uri", uri],
                              cli_env(), "mongo", timeout=30)
        result.recovered(time.monotonic() - started)
        errors = [l for l in out.splitlines() if "microspider: error:" in l]
        if code != 2 or len(errors) != 1 or "Traceback" in out:
            result.problems.append("an unreachable MongoDB: exit %s, output %r (want exit 2, one line)"
                                   % (code, out[-300:]))
        touched = server.client().keys("*")
        if touched:
            result.problems.append("the refused run wrote to Redis: %s" % touched[:5])
    finally:
        procs.end_all()
        server.kill()


# -- 5. poison: pages whose parse kills or hangs its worker ---------------------------------------
POISONS = ("exit", "segv", "spin")


def poison(suite, trials):
    return [run_trial(suite, "poison", "poison #%d" % (i + 1), lambda r: _poison(suite, r))
            for i in range(trials)]


def _poison(suite, result):
    """Three good hotels whose parse exits, segfaults, or spins: the crawl still ends by itself."""
    t = CtripTrial(suite, "poison", result)
    catalog = t.site.catalog
    good = [i for i in range(catalog.size) if i not in catalog.broken]
    for index, kind in zip(suite.rng.sample(good, len(POISONS)), POISONS):
        t.poisoned[catalog.hotel_id(index)] = kind
    with t:
        t.crawl.start(t.WORKERS, extra=["--parse-timeout", "2", "--max-crashes", "2"])
        t.finish()
        t.check()
        store = open_store("sqlite:///" + t.store_path, "microspiders", "chaos_info")
        try:
            errors = {d["url"].rsplit("/", 1)[1].split(".")[0]: d["error"] for d in store.iter_failures()}
        finally:
            store.close()
    want = {"exit": "WorkerCrashed", "segv": "WorkerCrashed", "spin": "ParseTimeout"}
    for hotel, kind in t.poisoned.items():
        if errors.get(hotel) != want[kind]:
            result.problems.append("poisoned hotel %s (%s): stored as %s, want %s"
                                   % (hotel, kind, errors.get(hotel), want[kind]))
    result.name += " (%s)" % ", ".join("%s %s" % (k, h) for h, k in t.poisoned.items())
