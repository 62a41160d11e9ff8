"""The libcurl transport (``--fetcher curl``): pycurl on the gevent loop.

One ``CurlLoop`` (``microspider.transport.curl_loop``: a CurlMulti whose sockets and
timer are gevent watchers) per fetcher holds every transfer of the process.
All the HTTP work (connections kept alive per host and proxy, CONNECT
tunnels, TLS, redirects, gzip/deflate/brotli, timeouts) happens in C; Python
runs a few calls per page: set the options, wait, build the Response.
Handles are ``reset()`` and reused from a free list.  DNS and TLS sessions are
shared (``CurlShare``) within one session key only (``TlsShares``): a TLS
ticket earned by one identity through one proxy is never resumed through
another, which would link them for a site that links tickets.
"""
import collections

import certifi
import pycurl
from requests.structures import CaseInsensitiveDict

from .. import __version__
from ..errors import FetchError
from .curl_loop import CurlLoop
from .fetcher import DEFAULT_HEADERS, Fetcher
from .response import make_response, sent_request

MAX_REDIRECTS = 20
HAS_BROTLI = bool(pycurl.version_info()[4] & pycurl.VERSION_BROTLI)
CURL_HEADERS = dict(DEFAULT_HEADERS, **{
    "User-Agent": "microspider/%s (+libcurl)" % __version__,
    "Accept-Encoding": "gzip, deflate, br" if HAS_BROTLI else "gzip, deflate"})
# what a curl error number means to a reader of the failure reason
KINDS = {
    pycurl.E_OPERATION_TIMEDOUT: "timed out",
    pycurl.E_TOO_MANY_REDIRECTS: "too many redirects",
    pycurl.E_PEER_FAILED_VERIFICATION: "certificate verify failed",
    pycurl.E_PARTIAL_FILE: "incomplete body",
    pycurl.E_GOT_NOTHING: "empty reply",
    pycurl.E_COULDNT_CONNECT: "cannot connect",
    pycurl.E_RECV_ERROR: "receive failed",
    pycurl.E_SEND_ERROR: "send failed",
    pycurl.E_UNSUPPORTED_PROTOCOL: "not an HTTP answer",
    pycurl.E_BAD_CONTENT_ENCODING: "bad content encoding",
    pycurl.E_SSL_CONNECT_ERROR: "TLS handshake failed",
    pycurl.E_COULDNT_RESOLVE_HOST: "cannot resolve host",
    pycurl.E_COULDNT_RESOLVE_PROXY: "cannot resolve proxy",
}


class CurlError(FetchError):
    """A transfer libcurl ended with an error (its number is ``errno``)."""

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.errno = errno


class _Body:
    """The write callback's sink: keeps the decoded body, aborts it past the limit."""

    __slots__ = ("chunks", "size", "limit", "over")

    def __init__(self, limit):
        self.chunks, self.size, self.limit, self.over = [], 0, limit, False

    def write(self, data):
        self.size += len(data)
        if self.size > self.limit:
            self.over = True
            return 0  # fewer bytes taken than given: libcurl aborts with CURLE_WRITE_ERROR
        self.chunks.append(data)
        return None

    def content(self):
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)


class _Sends:
    """The pre-request callback: refuses libcurl's silent resend of a request.

    When a reused connection dies before any answer, libcurl sends the request
    again on a new connection by itself (and no libcurl option stops it before
    8.16's CURLOPT_FORBID_RETRY_ON_REUSE, which pycurl does not offer).  That
    would be an attempt microspider does not count, through the same proxy; so
    a second send with no answer line received in between aborts the transfer,
    and the fetch loop retries it as any failed attempt.  A redirect is a new
    send after an answer, and goes on.
    """

    __slots__ = ("lines", "seen", "refused")

    def __init__(self, lines):
        self.lines, self.seen, self.refused = lines, None, False

    def __call__(self, primary_ip, local_ip, primary_port, local_port):
        received = len(self.lines)
        if received == self.seen:
            self.refused = True
            return pycurl.PREREQFUNC_ABORT
        self.seen = received
        return pycurl.PREREQFUNC_OK


