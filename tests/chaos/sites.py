"""The sites the chaos trials crawl: the Ctrip-like site with per-page counts, and a raw faulty one.

``CountingSite`` is ``examples.ctrip.site.CtripSite`` that also counts, per
path, how often it served the real page (not a fault), so duplicated fetches
can be reported.  ``NetFaultSite`` speaks HTTP/1.1 by hand over raw sockets so
it can misbehave below HTTP: resets, silence, truncated and over-long bodies,
lying Content-Length, invalid encodings, broken gzip, garbage status lines,
redirect loops.  Both listen on 127.0.0.1 only.
"""
import collections
import gzip
import random
import socket
import struct
import threading

from examples.ctrip.site import CtripSite


class CountingSite(CtripSite):
    """The Ctrip-like site, counting the real pages it served per path."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.served = collections.Counter()
        self._served_lock = threading.Lock()

    def resolve(self, path):
        page = super().resolve(path)
        if page is None:
            return None
        kind, key, make = page

        def counted():
            with self._served_lock:
                self.served[path] += 1
            return make()

        return kind, key, counted

    def duplicated(self):
        """Real pages served beyond one per path, broken hotels left out (they are refetched by design)."""
        broken = {"/hotel/%s.html" % self.catalog.hotel_id(i) for i in self.catalog.broken}
        with self._served_lock:
            return sum(n - 1 for path, n in self.served.items() if n > 1 and path not in broken)


# -- the raw faulty site -----------------------------------------------------------------
# Faults that end in a failed fetch (retried, then backlogged):
FETCH_FAULTS = ("reset", "reset_mid", "silence", "truncated", "huge", "huge_chunked", "bad_gzip",
                "bad_status", "redirect_loop")
# Faults of an answer that arrives but is wrong: parse rejects it (failure store + backlog)
PARSE_FAULTS = ("short_length",)
# Odd but valid answers that parse must get through (an item each)
ODD_ANSWERS = ("bad_utf8", "unknown_charset", "gbk_declared", "redirect_once")
MARK = b'<b id="mark">page-%d</b>'


def fault_plan(pages, seed, forever_share=0.25, max_transient=3):
    """{page: (fault, attempts)}: `fault` on the first `attempts` requests (None: forever).

    Every fault kind comes forever once and for 1, 2 and 3 attempts once (the first
    pages); the other pages are drawn at random, a third of them healthy.
    """
    rng = random.Random("%s/netplan" % seed)
    faulty = FETCH_FAULTS + PARSE_FAULTS
    fixed = [(k, None) for k in faulty + ODD_ANSWERS]
    fixed += [(k, n) for n in range(1, max_transient + 1) for k in faulty if k != "redirect_loop"]
    plan = {}
    for page in range(pages):
        if page < len(fixed):
            plan[page] = fixed[page]
            continue
        kind = rng.choice(faulty + ODD_ANSWERS + ("ok",) * 6)
        if kind in ODD_ANSWERS or kind == "ok" or kind == "redirect_loop" or rng.random() < forever_share:
            plan[page] = (kind, None)
        else:
            plan[page] = (kind, rng.randint(1, max_transient))
    return plan


class NetFaultSite:
    """``/index`` links ``/n/0`` .. ``/n/<pages-1>``; each page misbehaves as its plan says.

    ``served[page]`` counts the good answers given for a page, ``requests[page]``
    the requests for the page itself (fetch attempts; redirect hops not counted).
    """

    def __init__(self, plan, max_body, silence=2.0):
        self.plan = plan
        self.max_body = max_body
        self.silence = silence
        self.served = collections.Counter()
        self.requests = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="netfault-site")

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self._sock.getsockname()[1]

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def recovers(self, page, passes):
        """True if the page should end with an item after `passes` fetch attempts at most."""
        kind, attempts = self.plan[page]
        return attempts is not None and attempts < passes or kind in ODD_ANSWERS + ("ok",)

    def duplicated(self):
        with self._lock:
            return sum(n - 1 for n in self.served.values() if n > 1)

    # -- serving -------------------------------------------------------------------
    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(5)
        reader = conn.makefile("rb")
        try:
            while not self._stop.is_set():
                head = _read_head(reader)
                if head is None:
                    return
                if not self._answer(conn, head.split()[1].decode("latin-1")):
                    return
        except OSError:
            pass
        finally:
            reader.close()
            conn.close()

    def _answer(self, conn, path):
        """Answer one request; False when the connection must end."""
        if path == "/index":
            links = "".join('<a href="/n/%d">%d</a>\n' % (p, p) for p in sorted(self.plan))
            return _send(conn, 200, links.encode())
        page, hop = _page_of(path)
        if page is None or page not in self.plan:
            return _send(conn, 404, b"no such page")
        kind, attempts = self.plan[page]
        with self._lock:   # a fetch attempt is a request for the page itself, not a redirect hop
            self.requests[page] += hop is None
            attempt = self.requests[page]
        if kind == "redirect_loop" and hop is not None:
            return _send(conn, 302, b"", {"Location": "/n/%d/%s" % (page, "b" if hop == "a" else "a")})
        if kind == "redirect_once" and hop is None:
            return _send(conn, 302, b"", {"Location": "/n/%d/final" % page})
        faulty = attempts is None or attempt <= attempts
        if kind in ODD_ANSWERS or kind == "ok" or not faulty:
            return self._good(conn, page, kind)
        return getattr(self, "_" + kind)(conn, page)

    def _body(self, page):
        return b"<html><body><h1>page</h1>" + MARK % page + b"<p>" + b"x" * 200 + b"</p></body></html>"

    def _good(self, conn, page, kind):
        body = self._body(page)
        headers = {}
        if kind == "bad_utf8":
            body = body.replace(b"<h1>page</h1>", b"<h1>\xff\xfe\xc3\x28 \xed\xa0\x80</h1>")
        elif kind == "unknown_charset":
            headers["Content-Type"] = "text/html; charset=x-no-such-charset"
        elif kind == "gbk_declared":
            body = body.replace(b"<h1>page</h1>", "<h1>页面 \u00e9</h1>".encode("utf-8") + b"\x80\xff")
            headers["Content-Type"] = "text/html; charset=gbk"
        with self._lock:
            self.served[page] += 1
        return _send(conn, 200, body, headers)

    def _reset(self, conn, page):
        _linger_reset(conn)
        return False

    def _reset_mid(self, conn, page):
        body = self._body(page)
        conn.sendall(_head(200, len(body)) + body[: len(body) // 3])
        _linger_reset(conn)
        return False

    def _silence(self, conn, page):
        self._stop.wait(self.silence)  # longer than the crawler's --timeout
        return False

    def _truncated(self, conn, page):
        body = self._body(page)
        conn.sendall(_head(200, len(body) + 500) + body)  # promises more than it sends, then closes
        return False

    def _huge(self, conn, page):
        conn.sendall(_head(200, self.max_body * 4) + b"y" * 4096)  # refused on the header alone
        return False

    def _huge_chunked(self, conn, page):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"z" * 16384
        for _ in range(self.max_body // len(chunk) + 4):  # no length given: refused while reading
            if self._stop.is_set():
                break
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        return False

    def _bad_gzip(self, conn, page):
        body = gzip.compress(self._body(page))[:-12] + b"\x00" * 12  # a corrupt gzip stream
        return _send(conn, 200, body, {"Content-Encoding": "gzip"})

    def _bad_status(self, conn, page):
        conn.sendall(b"HTTP/1.1 abc not a status\r\n\xff\xfe\r\n\r\n")
        return False

    def _short_length(self, conn, page):
        body = self._body(page)
        cut = body.index(b'<b id="mark">') + 5  # the length stops inside the mark: parse rejects it
        conn.sendall(_head(200, cut) + body)     # ... and the rest poisons the connection
        return False

    def _redirect_loop(self, conn, page):
        return _send(conn, 302, b"", {"Location": "/n/%d/a" % page})


def _page_of(path):
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "n" and parts[1].isdigit():
        return int(parts[1]), parts[2] if len(parts) > 2 else None
    return None, None


def _read_head(reader):
    first = reader.readline(65537)
    if not first.strip():
        return None
    while True:
        line = reader.readline(65537)
        if line in (b"\r\n", b"\n", b""):
            return first
        # headers are ignored; requests without a body only (GET)


def _head(status, length, headers=None):
    reason = {200: "OK", 302: "Found", 404: "Not Found"}.get(status, "X")
    lines = ["HTTP/1.1 %d %s" % (status, reason), "Content-Length: %d" % length]
    headers = dict({"Content-Type": "text/html; charset=utf-8"}, **(headers or {}))
    lines += ["%s: %s" % kv for kv in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _send(conn, status, body, headers=None):
    conn.sendall(_head(status, len(body), headers) + body)
    return True


def _linger_reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
