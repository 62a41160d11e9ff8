"""Every Redis key microspider uses; only the state gateway imports this module.

All keys of one spider share the Redis Cluster hash tag ``{NAME}``, so its Lua
scripts and transactions stay on one slot.  ``microspider:spiders`` and other
spiders' keys live on other slots: on a cluster the gateway writes them
separately, before the spider's own transaction (``confirmed.py``).

==============================================  ======  ===================================================
key                                             type    holds
==============================================  ======  ===================================================
``microspider:{NAME}:work``                     list    seeds (JSON) of priority 0 waiting to be fetched;
                                                        head = next (the whole work queue before 0.4)
``microspider:{NAME}:work:N``                   list    seeds of priority N (a non-zero integer)
``microspider:{NAME}:work:levels``              zset    the non-zero priorities that may hold seeds
                                                        (member N, score N); a take scans it
``microspider:{NAME}:backlog``                  zset    failed seeds scored by due time (epoch s);
                                                        ``+inf`` = over ``--max-age``, parked
``microspider:{NAME}:cache``                    set     0.1's cache (12-byte fingerprints); read, then
                                                        moved into the buckets by ``run``
``microspider:{NAME}:cache:HEX``                hash    a cache bucket: fingerprint without the leading
                                                        bytes node HEX implies -> 16-bit success time;
                                                        field "" = the bucket's epoch (a minute)
``microspider:{NAME}:cache:meta``               hash    the cache's level, split pointer, count n
``microspider:{NAME}:cache:split``              hash    cache buckets split ahead of the pointer (HEX: 1)
``microspider:{NAME}:quarantine``               list    malformed seeds, as found
``microspider:{NAME}:inflight:WORKER``          list    seeds a worker has taken and not yet acknowledged
``microspider:{NAME}:workers``                  zset    worker ids scored by heartbeat expiry (epoch s)
``microspider:{NAME}:stats``                    hash    counters: fetched, ok, retried, backlogged,
                                                        sessions_retired, ...
``microspider:{NAME}:pages``                    hash    pages done per 5-second bucket (for pages/s)
``microspider:{NAME}:meta``                     hash    relay_mode, max_age, started, last run settings,
                                                        start_pushed (last push of the start seeds)
``microspider:{NAME}:upstream``                 set     spiders that sent seeds here or are declared
``microspider:{NAME}:crashes``                  hash    fingerprint -> deliveries that killed or hung a worker
``microspider:{NAME}:seeding``                  string  lock held while start seeds are pushed
``microspider:{NAME}:relaylock``                string  lock held while the backlog is unparked
``microspider:{NAME}:ratelimit``                hash    token bucket of ``--rate``
``microspider:{NAME}:ratelimit:HOST``           hash    token bucket of ``--rate-per-host``
``microspider:{NAME}:cooling``                  zset    hosts cooling down after a 429 / 503 + Retry-After:
                                                        "HOST|PROXY" -> end of the cool-down (server ms)
``microspider:{NAME}:cooling:steps``            hash    "HOST|PROXY" -> last doubling step (ms) of a host
                                                        throttled without Retry-After; reset on a success
``microspider:{NAME}:robots:ORIGIN``            string  an origin's robots.txt as fetched ("STATUS\n" +
                                                        body), 24 h; a short-lived "5xx" when unreachable
``microspider:{NAME}:robotslock:ORIGIN``        string  held by the one process fetching that robots.txt
``microspider:{NAME}:crawldelay:HOST``          string  present while HOST's robots.txt Crawl-delay has
                                                        not passed since the last request to it
``microspider:{NAME}:alerted:KIND``             string  when the last alert of KIND was sent (epoch s)
``microspider:{NAME}:sessions``                 hash    live sessions: id -> identity JSON (proxy, agent,
                                                        profile); at most ``--sessions`` fields
``microspider:{NAME}:session:ID``               hash    one session's state: ``uses`` reserved so far, and
                                                        its cookie jar, field "DOMAIN<TAB>NAME" -> value
``microspider:spiders``                         set     names of every spider that ever ran (for ``stat``)
==============================================  ======  ===================================================
"""

PREFIX = "microspider"
SPIDERS = PREFIX + ":spiders"


def _key(name, *parts):
    return ":".join((PREFIX, "{%s}" % name) + parts)


def work(name):
    """The work queue: its priority-0 list, and the key every work-queue script names."""
    return _key(name, "work")


def work_level(name, level):
    """The list of one priority level (0: the work key itself); lua/queue.lua derives the same."""
    return _key(name, "work", "%d" % level) if level else work(name)


def work_levels(name):
    """The non-zero priority levels that may hold seeds; lua/queue.lua derives the same."""
    return _key(name, "work", "levels")


def backlog(name):
    return _key(name, "backlog")


def cache(name):
    return _key(name, "cache")


def cache_meta(name):
    return _key(name, "cache", "meta")


def cache_splits(name):
    return _key(name, "cache", "split")


def cache_bucket(name, node):
    """A cache bucket by its node id in hex ("" gives the prefix the Lua script appends to)."""
    return _key(name, "cache", node)


def quarantine(name):
    return _key(name, "quarantine")


def inflight(name, worker):
    return _key(name, "inflight", worker)


def workers(name):
    return _key(name, "workers")


def stats(name):
    return _key(name, "stats")


def pages(name):
    return _key(name, "pages")


def meta(name):
    return _key(name, "meta")


def upstream(name):
    return _key(name, "upstream")


def crashes(name):
    return _key(name, "crashes")


def seeding(name):
    return _key(name, "seeding")


def relaylock(name):
    return _key(name, "relaylock")


def ratelimit(name, host=None):
    return _key(name, "ratelimit", host) if host else _key(name, "ratelimit")


def alerted(name, kind):
    return _key(name, "alerted", kind)


def sessions(name):
    return _key(name, "sessions")


def session(name, sid):
    """One session's uses and cookie jar ("" gives the prefix the Lua script appends to)."""
    return _key(name, "session", sid)


def cooling(name):
    return _key(name, "cooling")


def cooling_steps(name):
    return _key(name, "cooling", "steps")


def robots(name, origin):
    return _key(name, "robots", origin)


def robots_lock(name, origin):
    return _key(name, "robotslock", origin)


def crawl_delay(name, host):
    return _key(name, "crawldelay", host)
