"""The libcurl transport: pycurl's CurlMulti driven by the gevent loop.

One ``CurlMulti`` per fetcher holds every transfer of the process.  libcurl
tells us which sockets to watch and when to wake it (its socket and timer
callbacks); gevent io watchers and one gevent timer do the watching, and call
``socket_action`` back.  Each greenlet adds its easy handle and waits on its
own ``Waiter`` until libcurl reports that transfer done, so a slow server
blocks only the greenlet that asked for it.  All the HTTP work (connections
kept alive per host and proxy, CONNECT tunnels, TLS, redirects, gzip/deflate/
brotli, timeouts) happens in C; Python runs a few calls per page.

Rules kept here, because breaking them hangs or kills the whole process:
the callbacks run inside gevent's hub, so they never block, never switch and
never raise (errors are recorded in ``CurlLoop.errors`` and fail the waiting
transfers); a handle leaves the multi in a ``finally``, so a gevent Timeout or
a kill during a transfer never leaves it there; handles are ``reset()`` and
reused from a free list; DNS and TLS sessions are shared (``CurlShare``).
"""
import logging
import time

import certifi
import pycurl
from gevent.hub import Waiter, get_hub
from urllib3._collections import HTTPHeaderDict

from .errors import FetchError
from .fetcher import DEFAULT_HEADERS, Fetcher
from .response import build_response

