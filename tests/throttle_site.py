"""A site that throttles in windows, for the throttling tests and ``benchmarks.throttle``."""
import email.utils
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ThrottlingSite:
    """Every `every`-th request outside a window opens one: 429 with Retry-After in seconds,
    as an HTTP date, or none (the client's first doubling step, 1 s), in turn.  Records every
    request's arrival and when its cool-down check passed in the client (X-Checked-At)."""

    def __init__(self, first=30, every=30, modes=("seconds", "date", "none"), seconds=1.0):
        self.first, self.every, self.modes, self.seconds = first, every, modes, seconds
        self.lock = threading.Lock()
        self.windows = []         # [opened, end, mode, headers, opened]
        self.arrivals = []        # (time, path, status, when the client checked the cool-down)
        self.count = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                site.answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def throttled(self):
        return sum(1 for a in self.arrivals if a[2] == 429)

    def answer(self, handler):
        now = time.time()         # as soon as the request is read, before any wait of ours
        time.sleep(0.005)
        opened = None
        with self.lock:
            self.count += 1
            window = self.windows[-1] if self.windows and now < self.windows[-1][1] else None
            if window is None and self.count >= self.first and self.count % self.every == 0:
                mode = self.modes[len(self.windows) % len(self.modes)]
                if mode == "date":
                    end = float(math.ceil(now + self.seconds + 0.5))
                    header = {"Retry-After": email.utils.formatdate(end, usegmt=True)}
                elif mode == "seconds":
                    end, header = now + self.seconds, {"Retry-After": "%g" % self.seconds}
                else:
                    end, header = now + 1.0, {}   # the client's first doubling step
                window = opened = [now, end, mode, header, now]
                self.windows.append(window)
            status = 429 if window is not None else 200
            self.arrivals.append((now, handler.path, status,
                                  float(handler.headers.get("X-Checked-At") or 0)))
        body = b"slow down" if status == 429 else b"<h1>%s</h1>" % handler.path.encode()
        handler.send_response(status)
        for name, value in (window[3] if window else {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()

    def inside(self, known):
        """Requests that arrived inside a window although they were checked after a process had
        recorded its cool-down (`known`: when cool-downs were recorded): sent into a window."""
        out = []
        for opened, end, mode, _, _ in self.windows:
            knew = min((t for t in known if t >= opened), default=end)
            out += [(mode, "opened %.3f knew %+.3f checked %+.3f arrived %+.3f end %+.3f" % (
                opened, knew - opened, a[3] - opened, a[0] - opened, end - opened))
                for a in self.arrivals if opened <= a[0] < end and a[3] > knew]
        return out

    def in_flight(self):
        """Requests that arrived inside a window after the one that opened it."""
        return [a for a in self.arrivals for w in self.windows if w[4] < a[0] < w[1]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# Test instrumentation, loaded in the worker processes with the spider: each request says when
# its greenlet last passed the cool-down check, and each process notes in KNOWN when it recorded a
# cool-down, so the test can tell what was in flight from what was sent into a window.
CHECK_STAMP = '''
import threading as _threading, time as _time
from microspider.transport import fetcher as _fetcher, throttle as _throttle
_local = _threading.local()
_before, _headers = _throttle.Throttle.before, _fetcher.Fetcher.request_headers
_after = _throttle.Throttle.after

def _noted_after(self, *args):
    try:
        return _after(self, *args)
    except _throttle.Throttled:
        with open(KNOWN, "a") as f:
            f.write("%r\\n" % _time.time())
        raise

def _stamped_before(self, host, proxy):
    asked = _time.time()          # when the check was sent to Redis
    found = _before(self, host, proxy)
    _local.checked = asked
    return found

def _stamped_headers(self, seed):
    headers = _headers(self, seed)
    headers["X-Checked-At"] = repr(getattr(_local, "checked", 0.0))
    return headers

_throttle.Throttle.before, _fetcher.Fetcher.request_headers = _stamped_before, _stamped_headers
_throttle.Throttle.after = _noted_after
'''