class TlsShares:
    """One share object (TLS session cache, DNS cache) per session key: (proxy URL, User-Agent).

    libcurl keeps one TLS session cache per multi handle (or per share), keyed
    by host: a ticket earned through one proxy would be resumed through any
    other, and the resumed ClientHello carries that ticket.  Here each key
    (what a session is: its identity and its proxy) has its own cache.  The
    ``LIMIT`` keys used last are kept; a handle still attached to an older
    share keeps it alive until it moves to another.
    """

    LIMIT = 512

    def __init__(self, make):
        self.make = make                      # () -> a new share object
        self.shares = collections.OrderedDict()

    def get(self, key):
        share = self.shares.pop(key, None)
        if share is None:
            share = self.make()
        self.shares[key] = share
        while len(self.shares) > self.LIMIT:
            self.shares.popitem(last=False)
        return share

    def clear(self):
        self.shares.clear()


def _pycurl_share():
    share = pycurl.CurlShare()
    share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_DNS)
    share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_SSL_SESSION)
    return share


class CurlFetcher(Fetcher):
    """The libcurl transport (``--fetcher curl``): one CurlMulti per process on the gevent loop."""

    default_headers = CURL_HEADERS
    transport_errors = (FetchError, pycurl.error, ValueError)
    multi_class = None      # CurlLoop's default: pycurl's multi

    def __init__(self, spider, settings, **kwargs):
        super().__init__(spider, settings, **kwargs)
        self.curl = CurlLoop(max_connections=max(settings.pool, 10), idle_timeout=settings.timeout,
                             multi=self.multi_class)
        self._free = []
        self._shares = TlsShares(self._new_share)
        self._attached = {}     # handle -> the share it is attached to
        self._verify = 2 if spider.verify else 0
        self._connect_ms = max(1, int(settings.timeout * 1000))

    def _request(self, seed, proxy):
        url = seed.request_url()
        headers = self.request_headers(seed)
        body = seed.body()
        handle = self._free.pop() if self._free else self._new_handle()
        try:
            self._share_with(handle, (proxy.url if proxy is not None else None,
                                      headers.get("User-Agent")))
            sink, lines, sends = self._prepare(handle, seed.method, url, headers, body, proxy)
            errno, message = self.curl.perform(handle)
            if errno:
                raise self._error(errno, message, sink, sends)
            status = handle.getinfo(pycurl.RESPONSE_CODE)
            final = self._final_url(handle)
        finally:
            self._recycle(handle)
            self._free.append(handle)
        reason, answer_headers, cookies = _parse_head(lines)
        return make_response(status, final, answer_headers, sink.content(),
                             sent_request(seed.method, url, self._sent_headers(headers), body),
                             reason=reason,
                             set_cookie=cookies)

    def _sent_headers(self, headers):
        """The request headers as they went out (``response.request.headers``)."""
        return headers

    def _share_with(self, handle, key):
        """Attach `handle` to the share of session key `key` (a no-op when it already is)."""
        share = self._shares.get(key)
        attached = self._attached.get(handle)
        if attached is not share:
            self._attach(handle, share, attached)
            self._attached[handle] = share

    def _new_share(self):
        return _pycurl_share()

    def _attach(self, handle, share, attached):
        if attached is not None:
            handle.unsetopt(pycurl.SHARE)    # pycurl moves a handle between shares only this way
        handle.setopt(pycurl.SHARE, share)   # survives reset()

    def _new_handle(self):
        return pycurl.Curl()

    def _recycle(self, handle):
        handle.reset()  # drops the callbacks and body; keeps the share and the DNS cache

    def _final_url(self, handle):
        return handle.getinfo(pycurl.EFFECTIVE_URL)

    def _header_lines(self, lines):
        """The HTTPHEADER list as this libcurl binding takes it."""
        return lines

    def _callbacks(self, handle, sink, lines):
        """Set the body, header and pre-request callbacks of one transfer; the _Sends guard."""
        handle.setopt(pycurl.WRITEFUNCTION, sink.write)
        handle.setopt(pycurl.HEADERFUNCTION, lines.append)  # a C method: no Python frame per line
        sends = _Sends(lines)
        handle.setopt(pycurl.PREREQFUNCTION, sends)
        return sends

    def _new_sink(self):
        return _Body(self.max_body), []

    def _prepare(self, handle, method, url, headers, body, proxy):
        """Set one transfer's options on a fresh (reset) handle; (body, header lines, sends)."""
        setopt = handle.setopt
        setopt(pycurl.URL, url if url.isascii() else _ascii_url(url))
        encoding = typed = None
        sent = ["Expect:"]  # no 100-continue round trip before a large POST body
        for name, value in headers.items():
            lowered = name.lower()
            if lowered == "accept-encoding":
                encoding = value  # libcurl sends it and decodes what it names
                continue
            typed = typed or lowered == "content-type"
            sent.append("%s: %s" % (name, value))
        if body is not None:
            if not typed:
                sent.append("Content-Type:")  # libcurl would add a form type to a raw body
            setopt(pycurl.POSTFIELDSIZE, len(body))
            setopt(pycurl.POSTFIELDS, body)
            if method != "POST":
                setopt(pycurl.CUSTOMREQUEST, method)
        elif method == "POST":
            setopt(pycurl.POSTFIELDSIZE, 0)
            setopt(pycurl.POSTFIELDS, b"")
        setopt(pycurl.HTTPHEADER, self._header_lines(sent))
        if encoding is not None:
            setopt(pycurl.ACCEPT_ENCODING, encoding)
        sink, lines = self._new_sink()
        sends = self._callbacks(handle, sink, lines)
        setopt(pycurl.NOSIGNAL, 1)
        setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        setopt(pycurl.FOLLOWLOCATION, 1 if self.follow_redirects else 0)
        setopt(pycurl.MAXREDIRS, MAX_REDIRECTS)
        setopt(pycurl.CONNECTTIMEOUT_MS, self._connect_ms)
        setopt(pycurl.MAXFILESIZE, self.max_body)  # a Content-Length over the limit fails at once
        # "" (not unset): libcurl would otherwise take a proxy from http_proxy & co.
        setopt(pycurl.PROXY, proxy.url if proxy is not None else "")
        if url.startswith("https:") or (proxy is not None and proxy.url.startswith("https:")):
            self._tls(setopt, proxy)
        return sink, lines, sends

    def _tls(self, setopt, proxy):
        setopt(pycurl.CAINFO, certifi.where())
        setopt(pycurl.SSL_VERIFYPEER, 1 if self._verify else 0)
        setopt(pycurl.SSL_VERIFYHOST, self._verify)
        if proxy is not None and proxy.url.startswith("https:"):
            setopt(pycurl.PROXY_CAINFO, certifi.where())
            setopt(pycurl.PROXY_SSL_VERIFYPEER, 1 if self._verify else 0)
            setopt(pycurl.PROXY_SSL_VERIFYHOST, self._verify)

    def _error(self, errno, message, sink, sends):
        if errno == pycurl.E_FILESIZE_EXCEEDED or (errno == pycurl.E_WRITE_ERROR and sink.over):
            return CurlError("body is over --max-body %d bytes" % self.max_body, errno)
        if sends is not None and sends.refused:
            return CurlError("connection closed before any answer (curl would resend on a new "
                             "connection; microspider retries instead)", errno)
        kind = KINDS.get(errno, "transfer failed")
        return CurlError("%s (curl error %d: %s)" % (kind, errno, message), errno)

    def close(self):
        for handle in self._free:
            handle.close()
        self._free = []
        self._attached.clear()
        self._shares.clear()
        self.curl.close()


