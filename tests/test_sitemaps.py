"""push --sitemap: sitemaps, indexes, gzip, text, limits, filter; real Redis, a real local site."""
import pytest

from microspider.ops import sitemaps
from microspider.state import Redis, SpiderState
from tests.crawl import microspider, write_spider
from tests.proxyserver import ProxyServer
from tests.servers import Site
from tests import sitemap_site as sm

SPIDER = '''
class S(Spider):
    name = "maps"

    def parse(self, response, seed):
        return ()
'''


@pytest.fixture
def table():
    return {}


@pytest.fixture
def site(table):
    s = Site(sm.route_for(table)).start()
    yield s
    s.stop()


def push(tmp_path, redis_url, *args, check=0):
    write_spider(tmp_path, "s.py", SPIDER)
    return microspider("push", "s.py", "--redis", redis_url, *args, cwd=tmp_path, check=check,
                       timeout=120)


def queued(redis_url):
    state = SpiderState(Redis(redis_url), "maps")
    from microspider.seed import Seed

    return [Seed.from_json(raw).url for chunk in state.queue_chunks("work") for raw in chunk]


def test_an_index_of_gzip_sitemaps_and_a_filter(tmp_path, redis_url, site, table):
    table.update(sm.files(site.url, per_file=300, files_n=3))
    proc = push(tmp_path, redis_url, "--sitemap", site.url + "/sitemap_index.xml",
                "--sitemap-filter", r"/product/[02]/")
    urls = queued(redis_url)
    assert sorted(urls) == sorted("%s/product/%d/%d.html" % (site.url, n, i)
                                  for n in (0, 2) for i in range(300))
    assert "600 seeds pushed from 4 sitemap files, 300 filtered out" in proc.stderr


def test_text_and_plain_xml_sitemaps_nested(tmp_path, redis_url, site, table):
    table["/a.txt"] = ("\n".join("%s/t/%d" % (site.url, i) for i in range(5)) + "\n").encode()
    table["/b.xml"] = sm.urlset(["%s/x/1" % site.url, "%s/x/2" % site.url])
    table["/inner.xml"] = sm.index([site.url + "/a.txt", site.url + "/b.xml"])
    table["/outer.xml"] = sm.index([site.url + "/inner.xml", site.url + "/missing.xml"])
    proc = push(tmp_path, redis_url, "--sitemap", site.url + "/outer.xml")
    assert sorted(queued(redis_url)) == sorted(["%s/t/%d" % (site.url, i) for i in range(5)]
                                               + ["%s/x/1" % site.url, "%s/x/2" % site.url])
    assert "sitemap %s/missing.xml skipped: HTTP 404" % site.url in proc.stderr


def test_a_gzip_bomb_and_an_oversized_file_are_skipped_the_rest_goes_on(tmp_path, redis_url, site, table):
    table["/bomb.xml.gz"] = sm.bomb()
    table["/big.xml.gz"] = sm.gz(sm.urlset("%s/big/%d" % (site.url, i) for i in range(50001)))
    table["/ok.xml"] = sm.urlset(["%s/ok/1" % site.url])
    table["/index.xml"] = sm.index([site.url + p for p in ("/bomb.xml.gz", "/big.xml.gz", "/ok.xml")])
    proc = push(tmp_path, redis_url, "--sitemap", site.url + "/index.xml")
    assert queued(redis_url) == ["%s/ok/1" % site.url]
    lines = proc.stderr.splitlines()
    assert "microspider: sitemap %s/bomb.xml.gz skipped: over 50 MB uncompressed" % site.url in lines
    assert "microspider: sitemap %s/big.xml.gz skipped: over 50000 URLs" % site.url in lines
    assert "2 files skipped" in proc.stderr


def test_indexes_nest_five_levels_deep_at_most(tmp_path, redis_url, site, table):
    for level in range(7):
        table["/i%d.xml" % level] = sm.index([site.url + "/i%d.xml" % (level + 1)])
    table["/i4.xml"] = sm.index([site.url + "/i5.xml", site.url + "/leaf.xml"])
    table["/leaf.xml"] = sm.urlset([site.url + "/deep"])
    proc = push(tmp_path, redis_url, "--sitemap", site.url + "/i0.xml")
    assert queued(redis_url) == [site.url + "/deep"]            # i0 -> i4 -> leaf: 5 levels
    assert "sitemap index %s/i5.xml skipped: nested deeper than 5 levels" % site.url in proc.stderr


def test_fetched_through_the_spiders_proxy(tmp_path, redis_url, site, table):
    table["/s.xml"] = sm.urlset([site.url + "/via"])
    proxy = ProxyServer().start()
    try:
        push(tmp_path, redis_url, "-p", proxy.url, "--sitemap", site.url + "/s.xml")
    finally:
        proxy.stop()
    assert queued(redis_url) == [site.url + "/via"] and proxy.hits == 1


@pytest.mark.parametrize("args, message", [
    (("--sitemap", "{url}/nothing.xml"), "sitemap {url}/nothing.xml: HTTP 404"),
    (("--sitemap", "http://127.0.0.1:9/s.xml"), "sitemap http://127.0.0.1:9/s.xml: "),
    (("--sitemap", "{url}/s.xml", "--sitemap-filter", "(["), "bad --sitemap-filter '(['"),
    (("--sitemap-filter", "x", "http://a.example/"), "--sitemap-filter needs --sitemap URL"),
    (("--sitemap", "ftp://a.example/s.xml"), "bad --sitemap URL"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, redis_url, site, args, message):
    args = [a.format(url=site.url) for a in args]
    proc = push(tmp_path, redis_url, *args, check=2)
    assert message.format(url=site.url) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert queued(redis_url) == []


def test_a_page_that_is_not_a_sitemap_is_skipped(redis_url, site, table):
    table["/page.html"] = b"<html><body>hello</body></html>"

    class Fetcher:
        def stream(self, seed, chunk):
            yield table["/page.html"]

    with pytest.raises(sitemaps.SkipFile, match="not a sitemap"):
        sitemaps.read_file(Fetcher(), site.url + "/page.html")
