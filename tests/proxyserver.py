"""A real forward proxy on 127.0.0.1 for the tests, with switchable faults.

Absolute-URI GET/POST/HEAD are forwarded to the target; CONNECT opens a
tunnel (https targets).  ``mode`` may change while the proxy runs:

========  =====================================================================
ok        a healthy proxy
slow      waits ``delay`` seconds, then answers as ``ok``
garbage   reads the request, answers bytes that are not HTTP, closes
reset     closes the connection at once with a TCP reset
refuse    nothing listens on the port (connection refused); leaving this
          mode listens on the same port again
========  =====================================================================

``hits`` counts the requests (or connections, in the faulty modes) it saw.
With ``auth=("user", "pw")`` it answers 407 to requests without those
credentials.  With ``certfile`` it speaks TLS to its clients (an https proxy).
With ``source_address="127.0.0.11"`` its connections to targets leave from that
address, so a site on 127.0.0.1 sees each such proxy as a different client IP.
"""
import base64
import http.client
import select
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.servers import free_port

MODES = ("ok", "slow", "garbage", "reset", "refuse")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
              "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"}


class ProxyServer:
    """One forward proxy; ``start()``, ``url``, ``mode``, ``hits``, ``stop()``."""

    def __init__(self, mode="ok", delay=2.0, auth=None, certfile=None, source_address=None):
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % ", ".join(MODES))
        self._mode = mode
        self.delay = delay
        self.auth = auth
        self.certfile = certfile
        self.source = (source_address, 0) if source_address else None
        self.port = free_port()
        self.hits = 0
        self._lock = threading.Lock()
        self._server = None
        self._started = False

    @property
    def url(self):
        scheme = "https" if self.certfile else "http"
        userinfo = "%s:%s@" % self.auth if self.auth else ""
        return "%s://%s127.0.0.1:%d" % (scheme, userinfo, self.port)

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, mode):
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % ", ".join(MODES))
        self._mode = mode
        if not self._started:
            return
        if mode == "refuse":
            self._close()
        elif self._server is None:
            self._listen()

    def start(self):
        self._started = True
        if self._mode != "refuse":
            self._listen()
        return self

    def stop(self):
        self._started = False
        self._close()

    def count(self):
        with self._lock:
            self.hits += 1

    def _listen(self):
        self._server = _Server(("127.0.0.1", self.port), _handler(self))
        if self.certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.certfile)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def _close(self):
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass        # clients that time out and hang up are the point of some modes


def _handler(proxy):
    class Handler(_ProxyHandler):
        pass

    Handler.proxy = proxy
    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy = None

    def log_message(self, *args):
        pass

    def handle(self):
        if self._fault():       # before reading anything: a dead proxy answers nothing
            return
        super().handle()

    def _fault(self, head_read=False):
        """Act out a faulty mode; True if it did (the connection is then over)."""
        mode = self.proxy.mode
        if mode not in ("reset", "garbage", "refuse"):
            return False
        self.proxy.count()
        self.close_connection = True
        if mode == "garbage":
            if not head_read:
                self._read_head()
            self.connection.sendall(b"\x00\x17 not an HTTP answer \xff\xfe\r\n\r\n")
        else:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        return True

    def _read_head(self):
        self.connection.settimeout(2)
        try:
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
        except OSError:
            pass

    def _admit(self):
        """Count the request, act out the mode and check auth; False if the request is done."""
        if self._fault(head_read=True):     # the mode changed while the connection was idle
            return False
        self.proxy.count()
        if self.proxy.mode == "slow":
            time.sleep(self.proxy.delay)
        if self.proxy.auth:
            expected = "Basic " + base64.b64encode(("%s:%s" % self.proxy.auth).encode()).decode()
            if self.headers.get("Proxy-Authorization") != expected:
                self._answer(407, [("Proxy-Authenticate", 'Basic realm="test"')], b"proxy auth required")
                return False
        return True

    def _answer(self, status, headers, body, head=False):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_GET(self):
        self._forward()

    def do_POST(self):
        self._forward()

    def do_HEAD(self):
        self._forward()

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if not self._admit():
            return
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self._answer(400, [], b"absolute http:// URI required")
            return
        path = target.path or "/"
        if target.query:
            path += "?" + target.query
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30,
                                              source_address=self.proxy.source)
        try:
            upstream.request(self.command, path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        except OSError as exc:
            self._answer(502, [], ("bad gateway: %s" % exc).encode())
            return
        finally:
            upstream.close()
        kept = [(k, v) for k, v in response.getheaders()
                if k.lower() not in HOP_BY_HOP | {"content-length", "server", "date"}]
        self._answer(response.status, kept, data, head=self.command == "HEAD")

    def do_CONNECT(self):
        if not self._admit():
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10,
                                                source_address=self.proxy.source)
        except (OSError, ValueError) as exc:
            self._answer(502, [], ("cannot connect: %s" % exc).encode())
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        _pump(self.connection, upstream)


def _pump(client, upstream):
    """Copy bytes both ways until either side closes."""
    sockets = [client, upstream]
    try:
        while True:
            # TLS may hold decrypted bytes that select cannot see
            readable = [sock for sock in sockets if getattr(sock, "pending", lambda: 0)()]
            if not readable:
                readable, _, broken = select.select(sockets, [], sockets, 30)
                if broken or not readable:
                    return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)
    except OSError:
        return
    finally:
        upstream.close()
