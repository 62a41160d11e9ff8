"""A local, offline Ctrip-like hotel site with anti-crawling faults (stdlib only).

Run it::

    python -m examples.ctrip.site --port 8765 --hotels 3000 --seed 1

It prints its base URL on one line, then serves until SIGTERM or SIGINT.  Or
use it from Python::

    site = CtripSite(hotels=200, seed=1).start()
    requests.get(site.url + "hotel/%s.html" % next(iter(site.truth())))
    site.stop()

Pages: ``/`` (cities), ``/hotels/<slug>/`` and ``/hotels/<slug>/p<N>/`` (20
hotels a page), ``/hotel/<id>.html``.  Ground truth and counters, never faulty
nor rate-limited: ``/_truth`` (JSON lines, one per hotel) and ``/_stats`` (JSON;
``?hits=0`` leaves out the per-hotel hit counts).
"""
import argparse
import json
import re
import signal
import socket
import sys
import threading
import time
from array import array
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from examples.ctrip import pages
from examples.ctrip.catalog import Catalog
from examples.ctrip.faults import FAULT_KINDS, RateLimiter, fault_for

_LIST_PATH = re.compile(r"^/hotels/([a-z]+)/(?:p(\d+)/)?$")
_HOTEL_PATH = re.compile(r"^/hotel/(\d+)\.html$")
_TRUTH_BATCH = 2000


