"""The dashboard as a WSGI application: a tiny router, Jinja2 pages, JSON, metrics, actions.

Security model (see docs/dashboard.md):
- every page carries a strict Content-Security-Policy (scripts and styles only
  from /static/, no inline script, no framing by other sites);
- crawled bodies are hostile: shown as escaped text, or rendered from a route
  whose CSP is ``sandbox; default-src 'none'`` inside ``<iframe sandbox>``;
- actions are POST only, need the token (form field ``token`` or header
  ``X-Microspider-Token``) and a same-origin request (Origin / Referer /
  Sec-Fetch-Site checked when the browser sends them); otherwise 403, nothing done;
- bound to loopback, the Host header must name loopback (no DNS rebinding).
"""
import codecs
import hmac
import itertools
import json
import os
import re
import time
from urllib.parse import parse_qs, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import charts, data, metrics
from .i18n import LABELS, language, translator

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'")
BODY_CSP = "sandbox; default-src 'none'"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
FAILURES_PER_PAGE = 20
BODY_TEXT_LIMIT = 16 * 1024
FORM_LIMIT = 64 * 1024
CHART = {"small": (240, 48), "large": (720, 160)}
CHARSET_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,40}$")


class HTTPError(Exception):
    def __init__(self, status, label):
        super().__init__(label)
        self.status, self.label = status, label


class Request:
    """What a handler needs of one WSGI request."""

    def __init__(self, environ):
        self.environ = environ
        self.method = environ["REQUEST_METHOD"]
        self.path = environ.get("PATH_INFO") or "/"
        self.query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        self.lang = language(self.query.get("lang"))
        self._form = None

    def header(self, name):
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))

    @property
    def form(self):
        if self._form is None:
            try:
                length = min(int(self.environ.get("CONTENT_LENGTH") or 0), FORM_LIMIT)
            except ValueError:
                length = 0
            raw = self.environ["wsgi.input"].read(length) if length > 0 else b""
            self._form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        return self._form

    @property
    def origin(self):
        return "%s://%s" % (self.environ.get("wsgi.url_scheme", "http"), self.header("Host") or "")


