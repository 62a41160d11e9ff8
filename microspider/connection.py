"""Where the data lives: the Redis URL and store URI to use, configured or embedded.

A Redis URL names one server (``redis://``, ``rediss://`` for TLS, ``unix://``),
a cluster's seed nodes (``redis://h1:7000,h2:7000``), or a master behind Sentinel:
``redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]``
(``rediss+sentinel://`` for TLS).  ``USER:PASSWORD@`` logs in with an ACL user
on any of them; ``redis_client`` builds the client for every form.
"""
import logging
import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from . import embedded
from .errors import ConnectionFailed

log = logging.getLogger("microspider")
DEFAULT_REDIS = "redis://127.0.0.1:6379"
DEFAULT_MONGO = "mongodb://127.0.0.1:27017"


def mask(url):
    """The URL with any password replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url or "")


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


@dataclass(frozen=True)
class SentinelAddress:
    """What a redis+sentinel:// URL says: where the sentinels are, which service, how to log in."""
    sentinels: tuple          # ((host, port), ...)
    service: str
    db: int = 0
    username: str = None
    password: str = None
    tls: bool = False


def is_sentinel(url):
    return (url or "").split("://", 1)[0].lower() in SENTINEL_SCHEMES


def parse_sentinel(url):
    """The SentinelAddress of a redis+sentinel:// URL; ValueError saying what is missing."""
    scheme, _, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    sentinels = []
    for host in hosts.split(","):
        name, colon, port = host.strip().rpartition(":")
        if not colon or not name or not port.isdigit():
            raise ValueError("each sentinel is HOST:PORT (26379 is Sentinel's usual port)")
        sentinels.append((name, int(port)))
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if not parts:
        raise ValueError("no service name: end it with /SERVICE, e.g. /mymaster")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError("the path is /SERVICE or /SERVICE/DB")
    return SentinelAddress(tuple(sentinels), unquote(parts[0]), int(parts[1]) if len(parts) == 2 else 0,
                           unquote(user) or None, unquote(password) or None,
                           scheme.lower() == "rediss+sentinel")


def redis_client(url, db=None, ca=None, **options):
    """A redis.Redis for `url` (one server or a Sentinel-managed master), on `db` if given.

    `ca` is a CA file for TLS (rediss://, rediss+sentinel://).  Behind Sentinel
    the client asks the sentinels for the master whenever it opens a connection,
    so it follows a failover by itself; while no master is known its commands
    raise ConnectionError (MasterNotFoundError), which callers treat as an outage."""
    import redis

    if not is_sentinel(url):
        tls = {"ssl_ca_certs": ca} if ca and url.lower().startswith("rediss://") else {}
        return redis.Redis.from_url(url, **({} if db is None else {"db": db}), **tls, **options)
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    found = parse_sentinel(url)
    tls = {"ssl": True, **({"ssl_ca_certs": ca} if ca else {})} if found.tls else {}
    # each sentinel asked once per look-up (the look-up tries the next one; the caller retries)
    sockets = {k: v for k, v in options.items() if k.startswith("socket_")}
    once = {"retry": Retry(NoBackoff(), 0)}
    sentinel = Sentinel(list(found.sentinels), sentinel_kwargs={**sockets, **tls, **once}, **tls)
    return sentinel.master_for(found.service, db=found.db if db is None else db,
                               username=found.username, password=found.password, **options)


def normalize_redis_url(text):
    """`text` as a Redis URL: host:port, redis://, rediss://, unix://, several cluster seed
    nodes comma-separated (redis://h1:7000,h2:7000) or redis+sentinel://; ConnectionFailed
    saying what is wrong."""
    text = text.strip()
    if "://" not in text:
        text = "redis://" + text
    if is_sentinel(text):
        try:
            parse_sentinel(text)
        except ValueError as exc:
            raise ConnectionFailed("bad --redis %r: %s" % (mask(text), exc)) from None
        return text
    for url in seed_urls(text):
        _check_url(url, text)
    return text


def seed_urls(url):
    """One URL per node of a comma-separated seed list (credentials, path and query repeated);
    a URL naming one node comes back alone."""
    scheme, sep, rest = url.partition("://")
    if not sep or "," not in rest.split("/", 1)[0]:
        return [url]
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    return ["%s://%s%s%s%s" % (scheme, userinfo, at, host.strip(), slash + tail)
            for host in hosts.split(",")]


def _check_url(url, text):
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConnectionFailed("bad --redis %r: use host:port, redis://, rediss://, unix:// or "
                               "redis+sentinel://"
                               % mask(text))
    if parts.scheme == "unix":
        if url != text:
            raise ConnectionFailed("bad --redis %r: a cluster's seed nodes are host:port, not unix://"
                                   % mask(text))
        return
    try:
        parts.port
    except ValueError:
        raise ConnectionFailed("bad --redis %r: the port is not a number" % mask(text)) from None
    if not parts.hostname:
        raise ConnectionFailed("bad --redis %r: no host" % mask(text))


def resolve_redis(settings, say=log.info):
    """The Redis URL to use: configured, else 127.0.0.1:6379 if it answers, else embedded."""
    _check_ca(settings.redis_ca)
    if "redis" in settings.configured:
        return normalize_redis_url(settings.redis)
    if embedded.answers(DEFAULT_REDIS):
        return DEFAULT_REDIS
    url = embedded.redis_url()
    say("no Redis configured and none at 127.0.0.1:6379: using the embedded Redis in ./%s"
        % embedded.HOME)
    return url


def _check_ca(path):
    """ConnectionFailed for a --redis-ca that is not a readable file (else TLS says only 'no answer')."""
    if path and not os.path.isfile(path):
        raise ConnectionFailed("--redis-ca %s: no such file" % path)


def resolve_store(settings, say=log.info):
    """The store URI: configured, else MongoDB at 127.0.0.1:27017 if it answers, else embedded."""
    if "mongo_uri" in settings.configured:
        uri = settings.mongo_uri
        if uri.startswith("mongodb"):
            _check_mongo(uri)
        return uri
    if _port_open("127.0.0.1", 27017):
        return DEFAULT_MONGO
    say("no MongoDB configured and none at 127.0.0.1:27017: using the embedded store "
        "./%s/store.sqlite3" % embedded.HOME)
    return embedded.store_uri()


def _check_mongo(uri):
    try:
        import pymongo

        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000)
        try:
            client.admin.command("ping")
        finally:
            client.close()
    except Exception as exc:
        raise ConnectionFailed("MongoDB at %s does not answer: %s"
                               % (mask(uri), str(exc).splitlines()[0][:200])) from None


def _port_open(host, port, timeout=0.3):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False

