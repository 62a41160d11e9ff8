"""The impersonating transport (``--impersonate PROFILE``): a browser's TLS and HTTP/2 identity.

curl_cffi bundles curl-impersonate's libcurl (BoringSSL, nghttp2): with a
profile (``chrome``, ``edge``, ``safari``, ``firefox``... as curl_cffi names
them) a transfer sends that browser's ClientHello (GREASE, extension order,
compress_certificate, ALPS), its HTTP/2 settings and its default headers in
its order.  Everything else is ``CurlFetcher``'s: the same options, the same
``CurlLoop`` on the gevent loop, the same errors and limits.  Only the
binding differs: curl_cffi's easy handles, and ``CffiMulti``, its libcurl's
multi socket interface driven through cffi (curl_cffi's own ``aio.py`` does
the same for asyncio).  No thread per request.
"""
import _socket
import functools
import logging

from curl_cffi import CurlError as CffiError
from curl_cffi._wrapper import ffi, lib
from curl_cffi.const import CurlInfo, CurlMOpt, CurlOpt
from curl_cffi.curl import Curl
from curl_cffi.requests.impersonate import REAL_TARGET_MAP
from requests.structures import CaseInsensitiveDict

from ..errors import ConfigError, FetchError
from ..identity import from_headers
from .curl_fetcher import CurlFetcher, _Body, _Sends

log = logging.getLogger("microspider")
CURLMSG_DONE = 1
WRITE_ABORT = 0xFFFFFFFF     # CURL_WRITEFUNC_ERROR
PREREQ_ABORT = 1         # CURL_PREREQFUNC_ABORT
# string options libcurl copies (POSTFIELDS aside, kept alive by the handle): no list, no callback
PLAIN_STRINGS = frozenset([CurlOpt.URL, CurlOpt.PROXY, CurlOpt.CAINFO, CurlOpt.PROXY_CAINFO,
                           CurlOpt.CUSTOMREQUEST, CurlOpt.ACCEPT_ENCODING, CurlOpt.POSTFIELDS])
NUMBER_INFO = {0x200000: "long *", 0x600000: "int64_t *"}   # CURLINFO_LONG, CURLINFO_OFF_T
CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS, CURL_LOCK_DATA_SSL_SESSION = 1, 3, 4
HEADER_OUT = 2           # CURLINFO_HEADER_OUT: the request head, as sent
HTTP_1_1 = 2             # CURL_HTTP_VERSION_1_1: a plain-text head to read the headers from
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class CffiMulti:
    """curl_cffi's libcurl multi handle as CurlLoop drives it (the shape of ``PycurlMulti``)."""

    def __init__(self, on_socket, on_timer, max_connections):
        self._multi = lib.curl_multi_init()
        self._handles = {}          # easy handle pointer -> its _Handle
        self._running, self._queued = ffi.new("int *"), ffi.new("int *")

        def socket_function(easy, fd, what, clientp, socketp):
            on_socket(what, fd, None, None)
            return 0

        def timer_function(multi, ms, clientp):
            on_timer(ms)
            return 0

        # kept here: libcurl holds only their addresses
        self._callbacks = (ffi.callback("int(void *, int, int, void *, void *)", socket_function, error=0),
                           ffi.callback("int(void *, long, void *)", timer_function, error=0))
        self._setopt(CurlMOpt.SOCKETFUNCTION, ffi.cast("void *", self._callbacks[0]))
        self._setopt(CurlMOpt.TIMERFUNCTION, ffi.cast("void *", self._callbacks[1]))
        self._setopt(CurlMOpt.MAXCONNECTS, ffi.new("long *", max_connections))

    def _setopt(self, option, value):
        _check(lib.curl_multi_setopt(self._multi, option, value), "curl_multi_setopt")

    def add_handle(self, handle):
        _check(lib.curl_multi_add_handle(self._multi, handle._curl), "curl_multi_add_handle")
        self._handles[handle._curl] = handle

    def remove_handle(self, handle):
        self._handles.pop(handle._curl, None)
        _check(lib.curl_multi_remove_handle(self._multi, handle._curl), "curl_multi_remove_handle")

    def socket_action(self, fd, mask):
        _check(lib.curl_multi_socket_action(self._multi, fd, mask, self._running),
               "curl_multi_socket_action")

    def finished(self):
        """[(handle, errno, message)] of the transfers libcurl reports done since last asked."""
        finished = []
        while True:
            message = lib.curl_multi_info_read(self._multi, self._queued)
            if message == ffi.NULL:
                return finished
            handle = self._handles.get(message.easy_handle)
            if message.msg == CURLMSG_DONE and handle is not None:
                errno = message.data.result
                finished.append((handle, errno, handle.error_text(errno) if errno else None))

    def close(self):
        lib.curl_multi_cleanup(self._multi)
        self._multi = None


