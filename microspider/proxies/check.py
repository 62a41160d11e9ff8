"""``microspider proxy check``: fetch one URL through every proxy of a source.

Each check is one exchange through a fetcher of the crawl's own transports
(the caller passes a maker: ``microspider.transport.probe_fetcher``), so a
proxy that passes here works in a crawl.
"""
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import ProxyError
from .source import Proxy


def check_proxies(proxies, url, new_client, concurrency=20):
    """Fetch `url` through each proxy at once; one row per proxy, in the given order.

    `new_client()` makes the fetcher of one check (closed after it).
    Each row: ``proxy`` (the URL), ``ok`` (an answer below 400), ``latency`` (seconds, None
    when no answer came), ``status`` and ``error`` (one line, or None).  Runs on a thread
    pool, which is cooperative under gevent's monkey-patching.
    """
    proxies = list(proxies)
    if not proxies:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(proxies)))) as pool:
        return list(pool.map(lambda proxy: _check_one(proxy, url, new_client), proxies))


def _check_one(proxy, url, new_client):
    from ..seed import Seed

    row = {"proxy": proxy.url if isinstance(proxy, Proxy) else proxy,
           "ok": False, "latency": None, "status": None, "error": None}
    try:
        proxy = Proxy(proxy)
    except ProxyError as exc:
        row["error"] = str(exc)
        return row
    client = new_client()
    started = time.monotonic()
    try:
        response = client.request_once(Seed(url), proxy)
    except Exception as exc:  # whatever the transport raised: one line in the row
        row["error"] = _describe(exc)
        return row
    finally:
        client.close()
    row["latency"] = round(time.monotonic() - started, 4)
    row["status"] = response.status_code
    row["ok"] = response.status_code < 400
    if not row["ok"]:
        row["error"] = "HTTP %d" % response.status_code
    return row


def _describe(exc):
    """`exc` in one short line: its class and its innermost reason."""
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", None) or reason
    if isinstance(reason, Exception) and len(reason.args) > 1 and isinstance(reason.args[1], Exception):
        reason = "%s (%s)" % (reason.args[0], reason.args[1])
    text = "".join(c if c.isprintable() else "?" for c in " ".join(str(reason).split()))
    kind = type(exc).__name__
    if "timed out" in text.lower() and "Timeout" not in kind:
        kind = "Timeout"
    return "%s: %s" % (kind, text[:200])
