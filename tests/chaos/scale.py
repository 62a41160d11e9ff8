"""Trial kind 7: clock and scale - 100,000 backlog seeds, four relays at once, each seed moved once.

The backlog holds seeds of mixed ages and due times: due ones, waiting ones,
parked ones (+inf: over max-age) and parked ones whose age a larger max-age
now admits (``unpark`` gives them a due time).  Four processes start together
at one wall-clock instant and each runs ``Relay.move_due`` with the same
injected ``now``; the first runs ``Relay.unpark`` before, as a starting ``run`` does.  Afterwards the work queue must hold exactly
the seeds that were due, each once, and the backlog exactly the others: none
lost, none moved twice.  Run with the backlog in the work queue's db (one Lua
script per batch) and in another db (copy under a lock, then delete).

Also ``python -m tests.chaos.scale URL NAME WORK_DB BACKLOG_DB NOW START UNPARK`` - one relay process.
"""
import collections
import json
import os
import subprocess
import sys
import time

from microspider.ops import stats as status

from microspider.state import keys
from microspider.crawl.relay import backlog_score
from tests.chaos.harness import ChaosRedis, Roles
from tests.chaos.trial import run_trial
from tests.crawl import ROOT, cli_env

NAME = "chaos_relay"
MAX_AGE = 5
RELAYS = 4


def relay_scale(suite, trials):
    size = 10_000 if suite.quick else 100_000
    variants = [("one db (Lua)", 0), ("backlog in db 1 (lock)", 1)]
    return [run_trial(suite, "scale", "%d seeds, %s" % (size, variants[i % 2][0]),
                      lambda r, db=variants[i % 2][1]: _relay_scale(suite, r, size, db))
            for i in range(trials)]


def _relay_scale(suite, result, size, backlog_db):
    folder = suite.folder("scale")
    server = ChaosRedis(suite.redis_port, folder).start()
    procs = []
    try:
        work, backlog = server.client(), _client(server, backlog_db)
        now = time.time()
        due, stays = _fill(backlog, size, now, suite.rng)
        result.seeds = size
        _check_counts(result, work, backlog, backlog_db, now, size)
        start = time.time() + 1.5            # every relay starts at this instant
        args = [server.url, NAME, "0", str(backlog_db), repr(now), repr(start)]
        # only the first also unparks, as one `run` starting while others relay: one pass must do
        procs = [subprocess.Popen([sys.executable, "-m", "tests.chaos.scale"] + args + [str(int(i == 0))],
                                  cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, start_new_session=True) for i in range(RELAYS)]
        outs = [p.communicate(timeout=300)[0] for p in procs]
        moved = [json.loads(o.strip().splitlines()[-1]) if p.returncode == 0 else None
                 for p, o in zip(procs, outs)]
        for p, o in zip(procs, outs):
            if p.returncode != 0:
                result.problems.append("a relay process failed: %s" % o.strip()[-300:])
        result.recovered(max((m["seconds"] for m in moved if m), default=0.0))
        _account(result, work, backlog, due, stays, moved)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
        server.kill()


def _client(server, db):
    import redis

    return redis.Redis(port=server.port, db=db, socket_timeout=60)


def _fill(backlog, size, now, rng):
    """Fill the backlog; returns (raws due after unparking, {raw: final score} of those that stay)."""
    due, stays = [], {}
    pipe = backlog.pipeline(transaction=False)
    for i in range(size):
        age = rng.randint(0, 8)
        raw = json.dumps({"v": 1, "url": "http://127.0.0.1:9/s/%d" % i, "age": age}, separators=(",", ":"))
        kind = rng.random()
        if age > MAX_AGE:
            score = float("inf")                              # parked over max-age: stays
            stays[raw] = score
        elif kind < 0.1:
            score = float("inf")                              # parked by an older, smaller max-age:
            after = backlog_score(age, MAX_AGE, 1.0, now)     # unpark gives it a due time
            if after <= now:
                due.append(raw)
            else:
                stays[raw] = after
        elif kind < 0.6:
            score = now - rng.uniform(0, 3600)                # due
            due.append(raw)
        else:
            score = now + rng.uniform(0.001, 3600)            # waiting
            stays[raw] = score
        pipe.zadd(keys.backlog(NAME), {raw: score})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return due, stays


def _check_counts(result, work, backlog, backlog_db, now, size):
    """`stat`'s due / waiting / over-age split agrees with the scores written."""
    scores = [s for _, s in backlog.zrange(keys.backlog(NAME), 0, -1, withscores=True)]
    want = {"backlog": size, "backlog_due": sum(1 for s in scores if s <= now),
            "backlog_waiting": sum(1 for s in scores if now < s < float("inf")),
            "backlog_over_age": sum(1 for s in scores if s == float("inf"))}
    c = status.counts(Roles(work, backlog if backlog_db else None), NAME, now=now)
    got = {k: c[k] for k in want}
    if got != want:
        result.problems.append("stat counts %s, want %s" % (got, want))


def _account(result, work, backlog, due, stays, moved):
    queued = collections.Counter(work.lrange(keys.work(NAME), 0, -1))
    left = dict(backlog.zrange(keys.backlog(NAME), 0, -1, withscores=True))
    twice = sum(n - 1 for n in queued.values() if n > 1) + sum(1 for r in queued if r in left)
    lost = [r for r in due if r.encode() not in queued] + [r for r in stays if r.encode() not in left]
    due_set = set(due)
    wrong = [r for r in queued if r.decode() not in due_set]
    result.lost += len(lost)
    result.duplicated += twice
    if twice:
        result.problems.append("%d seeds moved more than once" % twice)
    if wrong:
        result.problems.append("%d seeds moved before they were due" % len(wrong))
    off = [r for r, s in stays.items() if s != float("inf") and abs(left.get(r.encode(), s) - s) > 1.0]
    if off:
        result.problems.append("%d backlog scores changed unexpectedly" % len(off))
    result.notes.append("moved per relay process: %s; %d due, %d stayed"
                        % ([m and m["moved"] for m in moved], len(due), len(stays)))


def main(argv):
    """One relay process: wait for the common start instant, unpark, move what is due, print JSON."""
    from microspider.state import Redis
    from microspider.crawl.relay import Relay
    from microspider.state import SpiderState

    url, name, work_db, backlog_db, now, start, unpark = argv
    redis = Redis(url, work_db=int(work_db), backlog_db=int(backlog_db), cache_db=int(work_db))
    relay = Relay(SpiderState(redis, name), max_age=MAX_AGE, relay_delay=1.0)
    time.sleep(max(0.0, float(start) - time.time()))
    began = time.monotonic()
    unparked = relay.unpark(now=float(now)) if unpark == "1" else 0
    moved = relay.move_due(now=float(now))
    print(json.dumps({"moved": moved, "unparked": unparked, "seconds": time.monotonic() - began}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