log = logging.getLogger("microspider")
MAX_REDIRECTS = 20
HAS_BROTLI = bool(pycurl.version_info()[4] & pycurl.VERSION_BROTLI)
CURL_HEADERS = dict(DEFAULT_HEADERS, **{
    "User-Agent": "microspider/0.1 (+libcurl)",
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


class _Transfer:
    """A transfer in the multi: its greenlet's Waiter and when a byte last arrived."""

    __slots__ = ("waiter", "received", "quiet_since")

    def __init__(self, waiter, now):
        self.waiter, self.received, self.quiet_since = waiter, -1, now


class CurlLoop:
    """One CurlMulti whose sockets and timer are watched by the gevent loop of this thread.

    ``idle_timeout``: a transfer whose connection is made (libcurl's own
    connect timeout covers the rest) and which receives no byte for that many
    seconds fails; a sweep every ``idle_timeout / 4`` (at most 1 s) checks.
    """

    def __init__(self, max_connections=64, idle_timeout=20.0, hub=None, now=time.monotonic):
        self.hub = hub or get_hub()
        self.loop = self.hub.loop
        self.now = now
        self.idle_timeout = idle_timeout
        period = min(1.0, idle_timeout / 4.0)
        self._sweeper = self.loop.timer(period, period)
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self.multi.setopt(pycurl.M_MAXCONNECTS, max_connections)
        self.share = pycurl.CurlShare()
        self.share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_DNS)
        self.share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_SSL_SESSION)
        self.errors = []        # exceptions caught inside the hub's callbacks (the last 20)
        self._watchers = {}     # fd -> gevent io watcher
        self._timer = None
        self._transfers = {}    # easy handle in the multi -> _Transfer
        self.closed = False

    @property
    def handles(self):
        """How many easy handles are in the multi now."""
        return len(self._transfers)

    def perform(self, handle):
        """Run one transfer to its end, blocking only the calling greenlet; (errno, message)."""
        waiter = Waiter(self.hub)
        self._transfers[handle] = _Transfer(waiter, self.now())
        if not self._sweeper.active:
            self._sweeper.start(self._sweep)
        try:
            self.multi.add_handle(handle)
            try:
                return waiter.get()
            finally:
                if not self.closed:
                    self.multi.remove_handle(handle)  # also when a Timeout or kill lands in get()
        finally:
            del self._transfers[handle]
            if not self._transfers:
                self._sweeper.stop()

    def close(self):
        """Fail what is still in the multi (its greenlets wake with an error), then free it all."""
        if self.closed:
            return
        self.closed = True
        self._sweeper.stop()
        for handle, transfer in list(self._transfers.items()):
            self.multi.remove_handle(handle)
            self.loop.run_callback(transfer.waiter.switch, (-1, "the fetcher was closed"))
        for watcher in self._watchers.values():
            watcher.stop()
        self._watchers.clear()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.multi.close()
        self.share.close()

    # -- inside the hub: never block, switch (except to wake a finished transfer) or raise ----
    def _on_socket(self, what, fd, multi, data):
        try:
            events = what & 3      # CURL_POLL_IN/OUT are gevent's READ/WRITE bits
            watcher = self._watchers.get(fd)
            if watcher is not None:
                if what != pycurl.POLL_REMOVE and watcher.events == events:
                    return
                watcher.stop()
                del self._watchers[fd]
            if what != pycurl.POLL_REMOVE and events:
                watcher = self._watchers[fd] = self.loop.io(fd, events)
                watcher.start(self._on_io, fd, pass_events=True)
        except BaseException as exc:  # noqa: B902 - an exception here would unwind the hub
            self._failed("socket callback", exc)

    def _on_timer(self, ms):
        try:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            if ms >= 0:
                self._timer = self.loop.timer(ms / 1000.0)
                self._timer.start(self._on_timeout)
        except BaseException as exc:  # noqa: B902
            self._failed("timer callback", exc)

    def _on_io(self, events, fd):
        mask = events & 3
        if events & ~3 or not mask:
            mask |= pycurl.CSELECT_ERR
        self._act(fd, mask)

    def _on_timeout(self):
        self._timer = None
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _act(self, fd, mask):
        try:
            self.multi.socket_action(fd, mask)
            finished = []
            while True:
                queued, done, failed = self.multi.info_read()
                finished.extend((handle, 0, None) for handle in done)
                finished.extend(failed)
                if not queued:
                    break
        except BaseException as exc:  # noqa: B902
            self._failed("socket_action", exc)
            return
        for handle, errno, message in finished:
            self._wake(handle, (errno, message))

    def _sweep(self):
        """Fail the transfers that received nothing for ``idle_timeout`` seconds."""
        try:
            now, stale = self.now(), []
            for handle, transfer in self._transfers.items():
                if not handle.getinfo_raw(pycurl.PRETRANSFER_TIME_T):
                    continue  # still connecting: CONNECTTIMEOUT_MS bounds that
                received = (handle.getinfo_raw(pycurl.SIZE_DOWNLOAD_T)
                            + handle.getinfo_raw(pycurl.HEADER_SIZE))
                if received != transfer.received:
                    transfer.received, transfer.quiet_since = received, now
                elif now - transfer.quiet_since >= self.idle_timeout:
                    stale.append(handle)
        except BaseException as exc:  # noqa: B902
            self._failed("idle sweep", exc)
            return
        for handle in stale:
            self._wake(handle, (pycurl.E_OPERATION_TIMEDOUT,
                                "no byte received for %g s" % self.idle_timeout))

    def _wake(self, handle, outcome):
        transfer = self._transfers.get(handle)
        if transfer is None:
            return  # its greenlet was killed and took the handle out already
        try:
            transfer.waiter.switch(outcome)
        except BaseException as exc:  # noqa: B902
            self._failed("waking a transfer", exc)

    def _failed(self, where, exc):
        """Record a callback's exception and fail every waiting transfer, so none hangs.

        The wake-ups are scheduled, not made here: this may run inside a pycurl
        call, or in a greenlet (libcurl calls back from add_handle/remove_handle).
        """
        self.errors = self.errors[-19:] + [(where, exc)]
        log.error("libcurl %s failed: %r; failing %d transfers", where, exc, len(self._transfers))
        outcome = (-1, "internal error in the %s: %r" % (where, exc))
        for transfer in self._transfers.values():
            self.loop.run_callback(transfer.waiter.switch, outcome)


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