class CtripSite:
    """The site, served from a background thread on ``host:port`` (port 0: a free one).

    ``fault_rate`` is the chance that each of the first three requests for a
    path is faulty (503, 500, dropped connection, ``slow`` seconds late, or a
    captcha page); ``rate_limit`` answers 429 beyond that many requests per
    second per client IP (0: no limit); ``broken`` hotels (default
    ``max(3, hotels // 1000)``) always lack their information block;
    ``faults=False`` turns every fault off except broken hotels.
    """

    def __init__(self, hotels=3000, seed=1, fault_rate=0.15, slow=3.0, rate_limit=0, broken=None,
                 faults=True, host="127.0.0.1", port=0, clock=time.monotonic):
        self.catalog = Catalog(hotels=hotels, seed=seed, broken=broken)
        self.fault_rate = fault_rate if faults else 0.0
        self.slow = slow
        self.limiter = RateLimiter(rate_limit if faults else 0, clock=clock)
        self.counts = SiteCounts(hotels)
        self.stopping = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.site = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="ctrip-site", daemon=True)

    @property
    def url(self):
        """Base URL, with a trailing slash: ``http://127.0.0.1:PORT/``."""
        host, port = self._server.server_address[:2]
        return "http://%s:%d/" % (host, port)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        """Stop serving; requests sleeping in a slow fault are answered at once."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def truth(self):
        """Every hotel's truth record by id.

        ``{id: {"_id": id, "name", "city", "opened": int, "renovated": int or None, "broken": bool}}``
        """
        return {record["_id"]: record for record in self.catalog.truth()}

    def fault_for(self, path, attempt):
        """The fault the ``attempt``-th request for ``path`` gets (None: a normal answer)."""
        return fault_for(self.catalog.seed, path, attempt, self.fault_rate)

    def stats(self, hits=True):
        """The counters served at ``/_stats``."""
        return self.counts.snapshot(self.catalog, hits)

    def resolve(self, path):
        """``(kind, attempt key, page maker)`` for a content path, or None when there is no such page."""
        if path == "/":
            return "index", path, lambda: pages.index_page(self.catalog)
        match = _LIST_PATH.match(path)
        if match:
            city, number = self.catalog.city(match[1]), int(match[2] or 1)
            if city and (match[2] is None or 2 <= number <= city.pages):
                return "list", path, lambda: pages.list_page(self.catalog, city, number)
            return None
        match = _HOTEL_PATH.match(path)
        hotel = match and self.catalog.hotel_by_id(match[1])
        if hotel:
            return "hotel", hotel.index, lambda: self._hotel_page(hotel)
        return None

    def _hotel_page(self, hotel):
        city = hotel.city
        near = [i for i in range(hotel.index - 2, hotel.index + 3)
                if i != hotel.index and city.first <= i < city.first + city.count]
        neighbours = [self.catalog.hotel(i) for i in near]
        if hotel.broken:
            return pages.broken_hotel_page(hotel, neighbours)
        return pages.hotel_page(hotel, neighbours)


class SiteCounts:
    """Thread-safe request, fault and hit counters, in arrays for hotels so 300k stay small."""

    def __init__(self, hotels):
        self._lock = threading.Lock()
        self.requests = Counter()
        self.answers = Counter()
        self._attempts = Counter()
        self._hotel_attempts = bytearray(hotels)  # saturates at 255: only 1..4 matter
        self._hotel_ok = array("I", [0]) * hotels

    def count_request(self, kind):
        with self._lock:
            self.requests[kind] += 1

    def count_answer(self, kind):
        with self._lock:
            self.answers[kind] += 1

    def next_attempt(self, key):
        """Count one more request for the page ``key``; returns its attempt number (from 1)."""
        with self._lock:
            if isinstance(key, int):
                self._hotel_attempts[key] = min(255, self._hotel_attempts[key] + 1)
                return self._hotel_attempts[key]
            self._attempts[key] += 1
            return self._attempts[key]

    def count_hotel_ok(self, index):
        with self._lock:
            self._hotel_ok[index] += 1

    def snapshot(self, catalog, hits=True):
        with self._lock:
            ok = {index: count for index, count in enumerate(self._hotel_ok) if count}
            result = {
                "hotels": catalog.size,
                "requests": dict(self.requests),
                "answers": dict(self.answers),
                "faults": {kind: self.answers[kind] for kind in FAULT_KINDS},
                "rate_limited": self.answers["429"],
                "broken_hits": self.answers["broken"],
                "hotels_ok": len(ok),
                "hotel_ok_duplicates": sum(ok.values()) - len(ok),
            }
        if hits:
            result["hotel_ok_hits"] = {catalog.hotel_id(index): count for index, count in ok.items()}
        return result


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # hundreds of greenlets may connect at once

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client gave up (timeout, dropped connection): nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection frees its thread after this

    def log_message(self, *args):
        pass

    def do_GET(self):
        site = self.server.site
        url = urlsplit(self.path)  # also absolute-form, as sent through a proxy
        if url.path == "/_truth":
            return self._send_truth(site)
        if url.path == "/_stats":
            hits = parse_qs(url.query).get("hits", ["1"])[0] != "0"
            return self._send(200, json.dumps(site.stats(hits), ensure_ascii=False), "application/json")
        self._answer_page(site, url.path)

    def _answer_page(self, site, path):
        page = site.resolve(path)
        site.counts.count_request(page[0] if page else "other")
        if not site.limiter.allow(self.client_address[0]):
            return self._refuse(site, 429, "访问过于频繁", {"Retry-After": "1"})
        if page is None:
            return self._refuse(site, 404, "页面不存在")
        kind, key, make = page
        fault = site.fault_for(path, site.counts.next_attempt(key))
        if fault == "drop":
            return self._drop(site)
        if fault in ("503", "500"):
            return self._refuse(site, int(fault), "服务器繁忙，请稍后再试")  # a fault, not throttling: no Retry-After
        if fault == "captcha":
            site.counts.count_answer("captcha")
            return self._send(200, pages.captcha_page())
        if fault == "slow":
            site.counts.count_answer("slow")
            site.stopping.wait(site.slow)
        self._send_content(site, kind, key, make())

    def _send_content(self, site, kind, key, body):
        if kind == "hotel" and site.catalog.hotel(key).broken:
            site.counts.count_answer("broken")
        else:
            site.counts.count_answer("ok")
            if kind == "hotel":
                site.counts.count_hotel_ok(key)
        self._send(200, body)

    def _refuse(self, site, status, message, headers=None):
        site.counts.count_answer(str(status) if status != 404 else "not_found")
        self._send(status, pages.error_page(status, message), headers=headers)

    def _drop(self, site):
        site.counts.count_answer("drop")
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, status, body, content_type="text/html", headers=None):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_truth(self, site):
        """Stream the truth as JSON lines in chunks, so 300k hotels need no big buffer."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        batch = []
        for record in site.catalog.truth():
            batch.append(json.dumps(record, ensure_ascii=False) + "\n")
            if len(batch) == _TRUTH_BATCH:
                self._write_chunk("".join(batch).encode("utf-8"))
                batch = []
        if batch:
            self._write_chunk("".join(batch).encode("utf-8"))
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m examples.ctrip.site",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--hotels", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.15)
    parser.add_argument("--slow", type=float, default=3.0, help="seconds a slow answer takes")
    parser.add_argument("--rate-limit", type=float, default=0, help="requests/s per client IP; 0: none")
    parser.add_argument("--broken", type=int, default=None,
                        help="how many hotels are broken; default max(3, hotels/1000)")
    parser.add_argument("--no-faults", dest="faults", action="store_false",
                        help="no faults at all, except broken hotels")
    args = parser.parse_args(argv)
    site = CtripSite(hotels=args.hotels, seed=args.seed, fault_rate=args.fault_rate, slow=args.slow,
                     rate_limit=args.rate_limit, broken=args.broken, faults=args.faults,
                     host=args.host, port=args.port)
    finished = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: finished.set())
    site.start()
    print(site.url, flush=True)
    finished.wait()
    site.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
