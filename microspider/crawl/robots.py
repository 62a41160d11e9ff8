"""robots.txt (``--robots``): whether a seed may be fetched, and when (Crawl-delay).

Each origin's robots.txt is fetched once for the whole spider, through the
spider's own fetcher (its proxies, session, identity and rate limits), kept in
Redis for a day (``state/robots.py``) and read by Protego, Scrapy's RFC 9309
parser, for ``robots_agent`` (default: the ``*`` group).  Per RFC 9309: a 4xx
answer allows everything; a 5xx or no answer disallows everything for now, and
the file is asked for again after ``UNAVAILABLE_TTL``.  A ``Crawl-delay`` is the
minimum interval between two requests to the origin, for every process::

    robots = Robots(SpiderState(redis, "shop").robots_store(), fetcher, agent="*")
    try:
        if not robots.allowed(seed):
            ...                     # disallowed: finished, counted as robots_denied
    except NotYet as exc:
        ...                         # hold the seed exc.wait seconds (Crawl-delay, 5xx, fetching)

Each process keeps what it parsed, so a page costs no round trip for robots.txt
(one for the Crawl-delay slot when the origin sets one).
"""
import threading
import time
from urllib.parse import urlsplit

from protego import Protego

from ..errors import FetchError, NoProxy, NotYet
from ..seed import Seed

ALLOW_ALL = "allow all"        # 4xx: no robots.txt
UNAVAILABLE = "unavailable"    # 5xx or unreachable: disallow for now


def origin_of(url):
    """scheme://host[:port] of `url`, lower-cased, default ports left out."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = "" if parts.port in (None, default) else ":%d" % parts.port
    return "%s://%s%s" % (parts.scheme, host, port)


class Robots:
    """The robots.txt rules of every origin a spider fetches from, shared through Redis."""

    TTL = 86400.0            # a fetched robots.txt is trusted this long
    UNAVAILABLE_TTL = 60.0   # a 5xx or unreachable one is asked for again after this
    CLAIM_WAIT = 1.0         # another process is fetching it: look again after this
    MAX_BYTES = 512 * 1024   # read at most this much of a robots.txt (RFC 9309: at least 500 KiB)

    def __init__(self, store, fetcher, agent="*", clock=time.monotonic, unavailable_ttl=None):
        self.store, self.fetcher, self.agent, self.clock = store, fetcher, agent or "*", clock
        if unavailable_ttl is not None:
            self.UNAVAILABLE_TTL = unavailable_ttl
        self.rules = {}          # origin -> (rules, until clock)
        self._locks = {}         # origin -> lock: one fetch of it per process at a time
        self.fetch_timeout = 2 * getattr(fetcher, "timeout", 20.0) + 5

    def allowed(self, seed):
        """False when robots.txt disallows `seed`; NotYet when it must wait; else True (slot taken)."""
        origin = origin_of(seed.url)
        rules, until = self._rules(origin)
        if rules is ALLOW_ALL:
            return True
        if rules is UNAVAILABLE:
            raise NotYet("robots.txt of %s is unavailable; asking again later" % origin,
                         max(until - self.clock(), 0.1))
        if not rules.can_fetch(seed.url, self.agent):
            return False
        delay = rules.crawl_delay(self.agent)
        if delay:
            wait = self.store.space(origin, float(delay))
            if wait > 0:
                raise NotYet("Crawl-delay of %s" % origin, wait)
        return True

    def _rules(self, origin):
        """(rules, until) of `origin`: Protego, ALLOW_ALL or UNAVAILABLE; fetched if nobody has."""
        known = self.rules.get(origin)
        if known is not None and known[1] > self.clock():
            return known
        with self._locks.setdefault(origin, threading.Lock()):
            known = self.rules.get(origin)
            if known is not None and known[1] > self.clock():
                return known
            found = self.store.get(origin)
            if found is None:
                found = self._fetch(origin)
            status, body, ttl = found
            known = self.rules[origin] = (self._parse(status, body), self.clock() + ttl)
            return known

    def _fetch(self, origin):
        """(status, body, ttl) of `origin`'s robots.txt, fetched by this process and stored."""
        if not self.store.claim(origin, self.fetch_timeout):
            found = self.store.get(origin)      # stored by another process since we looked
            if found is not None:
                return found
            raise NotYet("robots.txt of %s is being fetched by another process" % origin,
                         self.CLAIM_WAIT)
        try:
            status, body = self._download(origin)
        except BaseException:
            self.store.release(origin)
            raise
        ttl = self.UNAVAILABLE_TTL if _unavailable(status) else self.TTL
        self.store.put(origin, status, body, ttl)
        return status, body, ttl

    def _download(self, origin):
        """(status, body) of GET origin/robots.txt through the spider's fetcher; status 0: no answer."""
        try:
            response = self.fetcher.fetch_resource(Seed(origin + "/robots.txt"))
        except NoProxy:
            raise
        except FetchError:
            return 0, b""
        return response.status_code, response.content[:self.MAX_BYTES]

    @staticmethod
    def _parse(status, body):
        if _unavailable(status):
            return UNAVAILABLE
        if status >= 400:
            return ALLOW_ALL
        return Protego.parse(body.decode("utf-8", "replace"))


def _unavailable(status):
    """No answer, a 5xx, a 429 (the server is busy), or a redirect loop left unresolved."""
    return status == 0 or status >= 500 or status == 429 or 300 <= status < 400
