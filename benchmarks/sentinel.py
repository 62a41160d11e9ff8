"""The same crawl on one master reached directly and through Sentinel; and how long a master
failover stops acknowledgement.

    python -m benchmarks.sentinel [--pages 10000] [--concurrency 64] [--rounds 3] [--workers 2]
                                  [--failovers 3]

Reuses the harness of ``benchmarks.run`` (the site, the exactly-once check, the
CPU watch) on one Sentinel set of ``tests/sentinel.py`` (a master, a replica,
three sentinels).  Contenders, alternating each round, all on that one master:

- ``direct``: ``microspider run -w N --redis redis://MASTER`` (no WAIT: not behind Sentinel);
- ``sentinel``: ``--redis redis+sentinel://.../mymaster`` (every acknowledgement confirmed
  by the replica with WAIT, the default);
- ``sentinel_nowait``: the same with ``--no-wait-replica``.

Then ``--failovers`` times, on a fresh set: a crawl through Sentinel, ``kill -9``
of the master once a tenth of the pages are done, and the seconds from the kill
to the promotion (the sentinels name the replica) and to the first batch
acknowledged on the new master (its ``ok`` counter moves, polled every 5 ms).
"""
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from benchmarks import contenders
from benchmarks.cluster import crawl_parser, save
from benchmarks.run import run_once
from benchmarks.servers import REPO, open_server

OUT = os.path.join(REPO, "benchmarks", "out", "sentinel.json")


class SentinelContext(contenders.Context):
    def redis(self):
        from microspider.connection import redis_client

        return redis_client(self.redis_url)


class Through(contenders.Microspider):
    """microspider -w N reaching the master one way: direct, sentinel, sentinel_nowait."""

    def __init__(self, workers, name, extra=()):
        super().__init__(workers)
        self.name, self.extra = name, list(extra)
        self.label = "%s -w %d" % (name, workers)

    def command(self, ctx, round_no):
        return super().command(ctx, round_no) + self.extra


def throughput(server, pages, concurrency, rounds, workers, workdir, say):
    from tests.sentinel import SentinelSet

    found = SentinelSet().start()
    try:
        direct = contenders.Context(server.url, pages, concurrency, workdir,
                                    "redis://127.0.0.1:%d" % found.master_port())
        behind = SentinelContext(server.url, pages, concurrency, workdir, found.url)
        chosen = [(Through(workers, "direct"), direct), (Through(workers, "sentinel"), behind),
                  (Through(workers, "sentinel_nowait", ["--no-wait-replica"]), behind)]
        runs = {c.name: [] for c, _ in chosen}
        for round_no in range(1, rounds + 1):
            for contender, ctx in chosen[round_no - 1:] + chosen[:round_no - 1]:
                result = run_once(contender, ctx, server, round_no)
                runs[contender.name].append(result)
                say("  round %d %-16s %7.0f pages/s  %.3f round trips/seed" % (
                    round_no, contender.name, result["pages_per_s"], result["redis_round_trips_per_seed"]))
    finally:
        found.stop()
    rows = {name: {k: statistics.median(r[k] for r in rs) for k in ("pages_per_s", "redis_round_trips_per_seed")}
            for name, rs in runs.items()}
    for row in rows.values():
        row["x_direct"] = row["pages_per_s"] / rows["direct"]["pages_per_s"]
    return rows


def one_failover(server, pages, concurrency, workers, workdir):
    """(seconds to promotion, seconds to the first acknowledgement on the new master)."""
    from microspider.state import keys
    from tests.sentinel import SentinelSet
    from tests.servers import wait_until

    found = SentinelSet().start()
    proc = None
    try:
        ctx = SentinelContext(server.url, pages, concurrency, workdir, found.url)
        contender = Through(workers, "sentinel")
        contender.prepare(ctx)
        server.reset()
        with open(os.path.join(workdir, "failover.log"), "w") as log:
            proc = subprocess.Popen(contender.command(ctx, 0), cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
        stats = keys.stats(contenders.SPIDER)

        def done(port=None):
            try:
                with found.data_client(port) as c:
                    return int(c.hget(stats, "ok") or 0)
            except Exception:
                return None
        wait_until(lambda: (done() or 0) >= pages // 10, timeout=120, interval=0.05, message="a tenth done")
        new, promoted = found.failover()
        started = time.monotonic() - promoted          # the moment of the kill
        replicated = done(new.port)
        wait_until(lambda: (done(new.port) or 0) > replicated, timeout=60, interval=0.005,
                   message="a batch acknowledged on the new master")
        return promoted, time.monotonic() - started
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        found.stop()


def benchmark(pages, concurrency, rounds, workers, failovers, say=print):
    workdir = tempfile.mkdtemp(prefix="ms-bench-sentinel-")
    server = open_server(None, workdir, pages)
    try:
        server.start()
        say("server: %s" % server.url)
        rows = throughput(server, pages, concurrency, rounds, workers, workdir, say)
        times = []
        for n in range(failovers):
            promoted, acked = one_failover(server, pages, concurrency, workers, workdir)
            say("  failover %d: promoted %.2fs after the kill, first batch acknowledged %.2fs after it"
                % (n + 1, promoted, acked))
            times.append({"promoted_s": promoted, "first_ack_s": acked})
        return {"pages": pages, "concurrency": concurrency, "workers": workers, "rows": rows,
                "failovers": times}
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def table(rep):
    lines = ["%-16s %10s %9s %17s" % ("", "pages/s", "x direct", "round trips/seed")]
    for name, r in rep["rows"].items():
        lines.append("%-16s %10.0f %9.2f %17.3f" % (name, r["pages_per_s"], r["x_direct"],
                                                     r["redis_round_trips_per_seed"]))
    for n, f in enumerate(rep["failovers"], 1):
        lines.append("failover %d: promoted after %.2f s, first acknowledgement after %.2f s"
                     % (n, f["promoted_s"], f["first_ack_s"]))
    return "\n".join(lines)


def main(argv=None):
    parser = crawl_parser("python -m benchmarks.sentinel", __doc__, OUT)
    parser.add_argument("--failovers", type=int, default=3)
    args = parser.parse_args(argv)
    rep = benchmark(args.pages, args.concurrency, args.rounds, args.workers, args.failovers)
    save(rep, args, table(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