def _parse_head(lines):
    """(reason, headers, Set-Cookie values) of the last answer in the header lines libcurl passed us.

    The lines hold every answer of the transfer: a proxy's CONNECT answer, 1xx
    interim answers and each redirect come before the final one.  Repeated
    headers are joined with ", " (as requests shows them); each Set-Cookie
    value is also kept apart.  The headers are built as parse sees them, with
    no intermediate dict: this runs once per page.
    """
    start = 0
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith(b"HTTP/"):
            start = i
            break
    status_line = lines[start].decode("latin-1").rstrip("\r\n") if lines else ""
    parts = status_line.split(" ", 2)
    reason = parts[2] if len(parts) > 2 else ""
    headers, cookies, last = CaseInsensitiveDict(), [], None
    for raw in lines[start + 1:]:
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            break  # the end of the head (trailers of a chunked body may follow)
        if line[0] in " \t" and last is not None:  # an obsolete folded continuation
            headers[last] += " " + line.strip()
            if last.lower() == "set-cookie":
                cookies[-1] += " " + line.strip()
            continue
        name, _, value = line.partition(":")
        last, value = name.strip(), value.strip()
        headers[last] = headers[last] + ", " + value if last in headers else value
        if last.lower() == "set-cookie":
            cookies.append(value)
    return reason, headers, cookies


def _ascii_url(url):
    from requests.utils import requote_uri  # percent-encodes what libcurl would refuse

    return requote_uri(url)
