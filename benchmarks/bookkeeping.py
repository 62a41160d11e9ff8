"""CPU per seed of what the worker does around a fetch and a parse, each part alone.

``python -m benchmarks.bookkeeping [--n 100000] [--rounds 5]``

- decode: ``Seed.from_json`` of a queued seed;
- cache key: ``Seed.cache_key`` of a fresh seed (SHA-1 of the canonical URL);
- monitor: the S, P and D lines of one seed through a real pipe that a child
  process drains (the supervisor's place), as the worker says them (D rides on
  the next S), beside one write per line (0.2);
- outcome: a Batch of 64 ``Parsed`` records saved to a store that keeps
  nothing, then turned into an Outcome.

Each figure is the median of the rounds, in microseconds of this process's
CPU (``time.process_time``) per seed; no Redis, no network.  Read them beside
``benchmarks.run``'s CPU ms/page: they say which parts are worth working on.
"""
import argparse
import os
import statistics
import subprocess
import time


def seeds(n):
    from microspider.seed import Seed

    return [Seed("http://127.0.0.1:8080/p/%d.html?sort=price&page=%d" % (i, i % 50)) for i in range(n)]


def decode(n):
    from microspider.seed import Seed

    raws = [s.to_json().encode() for s in seeds(n)]
    return _cpu(lambda: [Seed.from_json(raw) for raw in raws], n)


def cache_key(n):
    fresh = seeds(n)
    return _cpu(lambda: [s.cache_key for s in fresh], n)


def monitor(n, joined=True):
    from microspider.crawl.worker import Monitor

    fingerprints = [s.fingerprint for s in seeds(n)]
    read, write = os.pipe()
    drain = subprocess.Popen(["cat"], stdin=read, stdout=subprocess.DEVNULL)
    os.close(read)
    m = Monitor(write)

    def say_all():
        for fp in fingerprints:
            if joined:
                m.start(fp), m.parsing(fp), m.done(fp)
            else:
                m._say("S " + fp), m._say("P " + fp), m._say("D " + fp)
        m.flush()

    try:
        return _cpu(say_all, n)
    finally:
        os.close(write)
        drain.wait()


class _NoStore:
    def save_items(self, items):
        pass

    save_failures = remove_failures = save_items


def outcome(n):
    from microspider.config import Settings
    from microspider.crawl.outcome import Batch, Parsed

    settings, pages = Settings(), seeds(64)
    raws = [s.to_json() for s in pages]
    for s in pages:
        s.cache_key   # computed by the feeder's cache check before a record exists

    def batches():
        for _ in range(n // 64):
            batch = Batch()
            for raw, seed in zip(raws, pages):
                batch.add(Parsed(raw, seed, [], []))
            batch.save(_NoStore())
            batch.outcome("bench", True, settings, 100.0, set())

    return _cpu(batches, n // 64 * 64)


def _cpu(run, n):
    start = time.process_time()
    run()
    return (time.process_time() - start) / n * 1e6


ROWS = [("decode (Seed.from_json)", decode), ("cache key (Seed.cache_key)", cache_key),
        ("monitor lines, D joined (0.3)", monitor),
        ("monitor lines, one write each (0.2)", lambda n: monitor(n, joined=False)),
        ("records -> Outcome (64 a batch)", outcome)]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bookkeeping", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100000, help="seeds per round [default: 100000]")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating the rows [default: 5]")
    args = parser.parse_args(argv)
    found = {label: [] for label, _ in ROWS}
    for _ in range(args.rounds):
        for label, row in ROWS:
            found[label].append(row(args.n))
    print("%-38s %12s  %s" % ("part", "us CPU/seed", "(min-max)"))
    for label, values in found.items():
        print("%-38s %12.2f  (%.2f-%.2f)" % (label, statistics.median(values), min(values), max(values)))


if __name__ == "__main__":
    main()
