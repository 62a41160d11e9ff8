"""Sessions on the session test site: pages per session, grants per 1,000 pages, Redis round trips.

``python -m benchmarks.sessions [--pages 3000] [--sessions 6] [--max-uses 50] [--workers 2] [--pool 16]``

A private redis-server, three local forward proxies leaving from 127.0.0.11-13
(``tests/proxyserver.py``) and the session site (``tests/session_site.py``: a
cookie granted by a 302, bound to IP and User-Agent; its own limit set high so
sessions retire by ``--max-uses``).  Two ``microspider run`` crawls of the same
number of pages through the same proxies:

- ``off``: ``--sessions 0`` over a plain site (the session site cannot be
  crawled without a jar), the 0.2 path;
- ``on``: ``--sessions N`` over the session site.

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
    user_agents = ["agent-a/1.0", "agent-b/2.0", "agent-c/3.0"]

    def is_banned(self, response):
        return response.status_code in (403, 429) or b"Blocked" in response.content

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


def measure(pages, sessions, max_uses, workers, pool):
    server = RedisServer().start()
    proxies = [ProxyServer(source_address=ip).start() for ip in SOURCES]
    plain = Site(lambda h, p, a: (200, {}, "<html><h1>%s</h1></html>" % p)).start()
    site = SessionSite(max_uses=10 ** 9).start()
    common = ["-w", str(workers), "--pool", str(pool)]
    try:
        with tempfile.TemporaryDirectory(prefix="ms-sessions-") as folder:
            with open(os.path.join(folder, "proxies.txt"), "w") as f:
                f.write("".join(p.url + "\n" for p in proxies))
            off, off_commands = crawl(folder, server.url, plain.url, pages, common + ["--sessions", "0"])
            on, on_commands = crawl(folder, server.url, site.url, pages, common + [
                "--sessions", str(sessions), "--session-max-uses", str(max_uses)])
    finally:
        for p in proxies:
            p.stop()
        plain.stop()
        site.stop()
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
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--max-uses", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=16)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.pages, args.sessions, args.max_uses, args.workers, args.pool), indent=2))


if __name__ == "__main__":
    main()
