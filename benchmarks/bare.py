"""The bare loop: what gevent + requests do with no framework around them.

``python -m benchmarks.bare --base URL --pages N [--concurrency 64] [--no-trust-env]
[--redis URL]``: one process, ``gevent.pool.Pool(concurrency)``, one
``requests.Session`` with ``HTTPAdapter(pool_maxsize=concurrency)``, and the parse
every contender runs: ``len(lxml.html.fromstring(body).xpath('//a'))``.  It
prints one JSON line: pages fetched, links counted, errors.

``trust_env`` stays at requests' default (True) unless ``--no-trust-env``: that
is what a user's own loop does, and it costs an environment scan per request.
With ``--redis`` each page also does what a naive Redis-backed crawler does:
one ``LPOP`` to take its URL and one ``SADD`` of a fingerprint when done.
"""
import argparse
import hashlib
import json
import sys

from gevent import monkey

monkey.patch_all()

import gevent.pool  # noqa: E402
import lxml.html  # noqa: E402
import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402


def count_links(body):
    """The parse of every contender: how many <a> elements the page has."""
    return len(lxml.html.fromstring(body).xpath("//a"))


def crawl(urls, concurrency, trust_env=True):
    """Fetch and parse every URL; returns (pages, links, errors)."""
    session = _session(concurrency, trust_env)
    totals = {"pages": 0, "links": 0, "errors": 0}

    def one(url):
        try:
            response = session.get(url, timeout=30)
            response.raise_for_status()
            totals["links"] += count_links(response.content)
            totals["pages"] += 1
        except Exception as exc:  # counted and reported: the harness fails the run
            totals["errors"] += 1
            print("bare: %s: %r" % (url, exc), file=sys.stderr)

    pool = gevent.pool.Pool(concurrency)
    for url in urls:
        pool.spawn(one, url)
    pool.join()
    return totals


def crawl_from_redis(redis_url, key, concurrency, trust_env=True):
    """The naive Redis crawler: LPOP a URL, fetch, parse, SADD its fingerprint; per page."""
    import redis

    client = redis.Redis.from_url(redis_url, max_connections=concurrency + 4)
    session = _session(concurrency, trust_env)
    totals = {"pages": 0, "links": 0, "errors": 0}

    def loop():
        while True:
            url = client.lpop(key)
            if url is None:
                return
            url = url.decode()
            try:
                response = session.get(url, timeout=30)
                response.raise_for_status()
                totals["links"] += count_links(response.content)
                client.sadd(key + ":done", hashlib.sha1(url.encode()).digest()[:12])
                totals["pages"] += 1
            except Exception as exc:
                totals["errors"] += 1
                print("bare: %s: %r" % (url, exc), file=sys.stderr)

    gevent.joinall([gevent.spawn(loop) for _ in range(concurrency)])
    return totals


def _session(concurrency, trust_env):
    session = requests.Session()
    session.trust_env = trust_env
    session.mount("http://", HTTPAdapter(pool_maxsize=concurrency))
    return session


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--pages", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-trust-env", action="store_true")
    parser.add_argument("--redis", help="take URLs from this Redis (list KEY), the naive way")
    parser.add_argument("--key", default="bench:urls")
    args = parser.parse_args(argv)
    trust = not args.no_trust_env
    if args.redis:
        totals = crawl_from_redis(args.redis, args.key, args.concurrency, trust)
    else:
        from benchmarks.site import page_urls

        totals = crawl(page_urls(args.base, args.pages), args.concurrency, trust)
    print(json.dumps(totals), flush=True)
    return 0 if totals["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
