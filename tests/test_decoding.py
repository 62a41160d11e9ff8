"""Text decoded as a browser decodes it, and the parsel selectors, on pages from a real local site."""
import pytest

from microspider.store import open_store
from tests.crawl import microspider, write_spider
from tests.servers import Site

LONG = "北京上海广州深圳的酒店与民宿，开业年份和装修年份，" * 20   # enough text for detection
PAGES = {
    # path: (Content-Type, body bytes, the title a browser shows, the encoding response.encoding names)
    "/utf8": ("text/html", '<meta charset="utf-8"><title>What’s New</title>'.encode("utf-8"),
              "What’s New", "utf-8"),
    "/gbk": ("text/html", '<meta charset="gbk"><title>北京酒店</title>'.encode("gbk"), "北京酒店", "gb18030"),
    "/gb2312": ("text/html", '<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=gb2312">'
                '<title>上海</title>'.encode("gbk"), "上海", "gb18030"),
    "/gb18030": ("text/html", '<meta http-equiv="content-type" content="text/html; charset=GB18030">'
                 '<title>𠮷野家</title>'.encode("gb18030"), "𠮷野家", "gb18030"),
    "/undeclared-utf8": ("text/html", "<title>Überblick – 概要</title>".encode("utf-8"),
                         "Überblick – 概要", "utf-8"),
    "/undeclared-gbk": ("text/html", ("<title>深圳</title><p>%s</p>" % LONG).encode("gbk"), "深圳", "gb18030"),
    "/header-wins": ("text/html; charset=gbk", '<meta charset="utf-8"><title>广州</title>'.encode("gbk"),
                     "广州", "gb18030"),
    "/bom": ("text/html", "\ufeff<title>Ångström</title>".encode("utf-8"), "Ångström", "utf-8"),
}

SPIDER = '''
class Pages(Spider):
    name = "pages"
    start_urls = [{urls}]

    def parse(self, response, seed):
        {fail}
        yield {{"_id": seed.url, "css": response.css("title::text").get(),
               "xpath": response.xpath("//title/text()").get(), "soup": response.soup.title.string,
               "text": response.text[-300:], "encoding": response.encoding}}
'''


@pytest.fixture(scope="module")
def site():
    def route(handler, path, attempt):
        kind, body, _, _ = PAGES[path]
        return 200, {"Content-Type": kind}, body

    site = Site(route).start()
    yield site
    site.stop()


def run_spider(tmp_path, redis_url, site, fail=""):
    urls = ", ".join('"%s%s"' % (site.url, p) for p in PAGES)
    path = write_spider(tmp_path, "pages.py", SPIDER, urls=urls, fail=fail)
    conn = ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]
    microspider("run", path, "--idle", "0.3", "--max-age", "0", "--relay-delay", "0.05", *conn,
                cwd=tmp_path, check=0)
    return path, conn, open_store("sqlite:///%s" % (tmp_path / "store.sqlite3"), "microspiders", "pages")


def check_items(store, site):
    items = {i["_id"][len(site.url):]: i for i in store.iter_items()}
    assert sorted(items) == sorted(PAGES)
    for path, (_, _, title, encoding) in PAGES.items():
        item = items[path]
        assert (item["css"], item["xpath"], item["soup"], item["encoding"]) == (title, title, title, encoding), path
        assert title in item["text"] and "\ufeff" not in item["text"]


def test_pages_decode_as_in_a_browser_with_every_selector(tmp_path, redis_url, site):
    _, _, store = run_spider(tmp_path, redis_url, site)
    check_items(store, site)


def test_a_stored_failure_is_decoded_the_same_when_parsed_again(tmp_path, redis_url, site):
    path, conn, store = run_spider(tmp_path, redis_url, site, fail='raise ValueError("not yet")')
    assert store.count_failures() == len(PAGES) and store.count_items() == 0
    fixed = write_spider(tmp_path, "pages.py", SPIDER, urls="", fail="")
    proc = microspider("parse", fixed, *conn, cwd=tmp_path, check=0)
    assert "%d" % len(PAGES) in proc.stderr
    check_items(store, site)
