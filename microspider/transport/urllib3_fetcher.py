"""The urllib3 transport (``--fetcher urllib3``).

urllib3 is what requests itself sits on; this transport leaves out requests'
per-call session work (merging settings, preparing the request, scanning the
environment for proxies).  One connection pool per process, one per proxy.
"""
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
from urllib3.util.retry import Retry

from ..errors import FetchError
from .base import Fetcher
from .response import make_response, sent_request

# urllib3 retries nothing itself (microspider retries through other proxies) but follows redirects
REDIRECTS = Retry(total=None, connect=0, read=0, redirect=20, status=0, other=0,
                  raise_on_redirect=True, raise_on_status=False)


class Urllib3Fetcher(Fetcher):
    """The urllib3 transport: one connection pool per process, one per proxy."""

    transport_errors = (urllib3.exceptions.HTTPError, OSError, FetchError, ValueError)

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
