"""A local HTTPS site that reads the TLS ClientHello before the handshake, as a WAF does.

Each connection's first TLS record is peeked (``recv(MSG_PEEK)``, so the bytes
stay for the real handshake) until it is all there, parsed (cipher suites,
extensions, groups, ALPN), and only then handed to ``ssl`` (server side).
Then the site answers HTTP/1.1, or HTTP/2 (with the ``h2`` package) when the
client offered it in ALPN:

- 403 ``not a browser`` to a hello without a browser's tell-tales (GREASE,
  compress_certificate 27, ALPS 17513/17613: what OpenSSL clients never send);
- 403 ``user agent disagrees`` when the User-Agent names another browser family
  than the hello;
- 200 otherwise, with a JSON body of what it saw (``Visit.as_dict``), or what
  ``route(visit)`` returns.

With ``tickets=True`` the site issues one TLS 1.3 session ticket per
connection, stateful (OpenSSL's ticket is then the session's id, which the
server reads back), and records each connection's hello in ``connections``
with ``ip`` (the client's address), ``issued`` (the ticket it got) and ``psk``
(the ticket it offered to resume): who earned a ticket and who used it.
``close=True`` answers HTTP/1.1 with ``Connection: close``, so that every
request makes a new connection (and may resume a session).

``site.visits`` keeps every request's ``Visit``; ``fingerprint_id(hello)`` is a
stable id of a client's TLS identity (JA4-like: sorted lists, so Chrome's
shuffled extension order does not change it), for tests that bind state to a
fingerprint.
"""
import hashlib
import json
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler

from tests.servers import free_port

COMPRESS_CERTIFICATE, RECORD_SIZE_LIMIT, DELEGATED_CREDENTIALS = 27, 28, 34
ALPS = frozenset([17513, 17613])
EXT_ALPN, EXT_SUPPORTED_GROUPS, EXT_PRE_SHARED_KEY = 16, 10, 41
PEEK_DEADLINE = 5.0


class ClientHello:
    """What a TLS ClientHello offered, GREASE values kept apart."""

    def __init__(self, ciphers, extensions, groups, alpn, grease, psk=None):
        self.ciphers, self.extensions, self.groups = ciphers, extensions, groups
        self.alpn, self.grease = alpn, grease
        self.psk = psk          # the ticket offered for resumption (pre_shared_key's first identity)
        self.ip = self.issued = None   # set by the site: the client's address, the ticket it got

    def family(self):
        """The browser family this hello looks like ("chrome", "safari", "firefox") or None."""
        exts = set(self.extensions)
        if self.grease and COMPRESS_CERTIFICATE in exts and exts & ALPS:
            return "chrome"     # Chromium: Chrome, Edge, Opera...
        if self.grease and COMPRESS_CERTIFICATE in exts:
            return "safari"
        if not self.grease and {RECORD_SIZE_LIMIT, DELEGATED_CREDENTIALS} <= exts:
            return "firefox"
        return None


def is_grease(value):
    """RFC 8701's reserved values: 0x0a0a, 0x1a1a, ... 0xfafa."""
    return value & 0x0f0f == 0x0a0a and value >> 8 == value & 0xff


