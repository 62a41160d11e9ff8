"""microspider against Scrapy on a real site: Debian's Python manual served by nginx.

``python -m benchmarks.realsite [--rounds N] [--workers 2] [--only css,soup,scrapy,bare]``

The site (``benchmarks/docsite.py``) has 526 pages and ~160,000 links; every page links
to hundreds of others, one link is broken.  Each contender crawls it from
``/index.html`` with the same spider: every same-site ``a[href]`` followed (fragment
dropped), the page's ``<title>`` as an item.

- ``css``: ``microspider run docs.py -w WORKERS`` with ``response.css`` (parsel), on a
  private redis-server and an SQLite store, in a fresh folder;
- ``soup``: the same with ``response.soup.select`` (BeautifulSoup + lxml);
- ``scrapy``: ``scrapy runspider`` (Scrapy's own dupefilter, parsel), CONCURRENT_REQUESTS
  and CONCURRENT_REQUESTS_PER_DOMAIN 64, items to a JSON-lines file;
- ``bare``: a bare gevent + requests loop (64 greenlets, one process, lxml, a Python set
  as the frontier): what the crawl costs with no framework at all.

For each: wall seconds from start to exit, CPU seconds of the whole process tree
(the command and every process it waited for; for microspider the redis-server is
included: it is started before and ended after each round, as a child of this
script), requests nginx served, distinct paths, pages fetched more than once, and
titles that differ from the files' own (mojibake).  Rounds alternate the contenders.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

from benchmarks.docsite import DocSite, available, reachable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MICRO = '''
from microspider import Seed, Spider


class Docs(Spider):
    name = "docs"
    start_urls = ["{url}/index.html"]

    def parse(self, response, seed):
        yield {{"_id": seed.url, "title": {title}}}
        for href in {links}:
            url = response.urljoin(href).split("#")[0]
            if url.startswith("{url}/"):
                yield Seed(url)
'''
SELECTORS = {
    "css": ('response.css("title::text").get()', 'response.css("a::attr(href)").getall()'),
    "soup": ('(response.soup.title.string if response.soup.title else None)',
             '[a["href"] for a in response.soup.select("a[href]")]'),
}

SCRAPY = '''
import scrapy


class Docs(scrapy.Spider):
    name = "docs"
    start_urls = ["{url}/index.html"]
    custom_settings = {{"CONCURRENT_REQUESTS": 64, "CONCURRENT_REQUESTS_PER_DOMAIN": 64,
                       "LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False}}

    def parse(self, response):
        yield {{"url": response.url, "title": response.css("title::text").get()}}
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href).split("#")[0]
            if url.startswith("{url}/"):
                yield scrapy.Request(url)
'''

BARE = '''
from gevent import monkey; monkey.patch_all()
import json, sys
import gevent.pool, gevent.queue, lxml.html, requests
from urllib.parse import urljoin

base, out = sys.argv[1], sys.argv[2]
session = requests.Session()
session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
seen, todo, items, pool = set(), gevent.queue.Queue(), [], gevent.pool.Pool(64)
seen.add(base + "/index.html")
todo.put(base + "/index.html")
busy = [0]

def crawl(url):
    try:
        r = session.get(url, timeout=30)
        if r.status_code != 200:
            return
        tree = lxml.html.fromstring(r.content)
        items.append({"url": url, "title": tree.findtext(".//title")})
        for href in tree.xpath("//a/@href"):
            link = urljoin(url, href).split("#")[0]
            if link.startswith(base + "/") and link not in seen:
                seen.add(link)
                todo.put(link)
    finally:
        busy[0] -= 1

while True:
    try:
        url = todo.get(timeout=0.5 if busy[0] == 0 else 5)
    except gevent.queue.Empty:
        if busy[0] == 0:
            break
        continue
    busy[0] += 1
    pool.spawn(crawl, url)
pool.join()
with open(out, "w") as f:
    for item in items:
        f.write(json.dumps(item) + "\\n")
'''


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_micro(kind, site, workers, folder):
    from tests.servers import RedisServer

    title, links = SELECTORS[kind]
    spider = os.path.join(folder, "docs.py")
    with open(spider, "w") as f:
        f.write(MICRO.format(url=site.url, title=title, links=links))
    env = dict(os.environ, PYTHONPATH=REPO)
    cpu0, t0 = children_cpu(), time.perf_counter()
    redis = RedisServer().start()
    try:
        store = "sqlite:///%s" % os.path.join(folder, "store.sqlite3")
        proc = subprocess.run([sys.executable, "-m", "microspider", "run", spider, "-w", str(workers),
                               "--idle", "0.5", "--relay-delay", "0.05", "--max-age", "2",
                               "--redis", redis.url, "--mongo-uri", store],
                              cwd=folder, env=env, capture_output=True, text=True)
    finally:
        redis.stop()
        redis.cleanup()
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError("microspider exited %d: %s" % (proc.returncode, proc.stderr[-2000:]))
    with open(os.path.join(REPO, "benchmarks", "out", "realsite-%s.log" % kind), "w") as f:
        f.write(proc.stderr)
    from microspider.store import open_store

    items = {i["_id"]: i["title"] for i in open_store(store, "microspiders", "docs").iter_items()}
    return wall, cpu, items


def run_scrapy(site, folder):
    spider = os.path.join(folder, "docs_scrapy.py")
    with open(spider, "w") as f:
        f.write(SCRAPY.format(url=site.url))
    out = os.path.join(folder, "items.jsonl")
    scrapy = shutil.which("scrapy", path=os.path.dirname(sys.executable)) or shutil.which("scrapy")
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run([scrapy, "runspider", spider, "-o", out], cwd=folder, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError("scrapy exited %d: %s" % (proc.returncode, proc.stderr[-2000:]))
    return wall, cpu, _jsonl_titles(out)


def run_bare(site, folder):
    script = os.path.join(folder, "bare.py")
    with open(script, "w") as f:
        f.write(BARE)
    out = os.path.join(folder, "items.jsonl")
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, script, site.url, out], cwd=folder, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError("the bare loop exited %d: %s" % (proc.returncode, proc.stderr[-2000:]))
    return wall, cpu, _jsonl_titles(out)


def _jsonl_titles(path):
    with open(path) as f:
        return {d["url"]: d["title"] for d in map(json.loads, f)}


def round_of(kind, site, workers, pages):
    folder = tempfile.mkdtemp(prefix="ms-realsite-")
    try:
        site.reset()
        if kind in SELECTORS:
            wall, cpu, items = run_micro(kind, site, workers, folder)
        elif kind == "scrapy":
            wall, cpu, items = run_scrapy(site, folder)
        else:
            wall, cpu, items = run_bare(site, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    hits, _ = site.hits()
    titles = {url[len(site.url):]: title for url, title in items.items()}
    wrong = sum(1 for path, title in pages.items() if path in titles and titles[path] != title)
    return {"contender": kind, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "requests": sum(hits.values()), "paths": len(hits),
            "fetched_twice_or_more": sum(1 for n in hits.values() if n > 1),
            "twice_examples": sorted(p for p, n in hits.items() if n > 1)[:5],
            "items": len(items), "wrong_titles": wrong}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="microspider -w")
    parser.add_argument("--only", default="css,soup,scrapy,bare")
    parser.add_argument("--out", default="benchmarks/out/realsite.json")
    args = parser.parse_args(argv)
    os.makedirs(os.path.join(REPO, "benchmarks", "out"), exist_ok=True)
    missing = available()
    if missing:
        sys.exit("realsite: %s" % missing)
    pages, broken = reachable()
    print("site: %d pages reachable, %d broken link(s); contenders %s, %d round(s)"
          % (len(pages), len(broken), args.only, args.rounds), flush=True)
    rows = []
    site = DocSite(tempfile.mkdtemp(prefix="ms-docsite-")).start()
    try:
        for n in range(args.rounds):
            for kind in args.only.split(","):
                row = round_of(kind, site, args.workers, pages)
                row["round"] = n + 1
                rows.append(row)
                print(textwrap.dedent("""\
                    round %(round)d %(contender)-6s wall %(wall_s)7.2f s  CPU %(cpu_s)7.2f s  requests %(requests)5d  \
paths %(paths)4d  twice+ %(fetched_twice_or_more)3d  items %(items)4d  wrong titles %(wrong_titles)d""") % row,
                      flush=True)
    finally:
        site.stop()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"pages": len(pages), "broken": sorted(broken), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
