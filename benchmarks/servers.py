"""The page servers of the benchmark (nginx, or the gevent fallback) and their hit counts.

Both answer ``/p/I.html`` for I in 0..N-1 on 127.0.0.1 and report, for the
requests made since ``reset()``, how often each page was fetched and when the
first and last page request came (``hits()``).  nginx counts through its access
log (``$msec $request_uri $status``, one line per request); the fallback counts
in memory.  Both are started and stopped by PID.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from benchmarks.site import write_site

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    default_type text/html;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 10000000;
    open_file_cache max=200000 inactive=300s;
    etag off;
    log_format bench '$msec $request_uri $status';
    access_log {dir}/access.log bench;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root};
        location / {{ }}
    }}
}}
"""


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                r.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the page server at %s did not come up" % url)
            time.sleep(0.05)


def _summarise(counts, n, first, last, other=0):
    """hits() result from per-path counts (only /p/I.html with 0 <= I < n are the site)."""
    hits = [0] * n
    for path, c in counts.items():
        i = _page_index(path, n)
        if i is None:
            other += c
        else:
            hits[i] += c
    not_once = {"/p/%d.html" % i: c for i, c in enumerate(hits) if c != 1}
    return {"total": sum(hits), "distinct": sum(1 for c in hits if c),
            "not_once": dict(list(not_once.items())[:1000]), "not_once_count": len(not_once),
            "other": other, "first": first, "last": last}


def _page_index(path, n):
    if path.startswith("/p/") and path.endswith(".html"):
        try:
            i = int(path[3:-5])
        except ValueError:
            return None
        return i if 0 <= i < n else None
    return None


class NginxServer:
    """nginx from the system's packages: one worker process, the site on disk."""

    kind = "nginx"

    def __init__(self, workdir, pages):
        self.dir = os.path.join(workdir, "nginx")
        self.root = os.path.join(workdir, "site")
        self.pages = pages
        self.port = free_port()
        self.proc = None
        self.offset = 0

    @staticmethod
    def available():
        return shutil.which("nginx") is not None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def version(self):
        out = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
        return (out.stderr or out.stdout).strip().replace("nginx version: ", "")

    def start(self):
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        write_site(self.root, self.pages)
        for path in (os.path.dirname(self.dir), self.root, os.path.join(self.root, "p")):
            os.chmod(path, 0o755)  # the nginx worker may run as nobody
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, port=self.port, root=self.root))
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(self.url + "/p/0.html", timeout=15)
        except RuntimeError:
            self.stop()
            raise RuntimeError("nginx did not start: %s" % self._error_log())
        self.reset()
        return self

    def _error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return "(no error log)"

    def reset(self):
        self.offset = os.path.getsize(os.path.join(self.dir, "access.log"))

    def hits(self, settle=2.0):
        """Fetches per page since reset(); nginx writes a log line just after its answer, so the
        log is read again (for at most `settle` seconds) until every page has a line."""
        deadline = time.monotonic() + settle
        while True:
            counts, first, last = self._read_log()
            seen = sum(1 for path in counts if _page_index(path, self.pages) is not None)
            if seen >= self.pages or time.monotonic() > deadline:
                return _summarise(counts, self.pages, first, last)
            time.sleep(0.01)

    def _read_log(self):
        counts, first, last = {}, None, None
        with open(os.path.join(self.dir, "access.log"), "rb") as f:
            f.seek(self.offset)
            for line in f:
                parts = line.split()
                if len(parts) != 3:
                    continue
                ts, path, status = float(parts[0]), parts[1].decode(), parts[2]
                if status != b"200":
                    path = "%s [%s]" % (path, status.decode())
                counts[path] = counts.get(path, 0) + 1
                if _page_index(path, self.pages) is not None:
                    first = ts if first is None else min(first, ts)
                    last = ts if last is None else max(last, ts)
        return counts, first, last

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then the master exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class PythonServer:
    """The fallback: ``benchmarks.pyserver`` (gevent, pages prebuilt in memory)."""

    kind = "python"
    version = "benchmarks.pyserver (gevent StreamServer)"

    def __init__(self, workdir, pages):
        self.pages = pages
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        env = dict(os.environ, PYTHONPATH=_pythonpath())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.pyserver", "--pages", str(self.pages),
             "--port", str(self.port)], cwd=REPO, env=env, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line.startswith(b"ready"):
            self.stop()
            raise RuntimeError("benchmarks.pyserver did not start")
        wait_for(self.url + "/__hits", timeout=15)
        self.reset()
        return self

    def _get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def reset(self):
        self._get("/__reset")

    def hits(self):
        return self._get("/__hits")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def open_server(kind, workdir, pages):
    """The server to use: `kind` ('nginx', 'python') or None for nginx when installed."""
    if kind is None:
        kind = "nginx" if NginxServer.available() else "python"
    if kind == "nginx":
        if not NginxServer.available():
            raise RuntimeError("--server nginx: no nginx on PATH (apt-get install nginx)")
        return NginxServer(workdir, pages)
    return PythonServer(workdir, pages)


def _pythonpath():
    old = os.environ.get("PYTHONPATH")
    return REPO + (os.pathsep + old if old else "")