class _Answer:
    """The status line and headers of the final answer, shaped as build_response reads them."""

    __slots__ = ("status", "reason", "headers")

    def __init__(self, status, lines):
        self.status = status
        self.reason, self.headers = _parse_head(lines)


class CurlFetcher(Fetcher):
    """The libcurl transport (``--fetcher curl``): one CurlMulti per process on the gevent loop."""

    default_headers = CURL_HEADERS
    transport_errors = (FetchError, pycurl.error, ValueError)

    def __init__(self, spider, settings, **kwargs):
        super().__init__(spider, settings, **kwargs)
        self.curl = CurlLoop(max_connections=max(settings.pool, 10), idle_timeout=settings.timeout)
        self._free = []
        self._verify = 2 if spider.verify else 0
        self._connect_ms = max(1, int(settings.timeout * 1000))

    def _request(self, seed, proxy):
        url = seed.request_url()
        headers = self.request_headers(seed)
        body = seed.body()
        handle = self._free.pop() if self._free else self._new_handle()
        try:
            sink, lines, sends = self._prepare(handle, seed.method, url, headers, body, proxy)
            errno, message = self.curl.perform(handle)
            if errno:
                raise self._error(errno, message, sink, sends)
            answer = _Answer(handle.getinfo(pycurl.RESPONSE_CODE), lines)
            final = handle.getinfo(pycurl.EFFECTIVE_URL)
        finally:
            handle.reset()  # drops the callbacks and body; keeps the share and the DNS cache
            self._free.append(handle)
        return build_response(answer, sink.content(), final, seed.method, url, headers, body)

    def _new_handle(self):
        handle = pycurl.Curl()
        handle.setopt(pycurl.SHARE, self.curl.share)  # survives reset()
        return handle

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
        setopt(pycurl.HTTPHEADER, sent)
        if encoding is not None:
            setopt(pycurl.ACCEPT_ENCODING, encoding)
        sink, lines = _Body(self.max_body), []
        setopt(pycurl.WRITEFUNCTION, sink.write)
        setopt(pycurl.HEADERFUNCTION, lines.append)  # a C method: no Python frame per header line
        sends = _Sends(lines)
        setopt(pycurl.PREREQFUNCTION, sends)
        setopt(pycurl.NOSIGNAL, 1)
        setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        setopt(pycurl.FOLLOWLOCATION, 1)
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
        if sends.refused:
            return CurlError("connection closed before any answer (curl would resend on a new "
                             "connection; microspider retries instead)", errno)
        kind = KINDS.get(errno, "transfer failed")
        return CurlError("%s (curl error %d: %s)" % (kind, errno, message), errno)

    def close(self):
        for handle in self._free:
            handle.close()
        self._free = []
        self.curl.close()


def _parse_head(lines):
    """(reason, HTTPHeaderDict) of the last answer in the header lines libcurl passed us.

    The lines hold every answer of the transfer: a proxy's CONNECT answer, 1xx
    interim answers and each redirect come before the final one.
    """
    start = 0
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith(b"HTTP/"):
            start = i
            break
    status_line = lines[start].decode("latin-1").rstrip("\r\n") if lines else ""
    parts = status_line.split(" ", 2)
    reason = parts[2] if len(parts) > 2 else ""
    headers = HTTPHeaderDict()
    last = None
    for raw in lines[start + 1:]:
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            break  # the end of the head (trailers of a chunked body may follow)
        if line[0] in " \t" and last is not None:  # an obsolete folded continuation
            values = headers.getlist(last)
            headers.discard(last)
            for value in values[:-1]:
                headers.add(last, value)
            headers.add(last, values[-1] + " " + line.strip())
            continue
        name, _, value = line.partition(":")
        last = name.strip()
        headers.add(last, value.strip())
    return reason, headers


def _ascii_url(url):
    from requests.utils import requote_uri  # percent-encodes what libcurl would refuse

    return requote_uri(url)