def _check(code, call):
    if code:
        raise FetchError("%s failed: %s" % (call, ffi.string(lib.curl_multi_strerror(code)).decode()))


class _Handle(Curl):
    """A curl_cffi easy handle with what CurlLoop and CurlFetcher read from pycurl's.

    ``setopt`` and ``getinfo`` take a short way for numbers and plain strings:
    curl_cffi's own build two dicts per call, ten times pycurl's cost, and a
    transfer makes about twenty such calls.
    """

    def setopt(self, option, value):
        kind = option // 10000
        if kind == 0:
            c_value = ffi.new("long *", value)     # curl_cffi's glue takes numbers by pointer
        elif kind == 3:
            c_value = ffi.new("int64_t *", value)
        elif option in PLAIN_STRINGS:
            c_value = value.encode() if isinstance(value, str) else value
            if option == CurlOpt.POSTFIELDS:
                self._body_handle = c_value        # libcurl reads it during the transfer, uncopied
        else:
            return Curl.setopt(self, option, value)
        code = lib._curl_easy_setopt(self._curl, option, c_value)
        if code:
            self._check_error(code, "setopt", option, value)
        return code

    def getinfo(self, option):
        kind = option & 0xF00000
        if kind not in NUMBER_INFO:
            return Curl.getinfo(self, option)
        c_value = ffi.new(NUMBER_INFO[kind])
        code = lib.curl_easy_getinfo(self._curl, option, c_value)
        if code:
            self._check_error(code, "getinfo", option)
        return c_value[0]

    getinfo_raw = getinfo

    def error_text(self, errno):
        text = ffi.string(self._error_buffer).decode("utf-8", "replace")
        return text or ffi.string(lib.curl_easy_strerror(errno)).decode()


class _Share:
    """A share of DNS and TLS sessions in curl_cffi's libcurl, with no lock callbacks.

    Every handle of a fetcher runs on one thread (the gevent loop's), so libcurl
    needs no locks; curl_cffi's own ``CurlShare`` takes a ``threading.Lock``
    in its callbacks, which gevent patches into a lock that may switch
    greenlets inside libcurl.
    """

    def __init__(self):
        self.pointer = lib.curl_share_init()
        for data in (CURL_LOCK_DATA_DNS, CURL_LOCK_DATA_SSL_SESSION):
            code = lib._curl_share_setopt(self.pointer, CURLSHOPT_SHARE, ffi.new("int *", data))
            if code:
                raise FetchError("curl_share_setopt failed: %s"
                                 % ffi.string(lib.curl_share_strerror(code)).decode())

    def __del__(self):
        if self.pointer is not None:   # in use (a handle still attached): libcurl keeps it
            lib.curl_share_cleanup(self.pointer)
            self.pointer = None


class _CffiBody(_Body):
    """_Body for curl_cffi's write callback, which wants the count taken, or the abort value."""

    __slots__ = ()

    def write(self, data):
        return WRITE_ABORT if _Body.write(self, data) == 0 else len(data)


class _Lines(list):
    """The header lines; curl_cffi's HEADERDATA callback calls ``write`` (a C method here)."""

    __slots__ = ()
    write = list.append


