"""Seed: one request to make, as it travels through the queues.

Fields are declared once in FIELDS; JSON encoding, decoding, copying and
validation all derive from that list.  On the wire a seed is a JSON object with
a schema version ``"v"``; fields at their default are left out, and fields this
version does not know are kept and written back unchanged.  ``priority`` comes
first after ``"v"`` (when not 0), so the queue's Lua reads it without decoding
the seed.

>>> s = Seed("http://example.com/list?page=2", meta={"city": "bj"})
>>> Seed.from_json(s.to_json()) == s
True
"""
import hashlib
import json
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import BadSeed, MalformedSeed

SCHEMA_VERSION = 1
METHODS = ("GET", "POST")
DEFAULT_PORTS = {"http": 80, "https": 443}
PRIORITY_RANGE = (-2 ** 31, 2 ** 31 - 1)   # a 32-bit integer, as lua/queue.lua reads it

# name -> factory of the default value; to_dict writes them in this order
FIELDS = {
    "priority": lambda: 0,
    "url": None,
    "method": lambda: "GET",
    "headers": dict,
    "cookies": dict,
    "query": dict,
    "data": lambda: None,
    "meta": dict,
    "age": lambda: 0,
}


# one encoder, built once: json.dumps with options builds a new one per call (most of its cost)
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_ALWAYS = object()   # a field without a default (url): always on the wire
_DEFAULTS = {name: (_ALWAYS if factory is None else factory()) for name, factory in FIELDS.items()}


class Seed:
    """A request: url, method, headers, cookies, query, data, meta, age and priority.

    Raises BadSeed (a ValueError) for a URL that is not http(s) or a method other than GET/POST.
    ``meta``, ``age`` and ``priority`` do not change the fingerprint.  ``priority`` (an int,
    default 0): within a spider's work queue a higher priority is taken first, FIFO within one.

    >>> Seed("http://example.com/urgent", priority=10).to_json()
    '{"v":1,"priority":10,"url":"http://example.com/urgent"}'
    """

    __slots__ = tuple(FIELDS) + ("extra", "_digest", "_json")

    def __init__(self, url, method="GET", headers=None, cookies=None, query=None,
                 data=None, meta=None, age=0, extra=None, priority=0):
        self.url = _check_url(url)
        self.method = _check_method(method)
        self.headers = _check_dict("headers", headers)
        self.cookies = _check_dict("cookies", cookies)
        self.query = _check_dict("query", query)
        if data is not None and not isinstance(data, (dict, str)):
            raise BadSeed("seed data must be a dict (form) or a str (raw body), not %s"
                             % type(data).__name__)
        self.data = data
        self.meta = _check_dict("meta", meta)
        if isinstance(age, bool) or not isinstance(age, int) or age < 0:
            raise BadSeed("seed age must be a non-negative int, not %r" % (age,))
        self.age = age
        self.priority = _check_priority(priority)
        self.extra = extra or {}
        self._digest = None
        self._json = None

    # -- serialisation -------------------------------------------------
    def to_dict(self):
        """The seed as a JSON-ready dict: ``"v"`` (schema version), ``url``, and every other field
        not at its default, then the unknown fields it arrived with.

        ``Seed.from_dict`` reads it back to an equal seed; two seeds are equal
        when their dicts are.  Failure documents keep a seed in this form.

        >>> Seed("http://example.com/", meta={"page": 2}).to_dict()
        {'v': 1, 'url': 'http://example.com/', 'meta': {'page': 2}}
        """
        out = {"v": SCHEMA_VERSION}
        for name, default in _DEFAULTS.items():
            value = getattr(self, name)
            if default is _ALWAYS or value != default:
                out[name] = value
        out.update(self.extra)
        return out

    def to_json(self):
        """The seed as it travels in the queues: ``to_dict`` as compact UTF-8 JSON text.

        Non-ASCII is kept as it is and separators have no spaces, so queued seeds stay small.
        A seed holding a lone surrogate encodes here but not to UTF-8 bytes;
        ``check_encodable`` says so before it is queued.

        >>> Seed("http://example.com/", method="POST", data={"q": "上海"}).to_json()
        '{"v":1,"url":"http://example.com/","method":"POST","data":{"q":"上海"}}'
        """
        return _ENCODE(self.to_dict())

    @classmethod
    def from_dict(cls, obj):
        """Build a seed from a decoded JSON object; ValueError if it is not one."""
        if not isinstance(obj, dict):
            raise BadSeed("a seed must be a JSON object, not %s" % type(obj).__name__)
        if "url" not in obj:
            raise BadSeed("a seed needs a 'url'")
        known = {k: obj[k] for k in FIELDS if k in obj}
        extra = {k: v for k, v in obj.items() if k not in FIELDS and k != "v"}
        return cls(extra=extra, **known)

    @classmethod
    def from_json(cls, raw):
        """Decode a seed from the wire; MalformedSeed if it is not a valid seed."""
        try:
            seed = cls.from_dict(json.loads(raw))
            # a lone surrogate can only arrive as a \uD800-\uDFFF escape: check only then
            escaped = b"\\u" if isinstance(raw, bytes) else "\\u"
            if escaped in raw:
                seed.check_encodable()
            return seed
        except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: nesting bombs
            raise MalformedSeed("%s: %s" % (type(exc).__name__, str(exc)[:200])) from None

    def check_encodable(self):
        """ValueError if the seed cannot travel as UTF-8 JSON (a lone surrogate, say)."""
        self._json = self.to_json()
        self._json.encode("utf-8")

    def encoded(self):
        """``to_json()``, kept from ``check_encodable``: for a seed the framework holds and nobody
        changes any more (one that parse yielded, after parse ended)."""
        return self._json if self._json is not None else self.to_json()

    def replace(self, **changes):
        """A copy with some fields changed."""
        fields = {name: getattr(self, name) for name in FIELDS}
        fields.update(changes)
        return Seed(extra=dict(self.extra), **fields)

    # -- identity ------------------------------------------------------
    @property
    def fingerprint(self):
        """Hex SHA-1 of method, canonical URL (query merged, sorted) and body."""
        return self._sha1().hex()

    @property
    def cache_key(self):
        """The 12 leading bytes of the fingerprint: what the cache stores."""
        return self._sha1()[:12]

    def _sha1(self):
        if self._digest is None:
            body = self.body()
            text = "%s %s\n" % (self.method, self.canonical_url())
            self._digest = hashlib.sha1(text.encode("utf-8") + (body or b"")).digest()
        return self._digest

    def canonical_url(self):
        """The URL with `query` merged in, parameters sorted, host lowercased, no fragment."""
        simple = _SIMPLE.match(self.url)
        if simple:   # the common form, read by one regular expression (as urlsplit reads it)
            scheme, host, port, path, query = simple.group(1, 2, 3, 4, 5)
            host = host.lower()
            if port and int(port) != DEFAULT_PORTS[scheme]:
                host = "%s:%d" % (host, int(port))
        else:
            parts = urlsplit(self.url)
            scheme, path, query = parts.scheme.lower(), parts.path, parts.query
            host = _authority(parts, scheme)
        params = parse_qsl(query, keep_blank_values=True) if query else []
        params.extend(_query_items(self.query))
        query = urlencode(sorted(params)) if params else ""
        return urlunsplit((scheme, host, path or "/", query, ""))

    def request_url(self):
        """The URL to fetch: the seed URL with `query` appended (order kept)."""
        if not self.query:
            return self.url
        sep = "&" if urlsplit(self.url).query else ("" if self.url.endswith("?") else "?")
        return self.url + sep + urlencode(_query_items(self.query))

    def body(self):
        """The request body as bytes (form data sorted), or None."""
        if self.data is None:
            return None
        if isinstance(self.data, dict):
            return urlencode(sorted(_query_items(self.data))).encode("utf-8")
        return self.data.encode("utf-8")

    def __eq__(self, other):
        return isinstance(other, Seed) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.fingerprint)

    def __repr__(self):
        return "<Seed %s %s age=%d>" % (self.method, self.url, self.age)


