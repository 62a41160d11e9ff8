"""A crawl of a throttling site: `python -m benchmarks.throttle [--pages 200] [--workers 2] [--retry-after 2]`.

The site opens a window every `--every` requests in which it answers every request 429 with
`Retry-After: N` seconds (`--mode seconds`), as an HTTP date (`date`), or without it (`none`:
the client's first doubling step, 1 s). Each request carries when its cool-down check went to
Redis, and each worker notes when it recorded a cool-down, so the figures separate what was
already in flight when a window opened from what was sent into it after a process knew
(the issue's "requests sent into the windows"). Prints requests, 429s, both counts, the crawl's
time against the windows' total, and exits 1 if an item is missing or a request was sent into
a window.  `--check-cost` instead times the cool-down check every request makes (one Lua call).
"""
import argparse
import os
import sys
import tempfile
import time

from microspider.store import open_store
from tests.crawl import microspider, write_spider
from tests.servers import RedisServer
from tests.throttle_site import CHECK_STAMP, ThrottlingSite

SPIDER = '''
class Throttled(Spider):
    name = "throttled"
    start_urls = ["{url}/p/%d" % i for i in range({pages})]

    def parse(self, response, seed):
        yield {{"_id": seed.url}}
'''


def check_cost(n=20000):
    """Microseconds of wall and client CPU time per cool-down check, on a private redis-server."""
    from microspider.state import Redis, SpiderState

    server = RedisServer().start()
    try:
        cooldowns = SpiderState(Redis(server.url), "cost").cooldowns()
        cooldowns.check("h|direct")
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            cooldowns.check("h|direct")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        server.cleanup()
    print("cool-down check: %.1f us wall, %.1f us client CPU per request (%d calls)"
          % (wall / n * 1e6, cpu / n * 1e6, n))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=16)
    parser.add_argument("--every", type=int, default=40, help="requests between windows")
    parser.add_argument("--retry-after", type=float, default=2.0)
    parser.add_argument("--mode", choices=("seconds", "date", "none", "all"), default="seconds")
    parser.add_argument("--check-cost", action="store_true", help="time the per-request check only")
    args = parser.parse_args(argv)
    if args.check_cost:
        return check_cost()
    modes = ("seconds", "date", "none") if args.mode == "all" else (args.mode,)
    site = ThrottlingSite(first=args.every, every=args.every, modes=modes, seconds=args.retry_after)
    server = RedisServer().start()
    folder = tempfile.mkdtemp(prefix="ms-throttle-")
    known = os.path.join(folder, "known.txt")
    store = "sqlite:///%s/s.sqlite3" % folder
    try:
        write_spider(folder, "s.py", SPIDER + "KNOWN = %r\n" % known
                     + CHECK_STAMP.replace("{", "{{").replace("}", "}}"), url=site.url, pages=args.pages)
        started = time.monotonic()
        microspider("run", "s.py", "-w", args.workers, "--pool", args.pool, "--idle", "0.5",
                    "--redis", server.url, "--mongo-uri", store, cwd=folder, check=0, timeout=900)
        took = time.monotonic() - started
    finally:
        site.stop()
        server.cleanup()
    items = {i["_id"] for i in open_store(store, "x", "throttled").iter_items()}
    recorded = [float(line) for line in open(known).read().split()] if os.path.exists(known) else []
    sent_into = site.inside(recorded)
    windows = sum(w[1] - w[0] for w in site.windows)
    print("pages %d, items %d, workers %d x pool %d" % (args.pages, len(items), args.workers, args.pool))
    print("requests %d, 429 answers %d, windows %d (%.1f s in all, Retry-After %s)"
          % (len(site.arrivals), site.throttled, len(site.windows), windows, "/".join(modes)))
    print("in flight when a window opened (arrived inside it): %d" % len(site.in_flight()))
    print("sent into a window after a process knew: %d" % len(sent_into))
    print("crawl %.1f s (process start and --idle 0.5 included), windows %.1f s" % (took, windows))
    if len(items) != args.pages or sent_into:
        sys.exit(1)


if __name__ == "__main__":
    main()
