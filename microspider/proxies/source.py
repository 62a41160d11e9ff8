"""Where proxies come from: a URL, a file of them, or a Redis set; each proxy URL validated.

See the package docstring for the source syntax.
"""
import logging
import os
from urllib.parse import urlsplit

import redis as redis_lib

from ..connection import redis_client
from ..errors import ProxyError

SCHEMES = ("http", "https", "socks5", "socks5h")
_log = logging.getLogger("microspider.proxies")


def _mask(url):
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return "%s://%s:***@%s" % (parts.scheme, userinfo.split(":", 1)[0], hostport)


class Proxy:
    """One proxy URL, validated; ``str()`` hides its password."""

    __slots__ = ("url",)

    def __init__(self, url):
        if isinstance(url, Proxy):
            url = url.url
        if not isinstance(url, str) or not url.strip():
            raise ProxyError("empty proxy URL: give one like http://host:3128")
        self.url = url.strip()
        self._validate()

    def _validate(self):
        shown = _mask(self.url)
        if any(c.isspace() for c in self.url):
            raise ProxyError("proxy URL %r contains a space" % shown)
        parts = urlsplit(self.url)
        if parts.scheme not in SCHEMES:
            raise ProxyError("proxy URL %r: the scheme must be one of %s, e.g. http://host:3128"
                             % (shown, ", ".join(SCHEMES)))
        try:
            port = parts.port
        except ValueError:
            port = 0
        if not parts.hostname:
            raise ProxyError("proxy URL %r has no host; write %s://host:port" % (shown, parts.scheme))
        if not port:
            raise ProxyError("proxy URL %r needs a port from 1 to 65535, e.g. %s://%s:3128"
                             % (shown, parts.scheme, parts.hostname))
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ProxyError("proxy URL %r must be %s://[user:password@]host:port, with no path"
                             % (shown, parts.scheme))
        if parts.scheme.startswith("socks"):
            try:
                import socks  # noqa: F401  (requests needs PySocks for socks proxies)
            except ImportError:
                raise ProxyError("proxy URL %r needs PySocks: pip install requests[socks]" % shown) from None

    @property
    def requests_proxies(self):
        """The ``proxies=`` argument of requests: http and https targets through this proxy."""
        return {"http": self.url, "https": self.url}

    def __str__(self):
        return _mask(self.url)

    def __repr__(self):
        return "Proxy(%r)" % _mask(self.url)

    def __eq__(self, other):
        return isinstance(other, Proxy) and other.url == self.url

    def __hash__(self):
        return hash(self.url)


# -- sources ---------------------------------------------------------------------------------

class _ListSource:
    """Proxies given once (a URL on the command line); never changes."""

    redis = None

    def __init__(self, proxies):
        self.proxies = [Proxy(p) for p in proxies]
        self.name = ", ".join(str(p) for p in self.proxies)

    def load(self):
        return list(self.proxies)

    def changed(self):
        return False


class _FileSource:
    """A text file of proxy URLs, re-read when its mtime or size changes."""

    redis = None

    def __init__(self, path, log):
        self.path = self.name = path
        self.log = log
        self._stamp = None

    def _stat(self):
        st = os.stat(self.path)
        return st.st_mtime_ns, st.st_size

    def changed(self):
        try:
            return self._stat() != self._stamp
        except OSError:
            return True

    def load(self):
        try:
            self._stamp = self._stat()
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ProxyError("cannot read proxy file %s: %s" % (self.path, exc)) from None
        proxies = []
        for number, line in enumerate(lines, 1):
            line = line.split("#", 1)[0].strip()     # a proxy URL has no fragment
            if not line:
                continue
            try:
                proxies.append(Proxy(line))
            except ProxyError as exc:
                self.log.warning("%s:%d: skipped: %s", self.path, number, exc)
        return proxies


class _SetSource:
    """A Redis set of proxy URLs, read with one SMEMBERS per refresh."""

    def __init__(self, client, key, where, log):
        self.redis, self.key, self.log = client, key, log
        self.name = where
        self._bad = set()

    def changed(self):
        return True

    def load(self):
        try:
            members = sorted(m.decode("utf-8", "replace") for m in self.redis.smembers(self.key))
        except redis_lib.RedisError as exc:
            raise ProxyError("cannot read the proxy set %s: %s" % (self.name, exc)) from None
        proxies = []
        for member in members:
            try:
                proxies.append(Proxy(member))
            except ProxyError as exc:
                if member not in self._bad:
                    self._bad.add(member)
                    self.log.warning("proxy set %s: skipped a member: %s", self.name, exc)
        return proxies


def _open_source(source, client, log):
    if not isinstance(source, str) or not source.strip():
        raise ProxyError("empty proxy source: give a proxy URL, a file of them, or a Redis set")
    source = source.strip()
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if source.startswith("set:"):
        key = source[4:]
        if not key:
            raise ProxyError("proxy source 'set:' names no set: write set:KEY")
        if client is None:
            raise ProxyError("proxy source %s names a set on the run's Redis, but no Redis was given" % source)
        return _SetSource(client, key, source, log)
    if scheme in ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel"):
        address, _, key = source.partition("#")
        shown = _mask(address)
        if not key:
            raise ProxyError("proxy source %s names no set: end it with #KEY, e.g. "
                             "redis://127.0.0.1:6379/0#proxies" % shown)
        try:
            return _SetSource(redis_client(address), key, "%s#%s" % (shown, key), log)
        except ValueError as exc:
            raise ProxyError("proxy source %s: bad Redis URL: %s" % (shown, exc)) from None
    if scheme:
        return _ListSource([source])
    if os.path.isfile(source):
        return _FileSource(source, log)
    raise ProxyError("proxy source %r is not a proxy URL (http://host:port), an existing file, "
                     "or a Redis set (redis://host:port/db#KEY, set:KEY)" % source)
