"""One fetch of a seed, with immediate retries through rotating proxies.

``Fetcher`` holds what every transport shares: the retry loop, a different
proxy per retry, the rate limiters, proxy health reports, retryable statuses
and bans, and the request headers (User-Agent rotation, seed cookies).  A
transport implements only ``_request(seed, proxy)``, one HTTP exchange that
returns a ``microspider.transport.response.Response`` or raises one of its
``transport_errors``:

- ``Urllib3Fetcher`` (here): urllib3, which requests itself sits on, with
  requests' per-call session work (merging settings, preparing the request,
  scanning the environment for proxies) left out;
- ``CurlFetcher`` (``microspider.transport.curl_fetcher``): libcurl's multi interface
  driven by the gevent loop;
- the others listed in ``microspider.transport``, whose ``make_fetcher``
  picks one by ``--fetcher``.

What parse sees is the same from all: status, headers, body, encoding, final
URL after redirects, cookies from ``Set-Cookie``, ``.request`` (the one
builder: ``microspider.transport.response.make_response``).

No gevent import here: the worker entry point has already patched sockets and
``time.sleep``, so waits below are cooperative there and plain in tests.
"""
import itertools
import time
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
from urllib3.util.retry import Retry

from .. import __version__
from ..errors import FetchError, NoProxy, Throttled
from ..identity import from_agent, language_of, without_owned
from .response import make_response, sent_request

# 407: the proxy refused us; retried through another one
RETRYABLE = frozenset([407, 429]) | frozenset(range(500, 600))
# urllib3 retries nothing itself (microspider retries through other proxies) but follows redirects
REDIRECTS = Retry(total=None, connect=0, read=0, redirect=20, status=0, other=0,
                  raise_on_redirect=True, raise_on_status=False)
DEFAULT_HEADERS = {"User-Agent": "microspider/%s (+python-urllib3)" % __version__, "Accept": "*/*",
                   "Accept-Encoding": "gzip, deflate"}
FETCH_ERRORS = (urllib3.exceptions.HTTPError, OSError, FetchError, ValueError)


