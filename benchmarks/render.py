"""Rendered pages per second and browser memory per tab, before and after, in one run.

``python -m benchmarks.render [--pages 300] [--tabs 8,16,32] [--per-browser 16]
[--old REV --browsers 1,2,4] [--at-load T] [--bare T] [--plain-pages 3000]``

``python -m benchmarks.render --engines chromium,lightpanda [--pages 300] [-w 2]
[--bare-engines 16,64]``: the render engines side by side (see ``engines_main``).

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


ENGINE_SPIDER = '''
import lxml.html
from microspider import Spider, Seed


class EngineBench(Spider):
    name = "engine_bench_%(engine)s"
    render = True
    render_engine = "%(engine)s"
    render_fallback = False      # the engine's own figures: no page goes to the other one

    def start_seeds(self):
        with open(%(urls)r) as f:
            for line in f:
                yield Seed(line.strip())

    def parse(self, response, seed):
        tree = lxml.html.fromstring(response.content)
        data = tree.xpath("string(//p[@id='data'])")
        if not data.startswith("price "):
            raise ValueError("the page's data did not arrive: %%r" %% data)
        yield {"_id": seed.url, "price": int(data.split()[1]), "links": len(tree.xpath("//a"))}
'''


class PssPeak:
    """Polls the PSS of the processes under `root` whose command names `word`; keeps the peak sum."""

    def __init__(self, root, word, interval=0.25):
        import threading

        self.root, self.word, self.interval = root, word, interval
        self.peak_kb = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def _run(self):
        from microspider.render.browser import descendants

        while not self.stop.wait(self.interval):
            pids = [p for p in descendants(self.root) if self._is_engine(p)]
            self.peak_kb = max(self.peak_kb, memory_kb(pids)[1])

    def _is_engine(self, pid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                return f.read().strip() == self.word
        except OSError:
            return False


def engine_run(engine, base, pages, workers, folder, redis_url, pages_at_once=None):
    """One `microspider run -w WORKERS` of PAGES scripted pages rendered by `engine`; a row."""
    from benchmarks.measure import TreeWatch, children_cpu
    from microspider.render.engines import SIZES
    from microspider.store import open_store

    urls = os.path.join(folder, "urls-%s.txt" % engine)
    with open(urls, "w") as f:
        f.write("".join("%s/j/%d.html\n" % (base, i) for i in range(pages)))
    spider = os.path.join(folder, "bench_%s.py" % engine)
    with open(spider, "w") as f:
        f.write(ENGINE_SPIDER % {"engine": engine, "urls": urls})
    store = "sqlite:///%s" % os.path.join(folder, "store-%s.sqlite3" % engine)
    command = [sys.executable, "-m", "microspider", "run", spider, "-w", str(workers),
               "--redis", redis_url, "--mongo-uri", store, "--idle", "0.2", "--timeout", "30",
               "--retry", "0", "--render-recycle", str(pages + 1)]
    if pages_at_once:
        command += ["--render-pages", str(pages_at_once)]
    before = children_cpu()
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    with TreeWatch(proc.pid, interval=0.2) as watch, PssPeak(proc.pid, engine) as pss:
        _, err = proc.communicate()
    elapsed = time.monotonic() - started
    # the kernel's count of waited-for children, or the polled tree when that saw more (a browser's
    # helpers that the worker killed but did not wait for are missing from the first)
    cpu = max(children_cpu() - before, sum(r["cpu_s"] for r in watch.procs.values()))
    assert proc.returncode == 0, err[-2000:]
    if os.environ.get("BENCH_LOG"):
        sys.stderr.write(err)
    out = open_store(store, "microspiders", "engine_bench_%s" % engine)
    try:
        prices = {i["_id"]: i["price"] for i in out.iter_items()}
        failures = out.count_failures()
    finally:
        out.close()
    right = sum(1 for i in range(pages) if prices.get("%s/j/%d.html" % (base, i)) == 100 + i)
    in_flight = workers * (pages_at_once or SIZES[engine][0])
    engine_cpu = sum(r["cpu_s"] for r in watch.matching(engine if engine == "lightpanda" else "chrom"))
    return {"fetcher": "run-%s" % engine, "workers": workers, "pages_at_once": in_flight,
            "pages": pages, "items_right": right, "failures": failures,
            "seconds": round(elapsed, 2), "pages_per_s": round(pages / elapsed, 1),
            "cpu_ms_per_page": round(cpu * 1000 / pages, 1),
            "engine_cpu_ms_per_page": round(engine_cpu * 1000 / pages, 1),
            "engine_processes": len(watch.matching(engine if engine == "lightpanda" else "chrom")),
            "engine_pss_mb_peak": round(pss.peak_kb / 1024, 1),
            "pss_mb_per_page_in_flight": round(pss.peak_kb / 1024 / in_flight, 2)}


def bare_engine_row(engine, urls, tabs, per_process=None):
    """The bare DevTools loop of `engine`: T tabs (`per_process` per browser process, default the
    engine's own), navigate, load, 0.5 s, read."""
    from microspider.render.engines import launcher, tabs_of
    from microspider.render.tabs import render_page
    from microspider.render.wait import QUIET

    settings = resolve({"render": True, "render_engine": engine, "timeout": 30,
                        "render_tabs": per_process}, Bench)
    pending = list(reversed(urls))
    missing = []

    def loop(tab):
        while pending:
            url = pending.pop()
            html = render_page(tab, url, {}, None, QUIET, 30).html
            if "price " not in html:
                missing.append(url)

    launch = launcher(settings)
    per_process = per_process_used = tabs_of(settings)
    started = time.monotonic()
    engines, opened = [], []
    try:
        while len(opened) < tabs:
            engines.append(launch(None))
            opened += [engines[-1].open_tab() for _ in range(min(per_process, tabs - len(opened)))]
        gevent.pool.Pool(tabs).map(loop, opened)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds([p for e in engines for p in e.pids()])
        pss = memory_kb([p for e in engines for p in e.pids()])[1]
    finally:
        for e in engines:
            e.kill()
    return {"fetcher": "%s-bare" % engine, "engine_processes": len(engines), "pages_at_once": tabs,
            "tabs_per_process": per_process_used,
            "pages": len(urls), "data_missing": len(missing), "seconds": round(elapsed, 2),
            "pages_per_s": round(len(urls) / elapsed, 1),
            "engine_cpu_ms_per_page": round(cpu * 1000 / len(urls), 1),
            "pss_mb_per_page_in_flight": round(pss / 1024 / tabs, 2)}


def engines_main(args):
    """Each engine renders the same scripted pages (data by fetch() after 0.2 s) in one run.

    Rows: ``run-ENGINE``: a real ``microspider run -w W`` (W worker processes,
    Redis, the store, parse reading the data; start-up and the 0.2 s idle exit
    included in ``seconds``); CPU per page is the whole process tree's (workers,
    engines), measured exactly from the kernel's accounting of waited-for
    children; ``engine_cpu_ms_per_page`` the engine processes' alone (polled);
    memory is the peak PSS of the engine processes divided by the pages in flight.
    ``ENGINE-bare`` (with ``--bare-engines T``): T tabs driven by one Python
    loop, no worker, no Redis: the engine's own cost.  The engines alternate
    per round, so both see about the same machine load.
    """
    from tests.servers import RedisServer, free_port, wait_until

    engines = args.engines.split(",")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.pyserver", "--pages", str(args.pages),
                               "--port", str(port), "--api-delay", str(args.api_delay)],
                              stdout=subprocess.DEVNULL)
    redis_server = RedisServer().start()
    folder = tempfile.mkdtemp(prefix="microspider-engines-")
    rows = []
    try:
        base = "http://127.0.0.1:%d" % port
        wait_until(lambda: _answers(base), timeout=10, message="the page server")
        for round_no in range(args.rounds):
            for engine in engines:
                import redis

                redis.Redis.from_url(redis_server.url).flushall()
                rows.append(dict(engine_run(engine, base, args.pages, args.worker, folder,
                                            redis_server.url, args.pages_at_once), round=round_no))
                print(json.dumps(rows[-1]), flush=True)
        if args.bare_engines:
            tabs = [int(t) for t in args.bare_engines.split(",")]
            for engine, n in zip(engines, tabs + tabs[-1:] * len(engines)):
                urls = ["%s/j/%d.html" % (base, i) for i in range(args.pages)]
                sizes = args.bare_per_process.split(",") if args.bare_per_process else [None]
                for per_process in sizes:
                    rows.append(bare_engine_row(engine, urls, n, per_process and int(per_process)))
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait()
        redis_server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", help="render engines to compare (chromium,lightpanda): a "
                        "microspider run per engine on scripted pages; see engines_main")
    parser.add_argument("-w", "--worker", type=int, default=2, help="worker processes of --engines")
    parser.add_argument("--pages-at-once", type=int, help="--render-pages of --engines "
                        "[default: the engine's own]")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of --engines")
    parser.add_argument("--api-delay", type=float, default=0.2,
                        help="seconds the scripted pages' data takes (--engines)")
    parser.add_argument("--bare-engines", metavar="T[,T]",
                        help="with --engines: also each engine's bare DevTools loop with T tabs "
                             "(one figure per engine, in the order of --engines)")
    parser.add_argument("--bare-per-process", metavar="N[,N]",
                        help="with --bare-engines: tabs per browser process to try (default: the "
                             "engine's own, 16)")
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
    if args.engines:
        return engines_main(args)
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
