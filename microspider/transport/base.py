"""One fetch of a seed, with immediate retries through rotating proxies.

``Fetcher`` holds what every transport shares: the retry loop, a different
proxy per retry, the rate limiters, proxy health reports, retryable statuses
and bans, and the request headers (User-Agent rotation, seed cookies).  A
transport implements only ``_request(seed, proxy)``, one exchange that
returns a ``microspider.transport.response.Response`` (built by
``make_response``) or raises one of its ``transport_errors``.  The transports
are listed in ``microspider.transport``, whose ``make_fetcher`` picks one.

No gevent import here: the worker entry point has already patched sockets and
``time.sleep``, so waits below are cooperative there and plain in tests.
"""
import itertools
import time
from urllib.parse import urlsplit

from ..errors import FetchError, NoProxy

# 407: the proxy refused us; retried through another one
RETRYABLE = frozenset([407, 429]) | frozenset(range(500, 600))
DEFAULT_HEADERS = {"User-Agent": "microspider/0.1 (+python-urllib3)", "Accept": "*/*",
                   "Accept-Encoding": "gzip, deflate"}


class Fetcher:
    """Fetches seeds for one spider; a subclass supplies the transport (``_request``)."""

    default_headers = DEFAULT_HEADERS
    transport_errors = (OSError, FetchError, ValueError)

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

    def fetch(self, seed):
        """The response for a seed, or FetchError after ``retry`` immediate retries."""
        host = urlsplit(seed.url).hostname
        tried, in_sessions = [], []
        reason = None
        for attempt in range(self.retry + 1):
            if attempt:
                self.retries += 1
            session = self._session(host, in_sessions)
            proxy = self.sessions.proxy_of(session) if session else self._proxy(host, tried)
            self._wait_rate(host)
            started = time.monotonic()
            try:
                response = self._exchange(seed, proxy, session)
            except self.transport_errors as exc:
                if isinstance(exc, NoProxy):
                    raise
                reason = "%s: %s" % (type(exc).__name__, _first_line(exc))
                self._report(proxy, host, False)
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
        if self._agents:
            headers["User-Agent"] = next(self._agents)
        if seed.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % kv for kv in seed.cookies.items())
        if isinstance(seed.data, dict) and "Content-Type" not in headers:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return headers

    def close(self):
        """Release connections; the fetcher is not used afterwards."""


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
