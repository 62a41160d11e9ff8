"""A real site no one here wrote: Debian's Python manual served by nginx, crawled end to end.

Every page links to hundreds of others; the spider is the one a newcomer writes
from the README (every same-site link yielded, the title as an item).  nginx's
access log says what was really fetched.
"""
import threading

import pytest

from benchmarks.docsite import DocSite, available, reachable
from microspider.state import keys
from microspider.store import open_store
from tests.crawl import microspider, stat, write_spider

MAX_AGE = 2

DOCS_SPIDER = '''
class Docs(Spider):
    name = "docs"
    start_urls = ["{url}/index.html"]

    def parse(self, response, seed):
        yield {{"_id": seed.url, "title": response.css("title::text").get()}}
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href).split("#")[0]
            if url.startswith("{url}/"):
                yield Seed(url)
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    missing = available()
    if missing:   # scripts/test.sh installs both; a run without them must say so, not pass
        pytest.fail(missing)
    site = DocSite(tmp_path_factory.mktemp("docsite")).start()
    yield site
    site.stop()


def test_every_page_of_a_real_site_once_titles_intact_queue_bounded(tmp_path, redis_url, r, site):
    pages, broken = reachable()
    path = write_spider(tmp_path, "docs.py", DOCS_SPIDER, url=site.url)
    conn = ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]
    peak, done = [0], threading.Event()

    def watch_queue():   # the work queue's length, sampled through the crawl
        while not done.wait(0.05):
            peak[0] = max(peak[0], r.llen(keys.work("docs")))

    watcher = threading.Thread(target=watch_queue, daemon=True)
    watcher.start()
    try:
        proc = microspider("run", path, "-w", "2", "--idle", "0.5", "--relay-delay", "0.05",
                           "--max-age", str(MAX_AGE), *conn, cwd=tmp_path, timeout=300)
    finally:
        done.set()
        watcher.join()
    assert proc.returncode == 0, proc.stderr[-2000:]
    hits, status = site.hits()
    assert set(hits) == set(pages) | broken
    assert {p: n for p, n in hits.items() if p not in broken and n != 1} == {}, proc.stderr[-3000:]
    assert all(status[p] == 404 and 1 <= hits[p] <= 1 + MAX_AGE for p in broken)  # + failure route
    store = open_store("sqlite:///%s" % (tmp_path / "store.sqlite3"), "microspiders", "docs")
    titles = {i["_id"][len(site.url):]: i["title"] for i in store.iter_items()}
    assert titles == pages                                    # no mojibake: "What’s New" etc.
    assert any("’" in (t or "") for t in titles.values())
    assert 0 < peak[0] <= len(pages) + len(broken)
    figures = stat(tmp_path, path, *conn)
    assert figures["duplicates"] > 100_000 and figures["cached"] == len(pages)
    assert figures["backlog_over_age"] == len(broken) and figures["failures"] == len(broken)
