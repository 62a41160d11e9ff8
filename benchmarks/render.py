"""Rendered pages per second and browser memory, next to the plain fetcher on the same pages.

``python -m benchmarks.render [--pages 300] [--plain-pages 3000] [--browsers 1,2,4]``

One process, gevent-patched like a worker.  The site is ``benchmarks.site``
(static 8-12 KB pages) served by ``benchmarks.pyserver`` in its own process.
For each browser count B: a RenderFetcher with ``render_pages=B`` fetches the
pages with 2*B greenlets, each page parsed as the plain benchmark does; after
the timed part, the memory of the browser processes (chromedriver excluded) is
read from /proc while they are alive: RSS summed (counts shared pages once per
process, so it overstates) and PSS summed (shares split; the fairer figure).
The plain row is microspider's Fetcher with 64 greenlets on the same site.
Browser start-up is inside the timed part (B starts per run).
"""
import argparse
import json
import subprocess
import sys
import time

from gevent import monkey

monkey.patch_all()

import gevent.pool  # noqa: E402
import lxml.html  # noqa: E402

from benchmarks.site import page_urls  # noqa: E402
from microspider import Seed, Spider  # noqa: E402
from microspider.config import resolve  # noqa: E402
from microspider.transport import make_fetcher  # noqa: E402


class Bench(Spider):
    name = "render_bench"

    def parse(self, response, seed):
        pass


def crawl(fetcher, urls, concurrency):
    def one(url):
        body = fetcher.fetch(Seed(url)).content
        return len(lxml.html.fromstring(body).xpath("//a"))
    started = time.monotonic()
    links = gevent.pool.Pool(concurrency).map(one, urls)
    elapsed = time.monotonic() - started
    assert all(links), "a page without links: the fetch or the parse failed"
    return len(urls) / elapsed, elapsed


def memory_kb(pids):
    rss = pss = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                rss += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            with open("/proc/%d/smaps_rollup" % pid) as f:
                pss += next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return rss, pss


def render_row(urls, browsers):
    from microspider.transport.browser import RenderFetcher

    settings = resolve({"render": True, "render_pages": browsers, "timeout": 30}, Bench)
    fetcher = RenderFetcher(Bench(), settings)
    try:
        rate, elapsed = crawl(fetcher, urls, 2 * browsers)
        pids = [p for b in fetcher.pool.browsers() for p in b.browser_pids()]
        rss, pss = memory_kb(pids)
        live = len(fetcher.pool.browsers())
    finally:
        fetcher.close()
    return {"fetcher": "render", "browser_pages": browsers, "pages": len(urls),
            "seconds": round(elapsed, 2), "pages_per_s": round(rate, 1),
            "browser_processes": len(pids), "rss_mb_per_page": round(rss / 1024 / live, 1),
            "pss_mb_per_page": round(pss / 1024 / live, 1)}


def plain_row(urls):
    settings = resolve({"pool": 64}, Bench)
    fetcher = make_fetcher(Bench(), settings)
    try:
        rate, elapsed = crawl(fetcher, urls, 64)
    finally:
        fetcher.close()
    return {"fetcher": "plain", "pages": len(urls), "seconds": round(elapsed, 2),
            "pages_per_s": round(rate, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300, help="pages per render row")
    parser.add_argument("--plain-pages", type=int, default=3000, help="pages of the plain row")
    parser.add_argument("--browsers", default="1,2,4", help="browser pages per process to try")
    args = parser.parse_args(argv)
    from tests.servers import free_port, wait_until

    port = free_port()
    total = max(args.pages, args.plain_pages)
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.pyserver", "--pages", str(total),
                               "--port", str(port)])
    try:
        base = "http://127.0.0.1:%d" % port
        wait_until(lambda: _answers(base), timeout=10, message="the page server")
        rows = [plain_row(page_urls(base, total)[:args.plain_pages])]
        for browsers in (int(b) for b in args.browsers.split(",")):
            rows.append(render_row(page_urls(base, total)[:args.pages], browsers))
    finally:
        server.terminate()
        server.wait()
    for row in rows:
        print(json.dumps(row))
    return 0


def _answers(base):
    import urllib.request

    try:
        return urllib.request.urlopen(base + "/p/0.html", timeout=0.5).status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