class _Guard:
    """The pre-request guard (``curl_fetcher._Sends``) as a C callback for curl_cffi's libcurl."""

    def __init__(self):
        def prereq(clientp, primary_ip, local_ip, primary_port, local_port):
            return ffi.from_handle(clientp)(None, None, primary_port, local_port)

        self.callback = ffi.callback("int(void *, char *, char *, int, int)", prereq,
                                     error=PREREQ_ABORT)
        self.pointer = ffi.cast("void *", self.callback)


class ImpersonateFetcher(CurlFetcher):
    """libcurl with a browser's identity (curl_cffi): CurlFetcher with another libcurl under it."""

    default_headers = {}    # the profile's own, in the browser's order
    transport_errors = CurlFetcher.transport_errors + (CffiError,)
    multi_class = CffiMulti

    def __init__(self, spider, settings, **kwargs):
        self.profile = check_profile(profile_of(spider, settings))
        super().__init__(spider, settings, **kwargs)
        self._guard = _Guard()
        self._warned = False

    def request_headers(self, seed):
        """Fetcher.request_headers; the first seed User-Agent of another browser family is warned of."""
        if seed.headers and not self._warned:
            mismatch = _mismatch([v for k, v in seed.headers.items() if k.lower() == "user-agent"],
                                 self.profile)
            if mismatch:
                self._warned = True
                log.warning("%s: a seed's %s", self.spider.name, mismatch)
        return super().request_headers(seed)

    def _sent_headers(self, headers):
        """The profile's headers in its order, each replaced by the request's of the same name."""
        mine = {name.lower(): (name, value) for name, value in headers.items()}
        sent = CaseInsensitiveDict()
        for name, value in profile_headers(self.profile):
            name, value = mine.pop(name.lower(), (name, value))
            sent[name] = value
        for name, value in mine.values():
            sent[name] = value
        return sent

    def _new_share(self):
        return _Share()

    def _attach(self, handle, share, attached):
        code = lib._curl_easy_setopt(handle._curl, CurlOpt.SHARE, share.pointer)
        if code:
            handle._check_error(code, "setopt", CurlOpt.SHARE, share)
        handle._tls_share = share   # alive while the handle uses it (not curl_cffi's own _share)

    def _new_handle(self):
        handle = _Handle()
        handle.impersonate(self.profile, default_headers=True)
        return handle

    def _recycle(self, handle):
        """Free the transfer's header lists and callbacks; keep the options, the profile's included.

        No ``reset()``: the profile would have to be set again on every
        transfer, which costs more than the rest of ``_prepare``.  What one
        transfer sets and the next may not is undone in ``_prepare``.
        """
        handle.clean_handles_and_buffers()

    def _final_url(self, handle):
        return handle.getinfo(CurlInfo.EFFECTIVE_URL).decode("utf-8", "replace")

    def _header_lines(self, lines):
        return [line.encode("utf-8") for line in lines]

    def _new_sink(self):
        return _CffiBody(self.max_body), _Lines()

    def _prepare(self, handle, method, url, headers, body, proxy):
        handle.setopt(CurlOpt.HTTPGET, 1)           # undoes a previous transfer's POST
        lib._curl_easy_setopt(handle._curl, CurlOpt.CUSTOMREQUEST, ffi.NULL)   # ...and its method
        # the profile sends its own Accept-Encoding but decodes nothing unless told to:
        # "" decodes all libcurl knows (gzip, deflate, br, zstd); the header sent stays the profile's
        handle.setopt(CurlOpt.ACCEPT_ENCODING, "")
        return super()._prepare(handle, method, url, headers, body, proxy)

    def _callbacks(self, handle, sink, lines):
        handle.setopt(CurlOpt.WRITEFUNCTION, sink.write)
        handle.setopt(CurlOpt.HEADERDATA, lines)
        sends = _Sends(lines)
        handle._sends = ffi.new_handle(sends)   # alive as long as the transfer
        lib._curl_easy_setopt(handle._curl, CurlOpt.PREREQFUNCTION, self._guard.pointer)
        lib._curl_easy_setopt(handle._curl, CurlOpt.PREREQDATA, handle._sends)
        return sends


