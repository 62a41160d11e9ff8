"""Measure `--rate` accuracy: `python -m benchmarks.rate [--rate 20] [--workers 2] [--pool 50] [--seconds 20]`.

Runs `microspider run` with the given rate against a local site that records the time of every
request, and prints the observed rate over the middle `--seconds` window (start-up and the tail
excluded) and its error against the target.  Exit 1 if the error is over 10%.
"""
import argparse
import sys
import tempfile
import threading
import time

from tests.crawl import finish, start, write_spider
from tests.servers import RedisServer, Site

SPIDER = '''
class Rated(Spider):
    name = "rated"
    start_urls = ["{url}/%d" % i for i in range({n})]
    def parse(self, response, seed):
        return ()
'''


def measure(rate, workers, pool, seconds):
    stamps, lock = [], threading.Lock()

    def route(handler, path, attempt):
        with lock:
            stamps.append(time.monotonic())
        return 200, {}, "ok"

    site = Site(route).start()
    redis = RedisServer().start()
    folder = tempfile.mkdtemp(prefix="ms-rate-")
    n = int(rate * (seconds + 10))
    try:
        path = write_spider(folder, "rated.py", SPIDER, url=site.url, n=n)
        proc = start("run", path, "--rate", rate, "-w", workers, "--pool", pool, "--idle", "0.5",
                     "--redis", redis.url, "--mongo-uri", "sqlite:///%s/s.sqlite3" % folder, cwd=folder)
        code, _, err = finish(proc, timeout=seconds * 3 + 60)
        if code != 0:
            sys.exit("run failed:\n" + err[-2000:])
    finally:
        site.stop()
        redis.cleanup()
    stamps.sort()
    begin = stamps[0] + 4.0                       # skip the start-up
    window = [t for t in stamps if begin <= t < begin + seconds]
    observed = len(window) / float(seconds)
    return n, len(stamps), observed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    n, fetched, observed = measure(args.rate, args.workers, args.pool, args.seconds)
    error = (observed - args.rate) / args.rate
    print("--rate %g with -w %d --pool %d: %d seeds, %d requests; observed %.2f/s over %gs (%+.1f%%)"
          % (args.rate, args.workers, args.pool, n, fetched, observed, args.seconds, 100 * error))
    sys.exit(0 if abs(error) <= 0.10 else 1)


if __name__ == "__main__":
    main()