def parse_client_hello(record):
    """The ClientHello in one TLS record (bytes from its 5-byte header on); ValueError if not one."""
    if len(record) < 9 or record[0] != 22 or record[5] != 1:
        raise ValueError("not a TLS ClientHello")
    body = record[9:5 + struct.unpack("!H", record[3:5])[0]]
    at = 2 + 32                                      # client version, random
    at += 1 + body[at]                               # session id
    (size,) = struct.unpack("!H", body[at:at + 2])
    suites = struct.unpack("!%dH" % (size // 2), body[at + 2:at + 2 + size])
    at += 2 + size
    at += 1 + body[at]                               # compression methods
    extensions, groups, alpn, grease = [], [], [], any(is_grease(s) for s in suites)
    psk = None
    end = at + 2 + struct.unpack("!H", body[at:at + 2])[0]
    at += 2
    while at + 4 <= end:
        kind, size = struct.unpack("!HH", body[at:at + 4])
        data = body[at + 4:at + 4 + size]
        at += 4 + size
        if is_grease(kind):
            grease = True
            continue
        extensions.append(kind)
        if kind == EXT_SUPPORTED_GROUPS:
            groups = [g for g in struct.unpack("!%dH" % (len(data) // 2 - 1), data[2:]) if not is_grease(g)]
        elif kind == EXT_ALPN:
            alpn = _alpn_names(data[2:])
        elif kind == EXT_PRE_SHARED_KEY:   # identities<7..>: identity<1..>, obfuscated age
            psk = data[4:4 + struct.unpack("!H", data[2:4])[0]]
    return ClientHello([s for s in suites if not is_grease(s)], extensions, groups, alpn, grease, psk)


def _alpn_names(data):
    names, at = [], 0
    while at < len(data):
        names.append(data[at + 1:at + 1 + data[at]].decode("ascii", "replace"))
        at += 1 + data[at]
    return names


def fingerprint_id(hello):
    """A stable id of a TLS identity: sorted ciphers, extensions and groups, first ALPN (JA4-like)."""
    parts = [sorted(hello.ciphers), sorted(hello.extensions), hello.groups, hello.alpn[:1]]
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
    return "%s-%s" % (hello.family() or "other", digest)


def agent_family(agent):
    """The browser family a User-Agent names ("chrome", "firefox", "safari") or None."""
    agent = agent or ""
    if "Firefox/" in agent:
        return "firefox"
    if "Chrome/" in agent or "Chromium/" in agent or "Edg/" in agent:
        return "chrome"
    if "Safari/" in agent:
        return "safari"
    return None


class Visit:
    """One request the site answered: its TLS identity, protocol, path and headers in order."""

    def __init__(self, hello, protocol, method, path, headers):
        self.hello, self.protocol, self.method, self.path = hello, protocol, method, path
        self.headers = headers              # [(name, value)] as received
        self.family, self.fingerprint = hello.family(), fingerprint_id(hello)
        self.agent = next((v for k, v in headers if k.lower() == "user-agent"), None)

    def verdict(self):
        """(status, reason): what a fingerprinting WAF would answer."""
        if self.family is None:
            return 403, "not a browser"
        if agent_family(self.agent) != self.family:
            return 403, "user agent disagrees"
        return 200, "ok"

    def as_dict(self):
        return {"family": self.family, "fingerprint": self.fingerprint, "protocol": self.protocol,
                "path": self.path, "headers": self.headers, "alpn": self.hello.alpn}


class TLSSite:
    """The fingerprinting site on 127.0.0.1; ``start()``, ``url``, ``visits``, ``hellos``, ``stop()``."""

    def __init__(self, certfile, http2=True, route=None, waf=True, tickets=False, close=False):
        self.port = free_port()
        self.http2 = http2
        self.route = route
        self.waf, self.close = waf, close
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile)
        if tickets:   # TLS 1.3 stateful tickets: the ticket is the new session's id
            self.context.options |= ssl.OP_NO_TICKET
            self.context.num_tickets = 1
        self.connections = []
        self.context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
        self.visits, self.hellos = [], []
        self._listener = None
        self._open = set()
        self._lock = threading.Lock()

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def start(self):
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self._listener.close()
        with self._lock:
            for conn in list(self._open):
                _close(conn)

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            hello = parse_client_hello(_peek_record(conn))
            hello.ip = conn.getpeername()[0]
            self.hellos.append(hello)
            conn = self._track(conn, self.context.wrap_socket(conn, server_side=True))
            hello.issued = conn.session.id if conn.session is not None else None
            self.connections.append(hello)
            if conn.selected_alpn_protocol() == "h2":
                _serve_http2(self, conn, hello)
            else:
                _Http1(conn, ("127.0.0.1", 0), _Owner(self, hello))
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            _close(conn)
            self._track(conn, None)

    def _track(self, old, new):
        """Swap a connection's socket in the set ``stop()`` closes (TLS takes the plain one's fd)."""
        with self._lock:
            self._open.discard(old)
            if new is not None:
                self._open.add(new)
        return new

    def answer(self, hello, protocol, method, path, headers):
        """(status, [(name, value)], body) for one request; records its Visit."""
        visit = Visit(hello, protocol, method, path, headers)
        self.visits.append(visit)
        status, reason = visit.verdict() if self.waf else (200, "ok")
        if status != 200:
            return status, [("content-type", "text/plain")], reason.encode()
        if self.route is not None:
            return self.route(visit)
        return 200, [("content-type", "application/json")], json.dumps(visit.as_dict()).encode()


def _peek_record(conn):
    """The first TLS record, peeked (left in the socket) once all its bytes have arrived."""
    deadline = time.monotonic() + PEEK_DEADLINE
    conn.settimeout(PEEK_DEADLINE)
    while True:
        data = conn.recv(65536, socket.MSG_PEEK)
        if not data:
            raise ValueError("closed before a ClientHello")
        if len(data) >= 5 and len(data) >= 5 + struct.unpack("!H", data[3:5])[0]:
            return data
        if time.monotonic() > deadline:
            raise ValueError("incomplete ClientHello")
        time.sleep(0.002)   # the rest of the record is on its way (a big key share spans segments)


class _Owner:
    """What the HTTP/1.1 handler reads as its ``server``: the site and this connection's hello."""

    def __init__(self, site, hello):
        self.site, self.hello = site, hello


class _Http1(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, headers, body = self.server.site.answer(
            self.server.hello, "HTTP/1.1", self.command, self.path, list(self.headers.items()))
        self.send_response(status)
        if self.server.site.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


def _serve_http2(site, tls, hello):
    """Answer the requests of one HTTP/2 connection until the client goes."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    requests = {}
    while True:
        data = tls.recv(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                requests[event.stream_id] = event.headers
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                _answer_stream(site, conn, hello, event.stream_id, requests.pop(event.stream_id))
            elif isinstance(event, h2.events.ConnectionTerminated):
                tls.sendall(conn.data_to_send())
                return
        tls.sendall(conn.data_to_send())


def _answer_stream(site, conn, hello, stream_id, headers):
    pseudo = dict(h for h in headers if h[0].startswith(":"))
    plain = [(k, v) for k, v in headers if not k.startswith(":")]
    status, extra, body = site.answer(hello, "HTTP/2", pseudo[":method"], pseudo[":path"], plain)
    conn.send_headers(stream_id, [(":status", str(status)), ("content-length", str(len(body)))]
                      + [(k.lower(), v) for k, v in extra])
    size = conn.max_outbound_frame_size
    for at in range(0, len(body), size):
        conn.send_data(stream_id, body[at:at + size])
    conn.end_stream(stream_id)


def _close(conn):
    try:
        conn.close()
    except OSError:
        pass
