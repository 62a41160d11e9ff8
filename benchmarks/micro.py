"""Micro-benchmarks of the parts that must scale, on a private redis-server.

``python -m benchmarks.micro [--n 1000000]``

- relay: seeds/s moved from an N-seed backlog, all due (``Relay.move_due``).
- stat: ``microspider stat --json`` on an N-seed work queue: the CLI as a
  subprocess (wall time, start-up included; also on an empty queue, for
  comparison) and the library call ``ops.stats.stat`` alone.
- dump: ``microspider dump -o`` of the N seeds to a pipe: seeds/s and the peak
  RSS of the dump process (VmHWM), also for N/100 seeds: bounded memory means
  the two peaks are about equal.
- cache: Redis bytes per cached fingerprint: ``INFO memory`` ``used_memory``
  before and after ``Cache.add`` of N 12-byte keys (``Seed(url).cache_key``),
  1,000 per call, as the engine writes them (``benchmarks.cache_memory`` has the
  fuller comparison).
It prints a table, writes ``benchmarks/out/micro.json``, and says which targets
of issue 7 are met (it asserts nothing).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.measure import _hwm_kb
from benchmarks.servers import REPO

OUT = os.path.join(REPO, "benchmarks", "out", "micro.json")
NAME = "bench_micro"
BATCH = 10000


def make_seeds(n):
    """N seeds' (JSON, cache key), as the engine writes them."""
    from microspider.seed import Seed

    out = []
    for i in range(n):
        seed = Seed("http://127.0.0.1:8080/p/%d.html" % i)
        out.append((seed.to_json(), seed.cache_key))
    return out


def _fill(client, key, raws, kind):
    for start in range(0, len(raws), BATCH):
        chunk = raws[start:start + BATCH]
        if kind == "list":
            client.rpush(key, *chunk)
        elif kind == "zset":
            client.zadd(key, {raw: 0 for raw in chunk})   # score 0: due long ago
        else:
            client.sadd(key, *chunk)


def relay(redis, client, raws):
    """Seeds/s that Relay.move_due moves from an all-due backlog of len(raws)."""
    from microspider.state import keys
    from microspider.crawl.relay import Relay
    from microspider.state import SpiderState

    client.flushall()
    _fill(client, keys.backlog(NAME), raws, "zset")
    started = time.perf_counter()
    moved = Relay(SpiderState(redis, NAME)).move_due()
    seconds = time.perf_counter() - started
    assert moved == len(raws) == client.llen(keys.work(NAME)), (moved, len(raws))
    return {"seeds": moved, "seconds": seconds, "seeds_per_s": moved / seconds}


def stat(redis, client, redis_url, workdir, n):
    """Latency of stat on the N-seed work queue (the relay left it there)."""
    from microspider.ops import stats
    from microspider.state import keys
    from microspider.store import open_store

    client.sadd(keys.SPIDERS, NAME)
    client.hset(keys.meta(NAME), "relay_mode", 0)
    assert client.llen(keys.work(NAME)) == n
    uri = "sqlite:///" + os.path.join(workdir, "store.sqlite3")
    store = open_store(uri, "microspiders", NAME)
    started = time.perf_counter()
    found = stats.stat(redis, store, NAME)
    library = time.perf_counter() - started
    store.close()
    assert found["work"] == n, found
    cli = _cli_seconds(["stat", "--json", NAME, "--redis", redis_url, "--mongo-uri", uri])
    client.sadd(keys.SPIDERS, "bench_empty")
    empty = _cli_seconds(["stat", "--json", "bench_empty", "--redis", redis_url, "--mongo-uri", uri])
    return {"library_s": library, "cli_s": cli, "cli_empty_queue_s": empty}


def _cli_seconds(args):
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "microspider"] + args, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    return time.perf_counter() - started


def dump(client, redis_url, raws):
    """`microspider dump -o` of the work queue: seeds/s and peak RSS (MB)."""
    from microspider.state import keys

    client.flushall()
    _fill(client, keys.work(NAME), raws, "list")
    client.sadd(keys.SPIDERS, NAME)
    cmd = [sys.executable, "-m", "microspider", "dump", "-o", NAME, "--redis", redis_url]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    peak = [0]

    def watch():
        while proc.poll() is None:
            peak[0] = max(peak[0], _hwm_kb(proc.pid) or 0)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    lines = 0
    for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
        lines += chunk.count(b"\n")
    err = proc.stderr.read()
    proc.wait()
    seconds = time.perf_counter() - started
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError("dump failed: %s" % err.decode(errors="replace")[-500:])
    assert lines == len(raws), (lines, len(raws))
    return {"seeds": lines, "seconds": seconds, "seeds_per_s": lines / seconds,
            "peak_rss_mb": peak[0] / 1024.0}