def profile_of(spider, settings):
    """The profile a run asks for: ``--impersonate`` / config, the spider's, or "chrome"."""
    return getattr(settings, "impersonate", None) or getattr(spider, "impersonate", None) or "chrome"


def check_profile(profile):
    """The exact profile `profile` names ("chrome" -> the newest Chrome); ConfigError if unknown."""
    target = REAL_TARGET_MAP.get(profile, profile)
    probe = Curl()
    try:
        if probe.impersonate(target) != 0:
            raise ConfigError("unknown --impersonate profile %r (curl_cffi's names: chrome, edge, "
                              "safari, firefox, chrome145, ...)" % profile)
    finally:
        probe.close()
    return target


def agent_mismatches(spider, profile):
    """One warning line if a User-Agent the spider sets names another browser family than `profile`."""
    agents = list(getattr(spider, "user_agents", None) or ())
    agents += [v for k, v in (getattr(spider, "headers", None) or {}).items() if k.lower() == "user-agent"]
    mismatch = _mismatch(agents, profile)
    return [mismatch] if mismatch else []


def _mismatch(agents, profile):
    family = browser_family(profile)
    others = [agent for agent in agents if browser_family(agent) != family]
    if not others:
        return None
    return ("User-Agent %r is not a %s like the --impersonate profile %r: a mismatch is itself a "
            "fingerprint (drop user_agents/User-Agent to send the profile's own)"
            % (others[0][:80], family, profile))


def browser_family(name):
    """The browser family of a profile or a User-Agent: "chrome", "firefox", "safari" or None."""
    text = (name or "").lower()
    if "firefox" in text or text.startswith("tor"):   # Tor Browser is a Firefox
        return "firefox"
    if any(word in text for word in ("chrome", "chromium", "edg", "opr", "opera", "brave")):
        return "chrome"
    if "safari" in text:
        return "safari"
    return None


@functools.lru_cache(maxsize=None)
def profile_headers(profile):
    """[(name, value)] of the headers profile `profile` sends, in its order, as its libcurl sends them.

    curl_cffi keeps the built-in profiles' headers inside curl-impersonate's
    libcurl, not in Python; so they are read off the wire, once per process and
    profile: one request to a socket of this process on 127.0.0.1.  The debug
    callback sees the head as it is sent and answers it at once (the
    connection waits in the listening socket's backlog), so the transfer takes
    no thread and no timeout.
    """
    listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    head = []

    def answer(kind, data):
        if kind == HEADER_OUT and not head:
            head.append(data)
            conn = _socket.socket(fileno=listener._accept()[0])
            try:
                conn.sendall(NO_CONTENT)
            finally:
                conn.close()

    probe = Curl()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        probe.impersonate(check_profile(profile), default_headers=True)
        probe.setopt(CurlOpt.URL, "http://127.0.0.1:%d/" % listener.getsockname()[1])
        probe.setopt(CurlOpt.HTTP_VERSION, HTTP_1_1)
        probe.setopt(CurlOpt.DEBUGFUNCTION, answer)
        probe.setopt(CurlOpt.VERBOSE, 1)
        probe.setopt(CurlOpt.TIMEOUT_MS, 5000)
        probe.perform()
    finally:
        probe.close()
        listener.close()
    lines = head[0].decode("latin-1").split("\r\n")[1:]
    pairs = [line.split(":", 1) for line in lines if ":" in line]
    return tuple((name.strip(), value.strip()) for name, value in pairs if name.lower() != "host")


def profile_identity(profile):
    """The Identity of profile `profile`: its own User-Agent, client hints and Accept-Language."""
    target = check_profile(profile)
    return from_headers(dict(profile_headers(target)), profile=target)
