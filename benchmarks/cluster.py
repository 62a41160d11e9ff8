"""The same crawl on one Redis server and on a Redis Cluster, with and without replica-confirmed
acknowledgement: pages/s, Redis round trips per seed, and what one master spends per seed.

    python -m benchmarks.cluster [--pages 10000] [--concurrency 64] [--rounds 3] [--workers 2] [--send]

Reuses the harness of ``benchmarks.run`` (the site, nginx or the Python server,
the exactly-once check, the CPU watch).  Contenders, alternating each round:

- ``single``: ``microspider run -w 2`` against one private redis-server;
- ``cluster``: the same against a 3-master + 3-replica cluster (``tests/cluster.py``),
  with replica-confirmed acknowledgement (the default);
- ``cluster_nowait``: the same with ``--no-wait-replica``.

With ``--send`` the spider (``benchmarks/sendspider.py``) also sends one seed per
page to another spider, whose slot is on another master: every batch then makes
a confirmed write there (one more round trip per batch, and a WAIT for the
replica unless ``--no-wait-replica``).  Without it no batch writes outside its
own slot, so ``cluster`` and ``cluster_nowait`` do the same work.

Round trips per seed = ``total_reads_processed`` summed over the masters
(replicas' acknowledgements of WAIT land there too, so this is an upper bound)
per page.  One spider lives on one slot, so on one master: ``master CPU ms/seed``
is that master's CPU per page, and 1000 / it is the seeds/s at which that one
Redis thread would be saturated by this spider alone.
"""
import argparse
import json
import os
import shutil
import statistics
import tempfile

from benchmarks import ceiling, contenders
from benchmarks.run import run_once
from benchmarks.servers import REPO, open_server

OUT = os.path.join(REPO, "benchmarks", "out", "cluster.json")
SUMMED = ("used_cpu_user", "used_cpu_sys", "total_reads_processed", "total_commands_processed",
          "used_memory")


class ClusterClient:
    """A cluster client that answers flushall and INFO for the whole cluster (its masters)."""

    def __init__(self, cluster):
        from redis.cluster import RedisCluster

        self.cluster = cluster
        self.rc = RedisCluster(host="127.0.0.1", port=cluster.live()[0].port)

    def flushall(self):
        self.cluster.flush()

    def info(self, section="all"):
        total = dict.fromkeys(SUMMED, 0.0)
        for node in self.cluster.masters():
            with node.client() as c:
                info = c.info(section)
            for k in SUMMED:
                total[k] += float(info.get(k, 0))
        return total

    def __getattr__(self, name):
        return getattr(self.rc, name)

    def close(self):
        self.rc.close()


class ClusterContext(contenders.Context):
    def __init__(self, base, pages, concurrency, workdir, cluster):
        super().__init__(base, pages, concurrency, workdir, cluster.url)
        self.cluster = cluster

    def redis(self):
        return ClusterClient(self.cluster)


class OnOne(contenders.Microspider):
    """microspider -w N on one server, with the link spider or the send spider."""

    def __init__(self, workers, send):
        super().__init__(workers)
        self.send = send
        self.name, self.label = "single", "one server -w %d" % workers

    def command(self, ctx, round_no):
        args = super().command(ctx, round_no)
        if self.send:
            args[args.index(os.path.join(contenders.HERE, "linkspider.py"))] = os.path.join(
                contenders.HERE, "sendspider.py")
        return args


class OnCluster(OnOne):
    def __init__(self, workers, send, wait):
        super().__init__(workers, send)
        self.wait = wait
        self.name = "cluster" if wait else "cluster_nowait"
        self.label = "cluster -w %d%s" % (workers, "" if wait else " --no-wait-replica")

    def command(self, ctx, round_no):
        return super().command(ctx, round_no) + ([] if self.wait else ["--no-wait-replica"])


