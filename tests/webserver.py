"""A real `microspider web` process for the dashboard tests, and state to show in it."""
import json
import os
import select
import signal
import subprocess
import time

import pytest

from microspider import Seed
from microspider.state import keys
from microspider.store import failure_doc, open_store
from tests.crawl import cli_env, command

TOKEN = "test-token-0123456789"
HOSTILE = (b"<html><head><title>page</title></head><body>"
           b"<script>document.title='pwned'; window.pwned = 1;</script>"
           b"<img src=x onerror=\"document.title='pwned'; window.pwned = 2;\">"
           b"<p id=visible>hostile page</p></body></html>")


class WebServer:
    """`microspider web --port 0` started by PID, its address read from its stderr line."""

    def __init__(self, redis_url, store_uri, cwd, *extra):
        self.args = ["web", "--redis", redis_url, "--mongo-uri", store_uri, "--port", "0"] + list(extra)
        self.cwd = cwd
        self.proc = None
        self.url = None
        self.lines = []

    def start(self, timeout=30):
        self.proc = subprocess.Popen(command(*self.args), cwd=str(self.cwd), env=cli_env(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while self.url is None:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stderr], [], [], max(left, 0))
            line = self.proc.stderr.readline() if ready else ""
            if not line:
                self.stop()
                raise AssertionError("microspider web did not start: %s" % "".join(self.lines))
            self.lines.append(line)
            if line.startswith("microspider: dashboard at "):
                self.url = line.split(" at ", 1)[1].strip().rstrip("/")
        return self

    def stop(self):
        """SIGTERM our process; its exit status (SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        code = self.proc.wait()
        self.proc.stderr.close()
        return code


def store_uri(folder):
    return "sqlite:///%s" % os.path.join(str(folder), "store.sqlite3")


def populate(r, uri, name, now=None, live_worker=True):
    """A spider with work, backlog (due, waiting, parked), cache, counters, a live worker,
    pages in the last hour and two stored failures, one with a hostile body.
    Returns the fingerprint of the hostile failure."""
    now = time.time() if now is None else now
    r.sadd(keys.SPIDERS, name)
    r.hset(keys.meta(name), mapping={"relay_mode": 0, "max_age": 2, "started": now - 100})
    r.rpush(keys.work(name), *[Seed("http://a.example/w%d" % i).to_json() for i in range(3)])
    r.zadd(keys.backlog(name), {Seed("http://a.example/b1", age=1).to_json(): now - 5,
                                Seed("http://a.example/b2", age=2).to_json(): now + 500,
                                Seed("http://a.example/b3", age=3).to_json(): float("inf")})
    r.sadd(keys.cache(name), b"123456789012", b"abcdefghijkl")
    r.hset(keys.stats(name), mapping={"ok": 42, "parse_failures": 2})
    r.hset(keys.pages(name), mapping={int(now // 5) - 3: 10, int(now // 5) - 100: 25})
    if live_worker:
        r.zadd(keys.workers(name), {"worker-1": now + 600})
    store = open_store(uri, "microspiders", name)
    hostile = Seed("http://a.example/hostile")
    docs = []
    for seed, error, body in ((hostile, "ValueError", HOSTILE),
                              (Seed("http://a.example/other"), "KeyError", b"plain body")):
        doc = failure_doc(seed, error, "boom <b>bold</b>", "Traceback <script>x</script>")
        doc.update(status=200, headers={"Content-Type": "text/html", "X-Evil": "<script>"},
                   body=body, encoding="utf-8")
        docs.append(doc)
    store.save_failures(docs)
    store.save_items([{"_id": "i1"}])
    store.close()
    return hostile.fingerprint


def stat_json(redis_url, uri, cwd, *spider):
    proc = subprocess.run(command("stat", "--json", "--redis", redis_url, "--mongo-uri", uri, *spider),
                          cwd=str(cwd), env=cli_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A work folder for the module's dashboard and store."""
    return tmp_path_factory.mktemp("web")


@pytest.fixture(scope="module")
def web(redis_server, folder):
    """A `microspider web` process for the module, with the test token."""
    server = WebServer(redis_server.url, store_uri(folder), folder, "--token", TOKEN).start()
    yield server
    assert server.stop() == 0
