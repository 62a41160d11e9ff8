"""What one link costs a parse: microspider's per-link path beside Scrapy's, in one process.

``python -m benchmarks.perlink [--links 300] [--pages 200]``

A page of LINKS relative links (``<a href="../section/pN.html#frag">``), parsed PAGES
times by each side with the same selector (parsel, ``a::attr(href)``), every link
made absolute with ``response.urljoin``, then:

- microspider: ``Seed(url)`` yielded from parse and collected as a run collects it
  (``collect``: encodability check, JSON once), then recorded in an ``Outcome`` as a
  send (fingerprint, ``cache_key``, the JSON): everything the worker does per link
  before Redis; and, measured apart, the Redis server's time to admit a link (one
  ``admit`` call per page, on a private redis-server, every link a duplicate but the
  first time, as on a real site);
- Scrapy: ``scrapy.Request(url)`` yielded, its fingerprint (Scrapy's default
  ``RequestFingerprinter``) and the in-memory dupefilter (``RFPDupeFilter.request_seen``),
  which is what its scheduler does for each request.

Prints CPU µs per link of each side (median of 5 rounds) and their ratio.
"""
import argparse
import statistics
import time


def page(links):
    body = "".join('<li><a href="../section/p%d.html#s%d">page %d</a></li>' % (i, i % 7, i)
                   for i in range(links))
    return ("<html><head><title>t</title></head><body><ul>%s</ul></body></html>" % body).encode()


def microspider_round(body, pages):
    from microspider import Seed, Spider
    from microspider.crawl.outcome import Outcome
    from microspider.spider import collect
    from microspider.transport.response import make_response

    class Links(Spider):
        name = "links"

        def parse(self, response, seed):
            for href in response.css("a::attr(href)").getall():
                yield Seed(response.urljoin(href))

    spider, seed = Links(), Seed("http://127.0.0.1:8000/docs/index.html")
    t = time.process_time()
    for n in range(pages):
        response = make_response(200, "http://127.0.0.1:8000/docs/p%d/index.html" % n,
                                 {"Content-Type": "text/html"}, body)
        _, sends = collect(spider, lambda: spider.parse(response, seed))
        Outcome("links").succeeded(seed, sends)
    return time.process_time() - t


def scrapy_round(body, pages):
    import scrapy
    from scrapy.dupefilters import RFPDupeFilter
    from scrapy.http import HtmlResponse
    from scrapy.utils.request import RequestFingerprinter

    fingerprinter = RequestFingerprinter()
    dupefilter = RFPDupeFilter(fingerprinter=fingerprinter)
    t = time.process_time()
    for n in range(pages):
        response = HtmlResponse("http://127.0.0.1:8000/docs/p%d/index.html" % n, body=body,
                                headers={"Content-Type": "text/html"})
        for href in response.css("a::attr(href)").getall():
            dupefilter.request_seen(scrapy.Request(response.urljoin(href)))
    return time.process_time() - t


def redis_admit_us(body_links, pages):
    """Server µs per link of the frontier admission (one call per page), on a private server."""
    import redis

    from microspider import Seed
    from microspider.state.cache import Cache
    from tests.servers import RedisServer

    server = RedisServer().start()
    try:
        client = redis.Redis.from_url(server.url)
        cache = Cache(client, "links")
        seeds = [Seed("http://127.0.0.1:8000/docs/section/p%d.html" % i) for i in range(body_links)]
        pairs = [(s.cache_key, s.to_json()) for s in seeds]
        cache.admit(pairs, "w", "s")
        client.config_resetstat()
        for _ in range(pages):
            cache.admit(pairs, "w", "s")
        stats = client.info("commandstats")
        used = sum(v["usec"] for k, v in stats.items() if k.startswith("cmdstat_eval"))
        return used / (pages * body_links)
    finally:
        server.stop()
        server.cleanup()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=300)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    body = page(args.links)
    per_link = {"microspider": [], "scrapy": []}
    for _ in range(args.rounds):   # alternated, so a busy moment hurts both
        per_link["microspider"].append(microspider_round(body, args.pages) / (args.pages * args.links) * 1e6)
        per_link["scrapy"].append(scrapy_round(body, args.pages) / (args.pages * args.links) * 1e6)
    micro, scrapy_ = (statistics.median(per_link[k]) for k in ("microspider", "scrapy"))
    server = redis_admit_us(args.links, args.pages)
    print("a page of %d links, %d pages, median of %d rounds (CPU µs per link, selector included):"
          % (args.links, args.pages, args.rounds))
    print("  microspider parse -> Seed -> collect -> Outcome: %6.2f" % micro)
    print("  Redis admission (server, apart):                 %6.2f" % server)
    print("  Scrapy parse -> Request -> fingerprint -> dupefilter: %6.2f" % scrapy_)
    print("  microspider / Scrapy: %.2f in the process, %.2f with the admission"
          % (micro / scrapy_, (micro + server) / scrapy_))


if __name__ == "__main__":
    main()
