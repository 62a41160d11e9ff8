"""The fallback page server: gevent StreamServer, keep-alive, every answer prebuilt in memory.

``python -m benchmarks.pyserver --pages N --port P`` serves the site of
``benchmarks.site`` and counts requests per page.  Two control paths (not
counted) let the harness read and reset the count:

- ``GET /__hits``: JSON ``{"total", "distinct", "not_once": {path: n}, "first", "last"}``
  (``first``/``last`` are epoch seconds of the first and last page request);
  ``not_once`` lists pages of the site requested other than exactly once.
- ``GET /__reset``: zero the counts.

``/j/I.html`` is page I with a script that fetches ``/api/I.json``, answered
after ``--api-delay`` seconds (0.2 by default; the server keeps serving
meanwhile), and writes its figure into ``p#data``: a page that needs a
browser, for ``benchmarks.render --engines``.  Its requests are counted as
those of page I.

It parses only what a GET needs (request line, headers up to the blank line),
so one process serves far more pages per second than any Python crawler takes.
"""
import argparse
import json
import time

import gevent

from gevent import monkey

monkey.patch_all()

from gevent.server import StreamServer  # noqa: E402

from benchmarks.site import page  # noqa: E402

SCRIPT = (b"<p id=\"data\">loading</p><script>fetch('/api/%d.json').then(function (r) "
          b"{ return r.json(); }).then(function (d) { document.getElementById('data').textContent = "
          b"'price ' + d.price; });</script></body></html>")
NOT_FOUND = (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n\r\n")


def response(body, ctype=b"text/html"):
    return (b"HTTP/1.1 200 OK\r\nServer: benchmarks.pyserver\r\nContent-Type: " + ctype
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class PageServer:
    """Serves pages 0..n-1 and counts requests per page."""

    def __init__(self, n, api_delay=0.2):
        self.n = n
        self.api_delay = api_delay
        self.answers = [response(page(i, n)) for i in range(n)]
        self.reset()

    def scripted(self, i):
        """Page i with the script that fetches its figure (built on demand)."""
        return response(page(i, self.n).replace(b"</body></html>", SCRIPT % i, 1))

    def reset(self):
        self.hits = [0] * self.n
        self.other = 0
        self.first = self.last = None

    def report(self):
        not_once = {"/p/%d.html" % i: c for i, c in enumerate(self.hits) if c != 1}
        return {"total": sum(self.hits), "distinct": sum(1 for c in self.hits if c),
                "not_once": not_once if len(not_once) <= 1000 else dict(list(not_once.items())[:1000]),
                "not_once_count": len(not_once), "other": self.other,
                "first": self.first, "last": self.last}

    def answer(self, path):
        if path.startswith(b"/p/") and path.endswith(b".html"):
            try:
                i = int(path[3:-5])
            except ValueError:
                i = -1
            if 0 <= i < self.n:
                now = time.time()
                if self.first is None:
                    self.first = now
                self.last = now
                self.hits[i] += 1
                return self.answers[i]
        if path.startswith(b"/j/") and path.endswith(b".html"):
            i = self._index(path[3:-5])
            if i is not None:
                self._count(i)
                return self.scripted(i)
        if path.startswith(b"/api/") and path.endswith(b".json"):
            i = self._index(path[5:-5])
            if i is not None:
                gevent.sleep(self.api_delay)
                return response(json.dumps({"price": 100 + i}).encode(), b"application/json")
        if path == b"/__hits":
            return response(json.dumps(self.report()).encode(), b"application/json")
        if path == b"/__reset":
            self.reset()
            return response(b"{}", b"application/json")
        self.other += 1
        return NOT_FOUND

    def _index(self, text):
        try:
            i = int(text)
        except ValueError:
            return None
        return i if 0 <= i < self.n else None

    def _count(self, i):
        now = time.time()
        if self.first is None:
            self.first = now
        self.last = now
        self.hits[i] += 1

    def handle(self, sock, _address):
        buf = b""
        try:
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                    continue
                head, buf = buf[:end], buf[end + 4:]
                parts = head.split(b" ", 2)
                path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
                sock.sendall(self.answer(path))
                if b"\r\nconnection: close" in head.lower():
                    return
        except OSError:
            return
        finally:
            sock.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-delay", type=float, default=0.2,
                        help="seconds before /api/I.json answers (the scripted pages' data)")
    args = parser.parse_args(argv)
    site = PageServer(args.pages, args.api_delay)
    server = StreamServer(("127.0.0.1", args.port), site.handle, backlog=1024)
    server.start()
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