class Fetcher:
    """Fetches seeds for one spider; a subclass supplies the transport (``_request``)."""

    default_headers = DEFAULT_HEADERS
    transport_errors = FETCH_ERRORS
    throttle = None  # a transport.throttle.Throttle: 429s cool the host down, for every process

    def __init__(self, spider, settings, proxies=None, limiter=None, host_limiter=None,
                 sleep=time.sleep, sessions=None):
        self.spider = spider
        self.retry = settings.retry
        self.max_body = settings.max_body
        self.timeout = settings.timeout
        self.proxies = proxies
        self.limiter = limiter
        self.host_limiter = host_limiter
        self.sleep = sleep
        self.headers = dict(self.default_headers, **(spider.headers or {}))
        agents = list(spider.user_agents or ())
        self._agents = itertools.cycle(agents) if agents and sessions is None else None
        self.sessions = sessions  # a microspider.sessions.SessionPool: it owns identities and cookies
        self.follow_redirects = sessions is None  # with sessions, each hop's cookies go to the jar
        self.retries = 0  # immediate retries made, for the stats
        self.fallbacks = 0  # pages rendered again by a fallback engine, for the stats (render_fallbacks)

    def fetch(self, seed):
        """The response for a seed, or FetchError after ``retry`` immediate retries."""
        host = urlsplit(seed.url).hostname
        tried, in_sessions = [], []
        reason = None
        for attempt in range(self.retry + 1):
            if attempt:
                self.retries += 1
            response, reason, session, proxy, started = self._attempt(seed, host, tried, in_sessions)
            if response is None:
                continue
            if session is not None and self.spider.is_banned(response):
                reason = "HTTP %d (banned; session retired)" % response.status_code
                self.sessions.retire(session, "banned", host)  # the proxy is judged by the pool
                continue
            if response.status_code in RETRYABLE or self.spider.is_banned(response):
                reason = "HTTP %d%s" % (response.status_code,
                                        "" if response.status_code in RETRYABLE else " (banned)")
                self._report(proxy, host, False)
                continue
            self._report(proxy, host, True, time.monotonic() - started)
            return response
        raise FetchError("%s after %d attempts: %s" % (seed.url, self.retry + 1, reason))

    def fetch_resource(self, seed):
        """`seed` fetched as a page would be (proxy, session, identity, rate limits, cool-downs),
        with its status as answered, banned or not: robots.txt, sitemaps.

        Retried through other proxies on connection errors only; FetchError when none answered.
        """
        host = urlsplit(seed.url).hostname
        tried, in_sessions, reason = [], [], None
        for _ in range(self.retry + 1):
            response, reason, _, _, _ = self._attempt(seed, host, tried, in_sessions)
            if response is not None:
                return response
        raise FetchError("%s after %d attempts: %s" % (seed.url, self.retry + 1, reason))

    def _attempt(self, seed, host, tried, in_sessions):
        """One exchange through the next session or proxy, after the rate limits and cool-downs:
        (response or None, reason when None, session, proxy, start time)."""
        session = self._session(host, in_sessions)
        proxy = self.sessions.proxy_of(session) if session else self._cool_proxy(host, tried)
        doubling = self.throttle.before(host, proxy) if self.throttle else False
        self._wait_rate(host)
        started = time.monotonic()
        try:
            response = self._exchange(seed, proxy, session)
        except self.transport_errors as exc:
            if isinstance(exc, NoProxy):
                raise
            self._report(proxy, host, False)
            return None, "%s: %s" % (type(exc).__name__, _first_line(exc)), session, proxy, started
        if self.throttle is not None:  # throttling is neither a ban nor a failed attempt
            self.throttle.after(response, host, proxy, doubling)
        return response, None, session, proxy, started

    def _request(self, seed, proxy):
        """One exchange for `seed` through `proxy` (None: direct); a Response."""
        raise NotImplementedError("%s must implement _request" % type(self).__name__)

    def _exchange(self, seed, proxy, session):
        if session is None:
            return self._request(seed, proxy)
        return self.sessions.exchange(self._request, seed, session)

    def _session(self, host, tried):
        """The session of the next attempt (None with sessions off); another one on a retry."""
        if self.sessions is None:
            return None
        session = self.sessions.take(host, exclude=tried) or (tried and self.sessions.take(host))
        if not session:
            raise NoProxy("no usable session for %s" % host)
        tried.append(session.id)
        return session

    def request_once(self, seed, proxy=None):
        """One exchange through `proxy`, no retry, status as answered (``proxy check``)."""
        return self._request(seed, proxy)

    def _cool_proxy(self, host, tried):
        """The next proxy (None: direct) through which `host` is not cooling down.

        Throttled (the shortest wait) when it cools down through every proxy tried."""
        if self.throttle is None or self.proxies is None:
            return self._proxy(host, tried)
        cooling = None
        for _ in range(len(self.proxies)):
            proxy = self._proxy(host, tried)
            try:
                self.throttle.before(host, proxy)
                return proxy
            except Throttled as exc:
                cooling = exc if cooling is None or exc.wait < cooling.wait else cooling
                if len(set(p.url for p in tried)) >= len(self.proxies):
                    break
        raise cooling

    def _proxy(self, host, tried):
        if self.proxies is None:
            return None
        proxy = self.proxies.acquire(host, exclude=tried)
        if proxy is None and tried:
            proxy = self.proxies.acquire(host)  # fewer proxies than retries: reuse
        if proxy is None:
            raise NoProxy("no usable proxy for %s" % host)
        tried.append(proxy)
        return proxy

    def _report(self, proxy, host, ok, latency=None):
        if proxy is not None:
            self.proxies.report(proxy, host, ok, latency)

    def _wait_rate(self, host):
        for limiter in (self.limiter, self.host_limiter and self.host_limiter.for_host(host)):
            if limiter:
                wait = limiter.reserve()
                if wait > 0:
                    self.sleep(wait)

    def request_headers(self, seed):
        headers = dict(self.headers, **seed.headers) if seed.headers else dict(self.headers)
        if self._agents:   # the User-Agent's whole identity: client hints and language agree
            identity = from_agent(next(self._agents), language_of(headers))
            headers = dict(without_owned(headers), **identity.headers())
        if seed.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % kv for kv in seed.cookies.items())
        if isinstance(seed.data, dict) and "Content-Type" not in headers:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return headers

    def rerender(self, seed, response):
        """Another response for `seed` after parse raised on `response`, or None (the default).

        The browser transport renders a page of Lightpanda's again in Chromium
        (``render_fallback``); every other transport has nothing better to offer.
        """
        return None

    def close(self):
        """Release connections; the fetcher is not used afterwards."""


