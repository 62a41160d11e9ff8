"""What priority levels cost a take, on a private redis-server.

``python -m benchmarks.priority [--n 200000] [--batch 200] [--repeat 3]``

N seeds are pushed (``SpiderState.push``), then taken by ``SpiderState.take``
in batches of ``--batch`` (a worker's take: 2 x --pool) until the queue is
empty; seeds/s of the takes, in three shapes:

- ``before``: the take of 0.3 (one list, a plain LPOP script), for reference;
- ``one level``: every seed at priority 0 (the take scans an empty set of levels);
- ``3 levels``: seeds at priorities 10, 0 and -10 in turn (each take pops the
  highest level, moves on when it runs dry, drops emptied levels).

Beside the client's seeds/s (round trips included, moved by any other load on
the machine) it reports Redis's own time per call (``INFO commandstats``): µs
per take and per push of 1,000 seeds.  Pushes are timed too (seeds/s of ``push_raw`` in batches of 1,000: the level
routing is in the push script; ``before`` is a plain RPUSH).  Each figure is the
median of ``--repeat`` rounds.  It prints a table and asserts nothing.
"""
import argparse
import time

from microspider.seed import Seed

OLD_TAKE = """
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {} end
for i = 1, #items, 2000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 1999, #items)))
end
return items
"""
PUSH_BATCH = 1000


def seeds(n, levels):
    return [Seed("http://127.0.0.1:8080/p/%d.html" % i, priority=levels[i % len(levels)]) for i in range(n)]


def push(state, batch):
    raws = [s.to_json() for s in batch]     # encoded first: only the push is timed
    started = time.perf_counter()
    for start in range(0, len(raws), PUSH_BATCH):
        state.push_raw(raws[start:start + PUSH_BATCH])
    return len(raws) / (time.perf_counter() - started)


def take_all(take, batch):
    n, started = 0, time.perf_counter()
    while True:
        got = take(batch)
        if not got:
            return n, n / (time.perf_counter() - started)
        n += len(got)


def server_us(client, command):
    """Redis's own µs per call of `command` since the last CONFIG RESETSTAT."""
    return client.info("commandstats").get("cmdstat_" + command, {}).get("usec_per_call", 0.0)


def measure(state, client, n, batch):
    from microspider.state import keys

    rows = []
    client.flushall()
    client.config_resetstat()
    raws = [s.to_json() for s in seeds(n, [0])]
    started = time.perf_counter()
    for start in range(0, n, PUSH_BATCH):
        client.rpush(keys.work(state.name), *raws[start:start + PUSH_BATCH])
    pushed = n / (time.perf_counter() - started)
    push_us = server_us(client, "rpush")
    client.config_resetstat()
    old = client.register_script(OLD_TAKE)
    inflight = keys.inflight(state.name, "w")

    def old_take(k):
        got = old(keys=[keys.work(state.name), inflight], args=[k])
        client.delete(inflight)     # acknowledged at once: only the take is timed
        return got
    taken, rate = take_all(old_take, batch)
    rows.append(("before (one list, LPOP)", pushed, push_us, taken, rate, server_us(client, "evalsha")))
    for label, levels in (("one level (0)", [0]), ("3 levels (10, 0, -10)", [10, 0, -10])):
        client.flushall()
        client.config_resetstat()
        pushed = push(state, seeds(n, levels))
        push_us = server_us(client, "eval")
        client.config_resetstat()

        def new_take(k):
            got = state.take("w", k)
            client.delete(inflight)
            return got
        taken, rate = take_all(new_take, batch)
        rows.append((label, pushed, push_us, taken, rate, server_us(client, "evalsha")))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from microspider.state import Redis, SpiderState
    from tests.servers import RedisServer

    server = RedisServer().start()
    try:
        conn = Redis(server.url)
        rounds = [measure(SpiderState(conn, "bench_priority"), conn.work, args.n, args.batch)
                  for _ in range(args.repeat)]
        conn.close()
    finally:
        server.cleanup()
    rows = [(row[0],) + tuple(_median([r[i][k] for r in rounds]) for k in range(1, len(row)))
            for i, row in enumerate(rounds[0])]
    _print(rows, args)


def _median(values):
    return sorted(values)[len(values) // 2]


def _print(rows, args):
    print("%-24s %13s %15s %8s %13s %12s" % ("queue", "push seeds/s", "µs/push of 1000", "taken",
                                             "take seeds/s", "µs/take"))
    for label, pushed, push_us, taken, rate, take_us in rows:
        print("%-24s %13.0f %15.1f %8d %13.0f %12.1f" % (label, pushed, push_us, taken, rate, take_us))
    print("(%d seeds, takes of %d, median of %d rounds, one redis-server, this machine)"
          % (args.n, args.batch, args.repeat))


if __name__ == "__main__":
    main()