def master_cpu(cluster, spider):
    """CPU seconds so far of the master that holds `spider`'s slot."""
    from microspider.state import keys

    node = cluster.master_of(keys.work(spider))
    with node.client() as c:
        info = c.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def benchmark(pages, concurrency, rounds, workers, send=False, say=print):
    from tests.cluster import Cluster
    from tests.servers import RedisServer

    workdir = tempfile.mkdtemp(prefix="ms-bench-cluster-")
    server = open_server(None, workdir, pages)
    single = cluster = None
    try:
        server.start()
        rps, how = ceiling.measure(server.url, pages, connections=concurrency, seconds=3)
        say("server: %s; its ceiling %.0f pages/s (%s)" % (server.url, rps, how))
        server.reset()
        single = RedisServer().start()
        cluster = Cluster().start()
        say("cluster: %s (3 masters + 3 replicas)" % cluster.url)
        plain = contenders.Context(server.url, pages, concurrency, workdir, single.url)
        on_cluster = ClusterContext(server.url, pages, concurrency, workdir, cluster)
        chosen = [(OnOne(workers, send), plain), (OnCluster(workers, send, True), on_cluster),
                  (OnCluster(workers, send, False), on_cluster)]
        runs = {c.name: [] for c, _ in chosen}
        for round_no in range(1, rounds + 1):
            for contender, ctx in chosen[round_no - 1:] + chosen[:round_no - 1]:
                cpu0 = master_cpu(cluster, contenders.SPIDER) if ctx is on_cluster else None
                result = run_once(contender, ctx, server, round_no)
                if cpu0 is not None:
                    spent = master_cpu(cluster, contenders.SPIDER) - cpu0
                    result["master_cpu_ms_per_seed"] = 1000.0 * spent / pages
                else:
                    result["master_cpu_ms_per_seed"] = result["redis_cpu_ms_per_page"]
                runs[contender.name].append(result)
                say("  round %d %-15s %7.0f pages/s  %.3f round trips/seed  master %.3f CPU ms/seed" % (
                    round_no, contender.name, result["pages_per_s"], result["redis_round_trips_per_seed"],
                    result["master_cpu_ms_per_seed"]))
        return report(runs, pages, concurrency, workers, send)
    finally:
        server.stop()
        if single:
            single.cleanup()
        if cluster:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def report(runs, pages, concurrency, workers, send):
    rows = {}
    for name, rs in runs.items():
        rows[name] = {k: statistics.median(r[k] for r in rs) for k in
                      ("pages_per_s", "redis_round_trips_per_seed", "master_cpu_ms_per_seed")}
        rows[name]["seeds_per_s_one_master"] = 1000.0 / rows[name]["master_cpu_ms_per_seed"]
    base = rows["single"]["pages_per_s"]
    for row in rows.values():
        row["x_single"] = row["pages_per_s"] / base
    return {"pages": pages, "concurrency": concurrency, "workers": workers, "send": send, "rows": rows}


def table(rep):
    lines = ["%-15s %10s %9s %17s %18s %22s" % ("", "pages/s", "x single", "round trips/seed",
                                               "master CPU ms/seed", "one master: seeds/s")]
    for name, r in rep["rows"].items():
        lines.append("%-15s %10.0f %9.2f %17.3f %18.3f %22.0f" % (
            name, r["pages_per_s"], r["x_single"], r["redis_round_trips_per_seed"],
            r["master_cpu_ms_per_seed"], r["seeds_per_s_one_master"]))
    return "\n".join(lines)


def crawl_parser(prog, doc, out):
    """The options every Redis-topology benchmark takes: --pages --concurrency --rounds --workers --out."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    parser.add_argument("--pages", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=out)
    return parser


def save(rep, args, text, extra=""):
    """Print the medians' table and write the report as JSON to args.out."""
    print()
    print("medians of %d rounds, %d pages, -w %d, --pool %d%s" % (
        args.rounds, args.pages, args.workers, args.concurrency, extra))
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(rep, f, indent=1)


def main(argv=None):
    parser = crawl_parser("python -m benchmarks.cluster", __doc__, OUT)
    parser.add_argument("--send", action="store_true",
                        help="one seed sent per page to a spider on another master")
    args = parser.parse_args(argv)
    rep = benchmark(args.pages, args.concurrency, args.rounds, args.workers, args.send)
    save(rep, args, table(rep), ", one send per page" if args.send else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