def cache_memory(client, cache_keys):
    """Bytes of Redis memory per cached fingerprint."""
    from microspider.state import keys

    from microspider.state.cache import Cache

    client.flushall()
    cache = Cache(client, NAME)
    before = client.info("memory")
    for start in range(0, len(cache_keys), 1000):
        cache.add(cache_keys[start:start + 1000])
    after = client.info("memory")
    assert cache.size() == len(cache_keys)
    return {"keys": len(cache_keys), "bytes_per_key": (after["used_memory"] - before["used_memory"])
            / len(cache_keys), "allocator": after.get("mem_allocator"),
            "encoding": client.object("encoding", next(client.scan_iter(match=keys.cache_bucket(NAME, "*")))
                                      ).decode()}


def benchmark(n, say=print):
    from microspider.state import Redis
    from tests.servers import RedisServer

    import redis as redislib

    say("making %d seeds ..." % n)
    seeds = make_seeds(n)
    raws = [raw for raw, _ in seeds]
    server = RedisServer().start()
    workdir = tempfile.mkdtemp(prefix="ms-micro-")
    client = redislib.Redis.from_url(server.url)
    redis = Redis(server.url)
    try:
        version = client.info("server")["redis_version"]
        say("relay ...")
        report = {"n": n, "redis": version, "relay": relay(redis, client, raws)}
        say("stat ...")
        report["stat"] = stat(redis, client, server.url, workdir, n)
        say("dump ...")
        report["dump"] = dump(client, server.url, raws)
        report["dump_small"] = dump(client, server.url, raws[:max(n // 100, 1)])
        say("cache memory ...")
        report["cache"] = cache_memory(client, [key for _, key in seeds])
    finally:
        client.close()
        redis.close()
        server.cleanup()
    report["targets"] = targets(report)
    return report


def targets(r):
    n = r["n"]
    return [
        {"target": "relay >= 50,000 seeds/s", "measured": "%.0f seeds/s" % r["relay"]["seeds_per_s"],
         "met": r["relay"]["seeds_per_s"] >= 50000},
        {"target": "stat < 1 s on a %d-seed queue (CLI, start-up included)" % n,
         "measured": "%.2f s" % r["stat"]["cli_s"], "met": r["stat"]["cli_s"] < 1.0},
        {"target": "dump of %d seeds with bounded memory" % n,
         "measured": "peak RSS %.0f MB (%.0f MB for %d seeds)" % (
             r["dump"]["peak_rss_mb"], r["dump_small"]["peak_rss_mb"], r["dump_small"]["seeds"]),
         "met": r["dump"]["peak_rss_mb"] <= r["dump_small"]["peak_rss_mb"] * 1.2 + 5},
        {"target": "Redis <= 20 bytes per cached fingerprint (issue 12: from 100,000 up)",
         "measured": "%.1f bytes" % r["cache"]["bytes_per_key"], "met": r["cache"]["bytes_per_key"] <= 20},
    ]


def table(r):
    lines = [
        "microspider micro-benchmarks: N = %d seeds, redis-server %s (%s malloc)"
        % (r["n"], r["redis"], r["cache"]["allocator"]),
        "  relay       %9.0f seeds/s   (%d seeds in %.2f s, Relay.move_due, all due)"
        % (r["relay"]["seeds_per_s"], r["relay"]["seeds"], r["relay"]["seconds"]),
        "  stat        %9.3f s CLI     (library ops.stat %.3f s; CLI on an empty queue %.3f s)"
        % (r["stat"]["cli_s"], r["stat"]["library_s"], r["stat"]["cli_empty_queue_s"]),
        "  dump        %9.0f seeds/s   peak RSS %.0f MB (for %d seeds: %.0f MB)"
        % (r["dump"]["seeds_per_s"], r["dump"]["peak_rss_mb"], r["dump_small"]["seeds"],
           r["dump_small"]["peak_rss_mb"]),
        "  cache       %9.1f bytes per cached fingerprint (%d keys, bucket encoding %s)"
        % (r["cache"]["bytes_per_key"], r["cache"]["keys"], r["cache"]["encoding"]),
        "", "targets (issue 7):"]
    lines += ["  [%s] %s: %s" % ("met " if t["met"] else "MISS", t["target"], t["measured"])
              for t in r["targets"]]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.micro",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000000, help="seeds [default: 1000000]")
    parser.add_argument("--out", default=OUT, help="JSON report [default: benchmarks/out/micro.json]")
    args = parser.parse_args(argv)
    report = benchmark(args.n, say=lambda line: print(line, file=sys.stderr, flush=True))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
