"""Sessions on the session test site: pages per session, grants and navigations per 1,000 pages, round trips.

``python -m benchmarks.sessions [--pages 3000] [--sessions 6] [--max-uses 50] [--workers 2] [--pool 16]``

A private redis-server, three local forward proxies leaving from 127.0.0.11-13
(``tests/proxyserver.py``) and the session site (``tests/session_site.py``: a
cookie granted by a 302, bound to IP and User-Agent; its own limit set high so
sessions retire by ``--max-uses``).  Two ``microspider run`` crawls of the same
number of pages through the same proxies:

- ``off``: ``--sessions 0`` over a plain site (the session site cannot be
  crawled without a jar), the 0.2 path;
- ``on``: ``--sessions N`` over the session site;
- ``warm``: ``--sessions N --session-warmup render`` over the session site in
  challenge mode (the cookie is set by a script: only a browser gets it),
  unless ``--no-browser``; browser navigations are the requests that carry
  ``Upgrade-Insecure-Requests``.

Round trips added per seed are what the session pool itself sent, counted by
its gateway (one ``EVALSHA`` per call) and written to the ``stats`` hash in the
worker's acknowledging transaction (``session_round_trips``).  For context the
table also gives the server's ``total_commands_processed`` per page of each run
(commands inside Lua scripts count there too, so it is not a round-trip count).
"""
import argparse
import json
import os
import tempfile

import redis

from tests.crawl import microspider, write_spider
from tests.proxyserver import ProxyServer
from tests.servers import RedisServer, Site
from tests.session_site import SessionSite

SPIDER = '''
class S(Spider):
    name = "sess_bench"
    start_urls = ["{url}/item/%d" % i for i in range({pages})]
    user_agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"]
    render_wait = "h1"      # a challenge reloads the page: wait for the real one

    def is_banned(self, response):
        return response.status_code in (403, 429) or b"Blocked" in response.content or \
            b"Checking your browser" in response.content

    def parse(self, response, seed):
        yield {{"_id": seed.url}}
'''
SOURCES = ("127.0.0.11", "127.0.0.12", "127.0.0.13")


def crawl(folder, redis_url, site_url, pages, args):
    """Run one crawl to its end; returns (stats counters, commands the server processed)."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    write_spider(folder, "s.py", SPIDER, url=site_url, pages=pages)
    before = client.info("stats")["total_commands_processed"]
    microspider("run", "s.py", "-p", "proxies.txt", "--idle", "0.5", "--redis", redis_url,
                "--mongo-uri", "sqlite:///%s/s.sqlite3" % folder, *args, cwd=folder, check=0,
                timeout=1800)
    commands = client.info("stats")["total_commands_processed"] - before
    stats = {k.decode(): int(v) for k, v in client.hgetall("microspider:{sess_bench}:stats").items()}
    stats["live"] = client.hlen("microspider:{sess_bench}:sessions")
    client.close()
    return stats, commands


def measure(pages, sessions, max_uses, workers, pool, browser=True):
    server = RedisServer().start()
    proxies = [ProxyServer(source_address=ip).start() for ip in SOURCES]
    plain = Site(lambda h, p, a: (200, {}, "<html><h1>%s</h1></html>" % p)).start()
    site = SessionSite(max_uses=10 ** 9).start()
    challenge = SessionSite(max_uses=10 ** 9, challenge=True).start()
    common = ["-w", str(workers), "--pool", str(pool)]
    per_session = ["--sessions", str(sessions), "--session-max-uses", str(max_uses)]
    warm = None
    try:
        with tempfile.TemporaryDirectory(prefix="ms-sessions-") as folder:
            with open(os.path.join(folder, "proxies.txt"), "w") as f:
                f.write("".join(p.url + "\n" for p in proxies))
            off, off_commands = crawl(folder, server.url, plain.url, pages, common + ["--sessions", "0"])
            on, on_commands = crawl(folder, server.url, site.url, pages, common + per_session)
            if browser:
                warm, _ = crawl(folder, server.url, challenge.url, pages, common + per_session + [
                    "--session-warmup", "render", "--render-pages", "1"])
    finally:
        for p in proxies:
            p.stop()
        for s in (plain, site, challenge):
            s.stop()
        server.cleanup()
    made = on["live"] + on.get("sessions_retired", 0)
    return {
        "pages": pages, "sessions": sessions, "session_max_uses": max_uses,
        "workers": workers, "pool": pool,
        "pages_ok": [off.get("ok", 0), on.get("ok", 0)],
        "sessions_made": made,
        "pages_per_session": round(on.get("ok", 0) / max(1, made), 1),
        "grants_per_1000_pages": round(1000.0 * site.grants / max(1, site.pages), 1),
        "cookie_crossings": site.crossings,
        "session_round_trips_per_seed": round(on.get("session_round_trips", 0) / max(1, on["ok"]), 3),
        "commands_per_page_off": round(off_commands / max(1, off.get("ok", 1)), 2),
        "commands_per_page_on": round(on_commands / max(1, on.get("ok", 1)), 2),
        "warm_pages_ok": warm and warm.get("ok", 0),
        "warm_navigations_per_1000_pages": warm and round(
            1000.0 * challenge.navigations / max(1, warm.get("ok", 1)), 1),
        "warm_cookie_crossings": warm and challenge.crossings,
        "warm_sessions_made": warm and warm.get("live", 0) + warm.get("sessions_retired", 0),
        "warm_grants": challenge.grants,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--max-uses", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=16)
    parser.add_argument("--no-browser", action="store_true", help="skip the warm-up crawl")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.pages, args.sessions, args.max_uses, args.workers, args.pool,
                             browser=not args.no_browser), indent=2))


if __name__ == "__main__":
    main()