class Urllib3Fetcher(Fetcher):
    """The urllib3 transport: one connection pool per process, one per proxy."""

    def __init__(self, spider, settings, **kwargs):
        super().__init__(spider, settings, **kwargs)
        self._timeout = urllib3.Timeout(connect=settings.timeout, read=settings.timeout)
        self._pool_args = {"num_pools": 64, "maxsize": max(settings.pool, 10), "block": False,
                           "retries": False, **_tls_args(spider.verify)}
        self.direct = urllib3.PoolManager(**self._pool_args)
        self._via = {}  # proxy url -> ProxyManager

    def _manager(self, proxy):
        if proxy is None:
            return self.direct
        manager = self._via.get(proxy.url)
        if manager is None:
            if proxy.url.startswith("socks"):
                from urllib3.contrib.socks import SOCKSProxyManager

                manager = SOCKSProxyManager(proxy.url, **self._pool_args)
            else:
                manager = urllib3.ProxyManager(proxy.url, proxy_headers=_proxy_auth(proxy.url),
                                               **self._pool_args)
            self._via[proxy.url] = manager
        return manager

    def _request(self, seed, proxy):
        url = seed.request_url()
        headers = self.request_headers(seed)
        body = seed.body()
        raw = self._manager(proxy).urlopen(
            seed.method, url, body=body, headers=headers, timeout=self._timeout, retries=REDIRECTS,
            redirect=self.follow_redirects, preload_content=False, decode_content=True)
        try:
            content = self._read_body(raw)
        except BaseException:
            raw.close()  # the body was not read to its end: the connection cannot be reused
            raise
        raw.release_conn()
        final = url
        if raw.retries is not None and raw.retries.history:
            for step in raw.retries.history:
                if step.redirect_location:
                    final = urljoin(final, step.redirect_location)
        return make_response(raw.status, final, raw.headers, content,
                             sent_request(seed.method, url, headers, body), reason=raw.reason)

    def stream(self, seed, chunk=65536):
        """The body of `seed` in chunks of about `chunk` bytes, never whole in memory (sitemaps).

        Through the spider's proxies and headers, retried through another proxy on
        connection errors; FetchError when no proxy answered or the status is not 2xx.
        A generator: ``close()`` it to release the connection early.
        """
        host = urlsplit(seed.url).hostname
        tried, reason, raw = [], None, None
        for _ in range(self.retry + 1):
            proxy = self._proxy(host, tried)
            try:
                raw = self._manager(proxy).urlopen(
                    seed.method, seed.request_url(), body=seed.body(), headers=self.request_headers(seed),
                    timeout=self._timeout, retries=REDIRECTS, redirect=True, preload_content=False,
                    decode_content=True)
                break
            except self.transport_errors as exc:
                reason = "%s: %s" % (type(exc).__name__, _first_line(exc))
                self._report(proxy, host, False)
        if raw is None:
            raise FetchError("%s after %d attempts: %s" % (seed.url, self.retry + 1, reason))
        try:
            if not 200 <= raw.status < 300:
                raise FetchError("HTTP %d from %s" % (raw.status, seed.url))
            try:
                yield from raw.stream(chunk, decode_content=True)
            except self.transport_errors as exc:
                raise FetchError("%s: %s" % (type(exc).__name__, _first_line(exc))) from None
        finally:
            raw.close()

    def _read_body(self, raw):
        length = raw.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.max_body:
            raise FetchError("body of %s bytes is over --max-body %d" % (length, self.max_body))
        content = raw.read(self.max_body + 1)
        if len(content) > self.max_body:
            raise FetchError("body is over --max-body %d bytes" % self.max_body)
        return content

    def close(self):
        self.direct.clear()
        for manager in self._via.values():
            manager.clear()


def _tls_args(verify):
    if not verify:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return {"cert_reqs": "CERT_NONE"}
    try:
        import certifi  # what requests verifies with

        return {"cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()}
    except ImportError:  # pragma: no cover
        return {"cert_reqs": "CERT_REQUIRED"}


def _proxy_auth(url):
    """Proxy-Authorization for a proxy URL's user:password (urllib3 does not read it itself)."""
    parts = urlsplit(url)
    if parts.username is None:
        return None
    credentials = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
    return urllib3.util.make_headers(proxy_basic_auth=credentials)


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