def cache_keys_of(raws):
    """The ``cache_key`` of each raw (JSON) seed that decodes; a malformed one is left out
    (the worker that meets it quarantines it)."""
    found = []
    for raw in raws:
        try:
            found.append(Seed.from_json(raw).cache_key)
        except ValueError:
            pass
    return found


def _authority(parts, scheme):
    """host[:port] of any netloc (user info, IPv6 included), lowercased, default port dropped."""
    host = (parts.hostname or "").lower()   # an IPv6 address unbracketed, as fingerprints always had it
    port = parts.port
    if port and port != DEFAULT_PORTS.get(scheme):
        host = "%s:%d" % (host, port)
    if "@" in parts.netloc and (parts.username or parts.password):
        host = "%s@%s" % (parts.netloc.rsplit("@", 1)[0], host)
    return host


def _query_items(mapping):
    items = []
    for key, value in mapping.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        items.extend((str(key), "" if v is None else str(v)) for v in values)
    return items


# http(s)://host[:port][path][?query][#fragment] with a plain host and no space or control
# character: what urlsplit splits the same way, read without it (a parse meets hundreds a page)
_SIMPLE = re.compile(r"(https?)://([A-Za-z0-9._-]+)(?::([0-9]{1,5}))?([/][^?#\s\x00-\x1f\x7f]*)?"
                     r"(?:\?([^#\s\x00-\x1f\x7f]*))?(?:#[^\s\x00-\x1f\x7f]*)?\Z")


def _check_url(url):
    if not isinstance(url, str):
        raise BadSeed("seed url must be a string, not %s" % type(url).__name__)
    simple = _SIMPLE.match(url)
    if simple and (simple.group(3) is None or int(simple.group(3)) <= 65535):
        return url
    try:
        parts = urlsplit(url.strip())
    except ValueError:   # an unclosed IPv6 bracket: urlsplit itself refuses it
        raise BadSeed("seed url must be an absolute http(s) URL, not %r" % url) from None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        raise BadSeed("seed url must be an absolute http(s) URL, not %r" % url)
    try:
        parts.port
    except ValueError:
        raise BadSeed("seed url has a bad port: %r" % url) from None
    return url.strip()


def _check_method(method):
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise BadSeed("seed method must be GET or POST, not %r" % (method,))
    return method.upper()


def _check_priority(priority):
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise BadSeed("seed priority must be an int from %d to %d, not %r" % (low, high, priority))
    return priority


def _check_dict(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadSeed("seed %s must be a dict, not %s" % (name, type(value).__name__))
    return value
