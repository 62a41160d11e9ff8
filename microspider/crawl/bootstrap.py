"""The body of a worker process: build the spider, connections and fetcher from a job, then run.

``microspider _worker`` (after gevent has patched everything) calls ``run_worker``
with the JSON job its supervisor put in the environment.
"""
import dataclasses
import json
import logging
import signal

import gevent

from ..backoff import Backoff
from ..config import Settings
from ..errors import StoreError
from ..identity import language_of
from ..spider import instantiate, load_spider
from ..state import Redis, SpiderState
from ..store import open_store

log = logging.getLogger("microspider")
JOB_ENV = "MICROSPIDER_WORKER_JOB"
WATCHDOG_TICK = 0.25


def worker_job(spider_ref, settings, redis_url, store_uri, worker_id, monitor_fd=None, cluster=False):
    """The JSON job of one worker process (`cluster`: the run found a Redis Cluster at redis_url)."""
    values = dataclasses.asdict(settings)
    values["configured"] = sorted(settings.configured)
    return json.dumps({"spider": spider_ref, "settings": values, "redis": redis_url,
                       "store": store_uri, "id": worker_id, "monitor_fd": monitor_fd,
                       "cluster": bool(cluster)})


def run_worker(job_text):
    """Run one worker process until it is stopped; returns its exit code."""
    from ..transport import make_fetcher
    from .worker import Monitor, Worker

    job = json.loads(job_text)
    monitor = Monitor(job.get("monitor_fd"))
    gevent.spawn(monitor.beat_forever)  # from the start: loading and waiting for Redis are signs of life too
    values = dict(job["settings"])
    values["configured"] = frozenset(values["configured"])
    settings = Settings(**values)
    spider = instantiate(load_spider(job["spider"]))
    redis = Redis.from_settings(settings, url=job["redis"], check=False,  # register() waits for it
                                cluster=job.get("cluster", False))
    store = _open_store_patiently(job["store"], settings.mongo_db, spider.name)
    state = SpiderState(redis, spider.name)
    proxies = None
    if settings.http_proxy:
        from ..proxies import ProxyPool

        proxies = ProxyPool.from_source(settings.http_proxy, redis=redis.work)
    sessions = session_pool(spider, settings, state, proxies)
    fetcher = make_fetcher(spider, settings, proxies=proxies, **sessions,
                           limiter=state.rate_limiter(settings.rate) if settings.rate else None,
                           host_limiter=(state.host_rate_limiter(settings.rate_per_host)
                                         if settings.rate_per_host else None))
    worker = Worker(spider, settings, redis, store, job["id"], fetcher, proxies=proxies,
                    monitor=monitor)
    gevent.signal_handler(signal.SIGTERM, worker.stop)
    gevent.signal_handler(signal.SIGINT, worker.stop)
    _install_parse_watchdog(worker)
    worker.run()
    if sessions:
        sessions["sessions"].close()
    store.close()
    return 1 if worker.failed else 0


def session_pool(spider, settings, state, proxies):
    """{"sessions": the process's SessionPool} with ``--sessions N``; {} with 0."""
    if not settings.sessions:
        return {}
    from ..sessions import SessionPool

    renderer = None
    if settings.session_warmup == "render" and not settings.render:  # a browser earns the cookies
        from ..transport import fetcher_class

        renderer = fetcher_class("browser")(spider, settings)
    return {"sessions": SessionPool(state.sessions, settings.sessions, settings.session_max_uses,
                                    proxies=proxies, agents=spider.user_agents,
                                    language=language_of(spider.headers),
                                    profile=getattr(settings, "impersonate", None), renderer=renderer,
                                    patience=2 * settings.timeout if renderer or settings.render
                                    else 5.0)}


def _install_parse_watchdog(worker):
    """SIGALRM every WATCHDOG_TICK seconds: ends a parse that never yields (see Worker.check_parse_timeout).

    A plain signal handler, not gevent's: it must run in whatever greenlet holds
    the CPU, which gevent's deferred handlers never would.
    """
    signal.signal(signal.SIGALRM, lambda signum, frame: worker.check_parse_timeout())
    signal.setitimer(signal.ITIMER_REAL, WATCHDOG_TICK, WATCHDOG_TICK)


def _open_store_patiently(uri, db, name, wait=gevent.sleep):
    """open_store, retried with back-off (and said) while the store cannot be opened."""
    backoff = Backoff(0.5, 30.0)
    while True:
        try:
            return open_store(uri, db, name)
        except StoreError as exc:
            delay = backoff.next()
            log.warning("%s: %s; retrying in %.0fs", name, exc, delay)
            wait(delay)
