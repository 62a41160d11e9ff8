"""Redis clients for the three roles of a spider's state: work, backlog and cache.

Roles on the same db share one client, so their commands can share one pipeline.
"""
import re
from urllib.parse import urlsplit

from ..errors import ConnectionFailed
from ..connection import mask


class Redis:
    """The three Redis roles of a spider: work (+ in-flight, stats), backlog and cache."""

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
        from ..connection import resolve_redis

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
