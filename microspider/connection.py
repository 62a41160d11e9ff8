"""Where the data lives: the Redis URL and store URI to use, configured or embedded."""
import logging
import re
import socket
from urllib.parse import urlsplit

from . import embedded
from .errors import ConnectionFailed

log = logging.getLogger("microspider")
DEFAULT_REDIS = "redis://127.0.0.1:6379"
DEFAULT_MONGO = "mongodb://127.0.0.1:27017"


def mask(url):
    """The URL with any password replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url or "")


def normalize_redis_url(text):
    """`text` as a Redis URL: host:port, redis://, rediss://, unix://, or several cluster seed
    nodes comma-separated (redis://h1:7000,h2:7000); ConnectionFailed saying what is wrong."""
    text = text.strip()
    if "://" not in text:
        text = "redis://" + text
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
        raise ConnectionFailed("bad --redis %r: use host:port, redis://, rediss:// or unix://"
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
    if "redis" in settings.configured:
        return normalize_redis_url(settings.redis)
    if embedded.answers(DEFAULT_REDIS):
        return DEFAULT_REDIS
    url = embedded.redis_url()
    say("no Redis configured and none at 127.0.0.1:6379: using the embedded Redis in ./%s"
        % embedded.HOME)
    return url


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

