"""Rendered pages per second and browser memory per tab, before and after, in one run.

``python -m benchmarks.render [--pages 300] [--tabs 8,16,32] [--per-browser 16]
[--old REV --browsers 1,2,4] [--at-load T] [--bare T] [--plain-pages 3000]``

One process, gevent-patched like a worker.  The site is ``benchmarks.site``
(static 8-12 KB pages) served by ``benchmarks.pyserver`` in its own process.
Rows, all on the same pages and the same server:

- ``plain``: microspider's Fetcher with 64 greenlets;
- ``render`` (this checkout): a RenderFetcher with ``render_pages=T`` (tabs in
  flight), ``render_tabs`` per browser, 2*T greenlets, the default wait (load
  event, then 0.5 s without a request in flight);
- ``render-at-load`` (with ``--at-load T``): this checkout with T tabs, each page
  read right after its load event (``render_wait = "html"``), the rule 0.2 read by;
- ``chromium-bare`` (with ``--bare T``): no microspider fetcher, T tabs of one
  browser started as ours are, each in a loop of navigate, load event, 0.5 s,
  read the DOM: what Chromium itself costs for these pages with a 0.5 s wait
  (the ceiling of any driver on this machine);
- ``render-old`` (with ``--old REV``): the same rows run by revision REV of
  microspider, exported with ``git archive`` into a temporary folder and run
  in a child process (``render_pages=B`` browsers, its own wait); old and new
  rows alternate, so that both see about the same machine load.

Each page is parsed as the plain benchmark does.  After the timed part the
memory of the browser processes is read from /proc
while they are alive: RSS summed (counts shared pages once per process, so it
overstates) and PSS summed (shares split; the fairer figure), per tab (or per
browser for the old rows, which have one tab each).  Browser start-up is inside
the timed part.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from gevent import monkey

monkey.patch_all()

import gevent.pool  # noqa: E402
import lxml.html  # noqa: E402

from benchmarks.site import page_urls  # noqa: E402
from microspider import Seed, Spider  # noqa: E402
from microspider.config import resolve  # noqa: E402
from microspider.transport import make_fetcher  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def cpu_seconds(pids):
    """User + system CPU time the processes used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / ticks


class AtLoad(Bench):
    render_wait = "html"   # a selector there at load: read right after the load event, as 0.2 did


def render_row(urls, pages, per_browser=None, spider=Bench):
    """One render row; ``per_browser`` None: the old revision (one browser per page)."""
    try:   # the old revision (0.2) kept it in the render package; looked up first, because an
        # editable install would serve this checkout's transport package to the old child
        from microspider.render import RenderFetcher
    except ImportError:
        from microspider.transport.browser import RenderFetcher

    options = {"render": True, "render_pages": pages, "timeout": 30,
               "render_recycle": len(urls) + 1}
    if per_browser:
        options["render_tabs"] = per_browser
    fetcher = RenderFetcher(spider(), resolve(options, spider))
    try:
        rate, elapsed = crawl(fetcher, urls, 2 * pages)
        browsers = fetcher.pool.browsers()
        pids = [p for b in browsers for p in b.browser_pids()]
        rss, pss = memory_kb(pids)
        cpu = cpu_seconds([p for b in browsers for p in b.pids()])
        tabs = sum(len(getattr(b, "tabs", [None])) for b in browsers)
    finally:
        fetcher.close()
    name = "render" if per_browser else "render-old"
    return {"fetcher": name + ("-at-load" if spider is AtLoad else ""), "pages_at_once": pages,
            "browsers": len(browsers), "tabs": tabs, "pages": len(urls),
            "seconds": round(elapsed, 2), "pages_per_s": round(rate, 1),
            "browser_processes": len(pids),
            "browser_cpu_ms_per_page": round(cpu * 1000 / len(urls), 1), "rss_mb_per_tab": round(rss / 1024 / tabs, 1),
            "pss_mb_per_tab": round(pss / 1024 / tabs, 1)}


