"""Where the data lives: Redis clients per db role, the store, and the embedded default."""
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
    if "://" not in text:
        text = "redis://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConnectionFailed("bad --redis %r: use host:port, redis://, rediss:// or unix://"
                               % mask(text))
    if parts.scheme != "unix":
        try:
            parts.port
        except ValueError:
            raise ConnectionFailed("bad --redis %r: the port is not a number" % mask(text)) from None
        if not parts.hostname:
            raise ConnectionFailed("bad --redis %r: no host" % mask(text))
    return text


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


class Redis:
    """The three Redis roles of a spider: work (+ in-flight, stats), backlog and cache.

    Roles on the same db share one client, so their commands can share one pipeline.
    """

    def __init__(self, url, work_db=0, backlog_db=0, cache_db=0, check=True):
        import redis

        self.url = url
        clients = {}
        for role, db in (("work", work_db), ("backlog", backlog_db), ("cache", cache_db)):
            if db not in clients:
                clients[db] = redis.Redis.from_url(url, db=db, socket_timeout=30,
                                                   socket_connect_timeout=5, health_check_interval=30)
            setattr(self, role, clients[db])
        self.single = len(clients) == 1
        if check:
            try:
                self.work.ping()
            except redis.RedisError as exc:
                raise ConnectionFailed("Redis at %s does not answer: %s" % (mask(url), exc)) from None

    @classmethod
    def from_settings(cls, settings, url=None, check=True):
        url = url or resolve_redis(settings)
        base = _url_db(url)
        dbs = [getattr(settings, o) if o in settings.configured else base
               for o in ("work_queue", "backlog_queue", "cache_db")]
        return cls(url, *dbs, check=check)

    def close(self):
        for client in {id(c): c for c in (self.work, self.backlog, self.cache)}.values():
            client.close()


def _url_db(url):
    parts = urlsplit(url)
    if parts.scheme == "unix":
        match = re.search(r"[?&]db=(\d+)", url)
        return int(match.group(1)) if match else 0
    path = parts.path.strip("/")
    return int(path) if path.isdigit() else 0
