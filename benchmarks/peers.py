"""Optional peers of the benchmark: Scrapy and scrapy-redis, same pages, concurrency and parse.

``python -m benchmarks.peers scrapy --base URL --pages N [--concurrency 64]``
``python -m benchmarks.peers scrapy_redis --base URL --pages N --redis URL``

They run only when installed (``pip install -e .[bench]``).  Settings are
Scrapy's defaults except what the comparison needs: the concurrency (global
and per domain), no robots.txt fetch, quiet logs, no telnet console.
scrapy-redis takes its URLs from the Redis list ``bench:urls`` (pushed by the
harness, like microspider's seeds), with its Redis scheduler and dupe filter,
and closes after one idle second.  Each prints one JSON line, as the bare loop.
"""
import argparse
import json
import sys

import lxml.html

URLS_KEY = "bench:urls"


def settings(concurrency):
    return {
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "ROBOTSTXT_OBEY": False,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
    }


def run(kind, base, pages, concurrency, redis_url=None):
    import scrapy
    from scrapy.crawler import CrawlerProcess

    from benchmarks.site import page_urls

    totals = {"pages": 0, "links": 0, "errors": 0}

    def parse(self, response):
        totals["links"] += len(lxml.html.fromstring(response.body).xpath("//a"))
        totals["pages"] += 1
        return ()

    conf = settings(concurrency)
    if kind == "scrapy":
        class LinkSpider(scrapy.Spider):
            name = "bench_links"
            start_urls = page_urls(base, pages)  # every Scrapy version turns these into requests

        LinkSpider.parse = parse
    else:
        from scrapy_redis.spiders import RedisSpider

        class LinkSpider(RedisSpider):
            name = "bench_links"
            redis_key = URLS_KEY

        LinkSpider.parse = parse
        conf.update({
            "REDIS_URL": redis_url,
            "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            "MAX_IDLE_TIME_BEFORE_CLOSE": 1,
        })
    process = CrawlerProcess(conf)
    process.crawl(LinkSpider)
    process.start()
    return totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["scrapy", "scrapy_redis"])
    parser.add_argument("--base", required=True)
    parser.add_argument("--pages", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--redis")
    args = parser.parse_args(argv)
    totals = run(args.kind, args.base, args.pages, args.concurrency, args.redis)
    print(json.dumps(totals), flush=True)
    return 0 if totals["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
