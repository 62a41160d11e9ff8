"""A real site for tests and benchmarks: Debian's Python documentation served by nginx.

Debian's ``python3.11-doc`` package holds the HTML manual of Python 3.11 (about 530
pages, 160,000 links, pages up to 2.5 MB, one broken link), written by Sphinx, not by
us: a real link graph where every page links to hundreds of others.  nginx serves it
as it is (``Content-Type: text/html`` without a charset; the pages say
``<meta charset="utf-8">``) on 127.0.0.1, logging ``$request_uri $status`` per
request, so a crawl can be checked against what was really asked.  ``scripts/realsite.sh``
installs both packages (apt) when they are missing.

``reachable()`` walks the files on disk the way the test spider walks the site
(every same-site ``a[href]``, fragment dropped), so the expected pages and titles
come from the files, not from a crawl.
"""
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html

ROOT = "/usr/share/doc/python3.11/html"
START = "/index.html"

CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    types {{ text/html html; text/css css; application/javascript js; image/png png; }}
    keepalive_requests 1000000;
    log_format site '$request_uri $status';
    access_log {dir}/access.log site;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def available():
    """Why the site cannot be served here, or None."""
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        return "nginx is not installed (bash scripts/realsite.sh)"
    if not os.path.exists(os.path.join(ROOT, "index.html")):
        return "%s is missing: install python3.11-doc (bash scripts/realsite.sh)" % ROOT
    return None


class DocSite:
    """nginx serving ROOT on a free port of 127.0.0.1; started and stopped by PID."""

    def __init__(self, workdir, root=ROOT):
        self.dir = os.path.join(str(workdir), "nginx")
        self.root = root
        self.port = _free_port()
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(dir=self.dir, port=self.port, root=self.root))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-c", conf, "-p", self.dir, "-e", os.path.join(self.dir, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(self.url + START, timeout=1) as r:
                    r.read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("nginx did not start; see %s/error.log" % self.dir)
                time.sleep(0.05)
        log = os.path.join(self.dir, "access.log")
        while not os.path.getsize(log):   # nginx logs a request after answering it
            time.sleep(0.01)
        self.reset()
        return self

    def reset(self):
        """Forget the requests so far (the start-up probe included)."""
        open(os.path.join(self.dir, "access.log"), "w").close()

    def hits(self):
        """Counter {path: requests} of the access log, and {path: status}."""
        counts, status = Counter(), {}
        with open(os.path.join(self.dir, "access.log")) as f:
            for line in f:
                path, code = line.split()
                counts[path] += 1
                status[path] = int(code)
        return counts, status

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)     # graceful: the master ends its worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def reachable(root=ROOT, start=START):
    """{path: title} of every page reachable from `start` by same-site links (files on disk),
    and the set of linked paths with no file (broken links)."""
    base = "http://site"
    seen, broken, titles, todo = {start}, set(), {}, [start]
    while todo:
        path = todo.pop()
        file = os.path.join(root, path.lstrip("/"))
        if not os.path.isfile(file):
            broken.add(path)
            continue
        if not path.endswith(".html"):
            titles[path] = None
            continue
        with open(file, "rb") as f:
            tree = lxml.html.fromstring(f.read().decode("utf-8"))
        found = tree.findtext(".//title")
        titles[path] = found if found is not None else None
        for href in tree.xpath("//a/@href"):
            url = urldefrag(urljoin(base + path, href))[0]
            if not url.startswith(base + "/"):
                continue
            target = urlsplit(url).path
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return titles, broken


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