def bare_row(urls, tabs):
    """The bare DevTools loop: Chromium's own cost per page, with the default wait's 0.5 s."""
    from microspider.render.browser import Browser, find_browser
    from microspider.render.tabs import render_page
    from microspider.render.wait import QUIET

    pending = list(reversed(urls))

    def loop(tab):
        while pending:   # render_wait = QUIET seconds: load event, then a plain 0.5 s sleep
            html = render_page(tab, pending.pop(), {}, None, QUIET, 30).html
            assert lxml.html.fromstring(html).xpath("//a"), "a page without links"

    path = find_browser()
    started = time.monotonic()
    browser = Browser(path)
    try:
        gevent.pool.Pool(tabs).map(loop, [browser.open_tab() for _ in range(tabs)])
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(browser.pids())
    finally:
        browser.kill()
    return {"fetcher": "chromium-bare", "pages_at_once": tabs, "browsers": 1, "tabs": tabs,
            "pages": len(urls), "seconds": round(elapsed, 2),
            "pages_per_s": round(len(urls) / elapsed, 1),
            "browser_cpu_ms_per_page": round(cpu * 1000 / len(urls), 1)}


def plain_row(urls):
    settings = resolve({"pool": 64}, Bench)
    fetcher = make_fetcher(Bench(), settings)
    try:
        rate, elapsed = crawl(fetcher, urls, 64)
    finally:
        fetcher.close()
    return {"fetcher": "plain", "pages": len(urls), "seconds": round(elapsed, 2),
            "pages_per_s": round(rate, 1)}


def old_rows(rev, base, pages, browsers):
    """The render rows of revision ``rev``, run by its own microspider in a child process."""
    folder = tempfile.mkdtemp(prefix="microspider-old-")
    try:
        archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "microspider"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        # cwd first on sys.path: `import microspider` finds the old one, `benchmarks` comes
        # from this checkout through PYTHONPATH
        out = subprocess.run([sys.executable, "-m", "benchmarks.render", "--child-old", base,
                              "--pages", str(pages), "--browsers", browsers], cwd=folder,
                             env=dict(os.environ, PYTHONPATH=ROOT), check=True,
                             stdout=subprocess.PIPE, text=True).stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def child_old(args):
    import microspider

    assert not microspider.__file__.startswith(ROOT), "the child must run the old revision"
    for b in (int(b) for b in args.browsers.split(",")):
        print(json.dumps(render_row(page_urls(args.child_old, args.pages), b)), flush=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300, help="pages per render row")
    parser.add_argument("--plain-pages", type=int, default=3000, help="pages of the plain row")
    parser.add_argument("--tabs", default="8,16,32", help="pages at once (tabs) to try")
    parser.add_argument("--per-browser", type=int, default=16, help="tabs per browser")
    parser.add_argument("--old", metavar="REV", help="also run the render rows of revision REV")
    parser.add_argument("--browsers", default="1,2,4", help="browsers to try with --old")
    parser.add_argument("--at-load", type=int, metavar="T",
                        help="also a row of T tabs that reads each page at its load event, as 0.2 "
                             "did (render_wait = 'html')")
    parser.add_argument("--bare", type=int, metavar="T",
                        help="also run the bare DevTools loop with T tabs (Chromium's own cost)")
    parser.add_argument("--child-old", metavar="BASE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_old:
        return child_old(args)
    from tests.servers import free_port, wait_until

    port = free_port()
    total = max(args.pages, args.plain_pages)
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.pyserver", "--pages", str(total),
                               "--port", str(port)])
    try:
        base = "http://127.0.0.1:%d" % port
        wait_until(lambda: _answers(base), timeout=10, message="the page server")
        rows = [plain_row(page_urls(base, total)[:args.plain_pages])]
        olds = args.browsers.split(",") if args.old else []
        tabs = [int(t) for t in args.tabs.split(",")]
        for i in range(max(len(olds), len(tabs))):   # alternate: both see the same load
            if i < len(olds):
                rows += old_rows(args.old, base, args.pages, olds[i])
            if i < len(tabs):
                rows.append(render_row(page_urls(base, total)[:args.pages], tabs[i],
                                       args.per_browser))
        if args.at_load:
            rows.append(render_row(page_urls(base, total)[:args.pages], args.at_load,
                                   args.per_browser, AtLoad))
        if args.bare:
            rows.append(bare_row(page_urls(base, total)[:args.pages], args.bare))
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
