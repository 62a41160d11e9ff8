"""One fetch of a seed, with immediate retries through rotating proxies.

No gevent import here: the worker entry point has already patched sockets and
``time.sleep``, so waits below are cooperative there and plain in tests.
"""
import itertools
import time
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .errors import FetchError
from .response import as_response

# 407: the proxy refused us; retried through another one
RETRYABLE = frozenset([407, 429]) | frozenset(range(500, 600))


class NoProxy(FetchError):
    """No proxy of the pool is usable right now."""


class Fetcher:
    """Fetches seeds for one spider with one requests.Session per process.

    ``trust_env`` is off: proxies come from ``-p`` only, and requests stops
    scanning the environment on every call (a quarter of its per-request cost).
    """

    def __init__(self, spider, settings, proxies=None, limiter=None, host_limiter=None,
                 sleep=time.sleep):
        self.spider = spider
        self.retry = settings.retry
        self.timeout = settings.timeout
        self.max_body = settings.max_body
        self.proxies = proxies
        self.limiter = limiter
        self.host_limiter = host_limiter
        self.sleep = sleep
        self.session = requests.Session()
        self.session.trust_env = False
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=max(settings.pool, 10), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(spider.headers or {})
        agents = list(spider.user_agents or ())
        self._agents = itertools.cycle(agents) if agents else None
        self.retries = 0  # immediate retries made, for the stats

    def fetch(self, seed):
        """The response for a seed, or FetchError after ``retry`` immediate retries."""
        host = urlsplit(seed.url).hostname
        tried = []
        reason = None
        for attempt in range(self.retry + 1):
            if attempt:
                self.retries += 1
            proxy = self._proxy(host, tried)
            self._wait_rate(host)
            started = time.monotonic()
            try:
                response = self._request(seed, proxy)
            except (requests.RequestException, OSError, FetchError) as exc:
                reason = "%s: %s" % (type(exc).__name__, _first_line(exc))
                self._report(proxy, host, False)
                continue
            if response.status_code in RETRYABLE or self.spider.is_banned(response):
                reason = "HTTP %d%s" % (response.status_code,
                                        "" if response.status_code in RETRYABLE else " (banned)")
                self._report(proxy, host, False)
                continue
            self._report(proxy, host, True, time.monotonic() - started)
            return response
        raise FetchError("%s after %d attempts: %s" % (seed.url, self.retry + 1, reason))

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

    def _request(self, seed, proxy):
        headers = seed.headers
        if self._agents:
            headers = dict(headers, **{"User-Agent": next(self._agents)})
        response = self.session.request(
            seed.method, seed.request_url(), headers=headers or None, cookies=seed.cookies or None,
            data=seed.body(), timeout=self.timeout, stream=True,
            proxies=proxy.requests_proxies if proxy else None)
        try:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > self.max_body:
                raise FetchError("body of %s bytes is over --max-body %d" % (length, self.max_body))
            body = response.raw.read(self.max_body + 1, decode_content=True)
            if len(body) > self.max_body:
                raise FetchError("body is over --max-body %d bytes" % self.max_body)
            if length and length.isdigit() and "Content-Encoding" not in response.headers \
                    and len(body) < int(length):
                raise FetchError("truncated body: %d of %s bytes" % (len(body), length))
            response._content = body
            response._content_consumed = True
        except Exception:
            response.close()  # drops the connection: its body was not read to the end
            raise
        response.raw.release_conn()
        return as_response(response)

    def close(self):
        self.session.close()


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