class Dashboard:
    """The WSGI app: `redis` (the connection roles), `open_store(name)`, the actions' token."""

    def __init__(self, redis, open_store, token, loopback=True, now=time.time):
        self.redis, self.open_store, self.token = redis, open_store, token
        self.loopback, self.now = loopback, now
        self.stores = {}
        self.jinja = Environment(loader=FileSystemLoader(os.path.join(HERE, "templates")),
                                 autoescape=select_autoescape(default=True, default_for_string=True))
        self.routes = [
            ("GET", re.compile(r"^/$"), self.index),
            ("GET", re.compile(r"^/api/stat$"), self.api_stat),
            ("GET", re.compile(r"^/metrics$"), self.metrics),
            ("GET", re.compile(r"^/static/([A-Za-z0-9_.\-]+)$"), self.static),
            ("GET", re.compile(r"^/spider/([A-Za-z0-9_.\-]+)$"), self.spider),
            ("GET", re.compile(r"^/spider/([A-Za-z0-9_.\-]+)/failure/([0-9a-f]{1,64})/body$"),
             self.failure_body),
            ("POST", re.compile(r"^/spider/([A-Za-z0-9_.\-]+)/(retry|relay|unpark)$"), self.action),
        ]

    # -- WSGI ---------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            status, headers, body = self.dispatch(request)
        except HTTPError as exc:
            status, headers, body = self.error_page(request, exc.status, exc.label)
        except Exception as exc:  # Redis or the store down: say so, keep serving
            if not _is_backend_error(exc):
                raise
            status, headers, body = self.error_page(request, 503, "unavailable", str(exc).splitlines()[0])
        headers = dict({"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                        "Referrer-Policy": "same-origin"}, **headers)
        if "Content-Security-Policy" not in headers:
            headers.update({"Content-Security-Policy": PAGE_CSP, "X-Frame-Options": "DENY"})
        headers["Content-Length"] = str(len(body))
        start_response(_status_line(status), list(headers.items()))
        return [body] if request.method != "HEAD" else [b""]

    def dispatch(self, request):
        if self.loopback and not _loopback_host(request.header("Host")):
            raise HTTPError(403, "forbidden")
        method = "GET" if request.method == "HEAD" else request.method
        allowed = set()
        for verb, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match:
                if verb == method:
                    return handler(request, *match.groups())
                allowed.add(verb)
        if allowed:
            raise HTTPError(405, "method")
        raise HTTPError(404, "not_found")

    # -- pages --------------------------------------------------------------------
    def index(self, request):
        names = data.spiders(self.redis)
        rows = [self.figures(name) for name in names]
        context = {"rows": rows, "chain": charts.chain(data.upstreams(self.redis, names)),
                   "refresh": "/?partial=1&lang=" + request.lang}
        return self.page(request, "_overview.html" if request.query.get("partial") else "index.html",
                         context)

    def spider(self, request, name):
        self.require_spider(name)
        row = self.figures(name, chart="large")
        context = {"row": row, "name": name, "refresh": "/spider/%s?partial=1&lang=%s" % (name, request.lang)}
        if request.query.get("partial"):
            return self.page(request, "_spider_live.html", context)
        ages, parked, complete = data.backlog_by_age(self.redis, name)
        offset = _int(request.query.get("offset"), 0)
        docs = list(itertools.islice(self.store(name).iter_failures(), offset, offset + FAILURES_PER_PAGE))
        context.update(
            ages=sorted(ages.items()), parked=parked, ages_complete=complete,
            scan_cap=data.BACKLOG_SCAN_CAP, failures=[_failure_view(d) for d in docs], offset=offset,
            per_page=FAILURES_PER_PAGE, max_age=max(list(ages) + [data.run_settings(self.redis, name)
                                                                 .get("max_age", 0)]))
        return self.page(request, "spider.html", context)

    def figures(self, name, chart="small"):
        """One spider's row: its stat, state, counters and chart."""
        stat = data.stat(self.redis, self.store(name), name)
        state, reason = data.state(self.redis, name, stat["workers"])
        width, height = CHART[chart]
        points, peak = charts.rate_line(data.pages_history(self.redis, name), data.BUCKET, width, height)
        return {"name": name, "stat": stat, "state": state, "reason": reason,
                "chart": {"points": points, "peak": peak, "width": width, "height": height}}

    def failure_body(self, request, name, fingerprint):
        """A stored body as the site sent it, for <iframe sandbox>: never runs in our origin."""
        self.require_spider(name)
        doc = data.failure(self.store(name), fingerprint)
        if doc is None or doc.get("body") is None:
            raise HTTPError(404, "not_found")
        charset = doc.get("encoding") if CHARSET_RE.match(doc.get("encoding") or "") else None
        kind = "text/html" + ("; charset=" + charset if charset else "")
        return 200, {"Content-Type": kind, "Content-Security-Policy": BODY_CSP,
                     "X-Frame-Options": "SAMEORIGIN"}, doc["body"]

    # -- machine-readable ---------------------------------------------------------
    def api_stat(self, request):
        result = {name: data.stat(self.redis, self.store(name), name) for name in data.spiders(self.redis)}
        body = json.dumps(result, sort_keys=True).encode()
        return 200, {"Content-Type": "application/json"}, body

    def metrics(self, request):
        def read():
            return {name: (data.stat(self.redis, self.store(name), name),
                           data.counters(self.redis, name).get("ok", 0))
                    for name in data.spiders(self.redis)}
        return 200, {"Content-Type": metrics.CONTENT_TYPE}, metrics.exposition(read)

    def static(self, request, filename):
        path = os.path.join(STATIC, filename)
        kind = STATIC_TYPES.get(os.path.splitext(filename)[1])
        if kind is None or not os.path.isfile(path):
            raise HTTPError(404, "not_found")
        with open(path, "rb") as f:
            return 200, {"Content-Type": kind, "Cache-Control": "max-age=300"}, f.read()

    # -- actions ------------------------------------------------------------------
    def action(self, request, name, what):
        if not self.authorized(request):
            raise HTTPError(403, "forbidden")
        self.require_spider(name)
        t = translator(request.lang)
        if what == "retry":
            sent, malformed, unbacklogged = data.retry_failures(self.redis, self.store(name), name)
            message = t("retried") % (sent, unbacklogged, malformed)
        elif what == "relay":
            message = t("relayed") % data.relay_now(self.redis, name)
        else:
            max_age = _int(request.form.get("max_age"), None)
            if max_age is None or max_age < 0:
                raise HTTPError(400, "bad_max_age")
            message = t("unparked") % data.unpark(self.redis, name, max_age)
        return self.page(request, "done.html", {"name": name, "message": message})

    def authorized(self, request):
        """The right token, from this dashboard's own origin (when the browser says where from)."""
        given = request.header("X-Microspider-Token") or request.form.get("token") or ""
        if not self.token or not hmac.compare_digest(given.encode(), self.token.encode()):
            return False
        if request.header("Sec-Fetch-Site") not in (None, "same-origin", "none"):
            return False
        origin, referer = request.header("Origin"), request.header("Referer")
        if origin is not None:
            return origin == request.origin
        return referer is None or referer.startswith(request.origin + "/")

    # -- helpers ------------------------------------------------------------------
    def store(self, name):
        if name not in self.stores:
            self.stores[name] = self.open_store(name)
        return self.stores[name]

    def require_spider(self, name):
        if not data.known(self.redis, name):
            raise HTTPError(404, "not_found")

    def page(self, request, template, context, status=200):
        t = translator(request.lang)
        other = "zh" if request.lang == "en" else "en"
        html = self.jinja.get_template(template).render(
            t=t, lang=request.lang, other_lang=other, path=_local(request.path), labels=LABELS,
            now=time.strftime("%H:%M:%S", time.localtime(self.now())), **context)
        return status, {"Content-Type": "text/html; charset=utf-8"}, html.encode("utf-8")

    def error_page(self, request, status, label, detail=""):
        return self.page(request, "error.html", {"label": label, "detail": detail, "status": status},
                         status=status)

    def close(self):
        for store in self.stores.values():
            store.close()


def _failure_view(doc):
    body = doc.get("body")
    text = None
    if body is not None:
        encoding = doc.get("encoding") or "utf-8"
        try:
            codecs.lookup(encoding)
        except LookupError:
            encoding = "utf-8"
        text = body[:BODY_TEXT_LIMIT].decode(encoding, "replace")
    headers = doc.get("headers") or {}
    return {"id": doc["_id"], "url": doc.get("url"), "error": doc.get("error"),
            "message": doc.get("message"), "traceback": doc.get("traceback"),
            "status": doc.get("status"), "attempts": doc.get("attempts"),
            "last_failed": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doc.get("last_failed") or 0)),
            "seed": json.dumps(doc.get("seed"), ensure_ascii=False, sort_keys=True, indent=1),
            "headers": "\n".join("%s: %s" % kv for kv in sorted(headers.items())),
            "body_text": text, "body_size": len(body) if body is not None else 0,
            "body_shown": min(len(body), BODY_TEXT_LIMIT) if body is not None else 0}


def _loopback_host(host):
    if not host:
        return False
    name = urlsplit("//" + host).hostname or ""
    return name in LOOPBACK_NAMES or name.startswith("127.")


def _is_backend_error(exc):
    import redis

    from ..errors import StoreError

    return isinstance(exc, (redis.RedisError, StoreError, OSError))


def _int(text, default):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def _status_line(status):
    return "%d %s" % (status, {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                               405: "Method Not Allowed", 503: "Service Unavailable"}.get(status, ""))


def _local(path):
    """`path` with one leading slash: "//host/x" in a link would leave the dashboard for host."""
    return "/" + path.lstrip("/")
