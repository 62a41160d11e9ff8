"""The rotating proxy pool and its health (``-p/--http-proxy``).

A source is one of::

    http://user:pw@10.0.0.1:3128      one proxy (schemes http, https, socks5, socks5h)
    proxies.txt                       a file, one proxy URL a line; blank lines and
                                      # comments ignored; a bad line is skipped with
                                      a warning naming its line number
    redis://[:pw@]host:port/db#KEY    the Redis set KEY on that server (rediss:// too)
    set:KEY                           the set KEY on the run's own Redis

``refresh()`` re-reads a file when its mtime or size changed and a Redis set's
members every time (one SMEMBERS), so proxies can be added and removed while
the crawl runs.  Health survives a refresh for the proxies that stay.

Health is kept per (proxy, target host); a proxy banned by one site may still
serve another.  The policy, in :class:`ProxyPool`'s class attributes:

* the score starts at 10; a success adds 1 (up to 20), a failure takes 3
  (down to the floor, 0);
* 3 consecutive failures for a host bench the proxy for that host for 30 s,
  and so does a failure that brings the score to the floor;
* when the bench ends the proxy gets exactly one trial request (no other
  request goes through it until that one is reported, or for 60 s); a failed
  trial benches it again for twice as long (30, 60, 120 ... capped at 600 s);
  a success ends the probation and resets the cool-down to 30 s;
* so a proxy that never works is chosen for 3 requests, then rests; its 4th
  failed request (the first trial) brings a fresh score from 10 to 0.  From a
  Redis-set source a proxy whose score reaches 0 on every host it was used for
  is dropped from the pool at once and SREM'd from the set by the next
  ``flush_stats()``, with a warning; from a URL or a file it stays, benched,
  and keeps getting one trial per cool-down.

Failures reported while a proxy is already benched (requests that were in
flight) lower its score but do not bench it again.

Counters of a Redis-set source go to the hash ``<KEY>:stats`` beside the set
(see :func:`stats_key`; it belongs to the user's set, not to a spider, so it
is named in proxies/pool.py rather than in the spider key map).  Its fields are ``<proxy URL>|<stat>``:

=================  ===========================================================
``URL|ok``         requests that succeeded, summed over every process (HINCRBY)
``URL|fail``       requests that failed, summed over every process
``URL|score``      the proxy's score on its best host, last writer wins
``URL|benched_until``  epoch seconds its bench on its best host ends (0 = not benched)
``URL|latency``    moving average of successful request time, seconds
=================  ===========================================================

The pool is meant for the greenlets of one process; benches are not shared
between processes, only the counters and the removals from the set.
"""
from ..errors import ProxyError
from .admin import add_proxies, list_proxies, remove_proxies
from .check import check_proxies
from .pool import ProxyPool, stats_key
from .source import Proxy

__all__ = ["Proxy", "ProxyPool", "ProxyError", "check_proxies", "add_proxies", "remove_proxies",
           "list_proxies", "stats_key"]
