"""``/metrics``: Prometheus text exposition, read from Redis and the store at scrape time.

Gauges (label ``spider``, the numbers of ``stat --json``): microspider_work,
microspider_backlog, microspider_in_flight, microspider_cached,
microspider_items, microspider_failures, microspider_workers,
microspider_sessions, microspider_cooling; and the counters
microspider_pages_total (pages done, the ``ok`` counter),
microspider_sessions_retired_total, microspider_throttled_total,
microspider_robots_denied_total, microspider_duplicates_total (seeds not queued:
their URL was already known) and microspider_render_fallbacks_total (pages
rendered again in Chromium).
"""
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

GAUGES = (
    ("work", "Seeds in the work queue"),
    ("backlog", "Seeds in the backlog, over-age ones included"),
    ("in_flight", "Seeds taken by workers and not yet acknowledged"),
    ("cached", "Fingerprints of seeds that succeeded"),
    ("items", "Items stored"),
    ("failures", "Failure documents stored"),
    ("workers", "Live worker processes"),
    ("sessions", "Live sessions (--sessions)"),
    ("cooling", "Hosts (per proxy) cooling down after a 429 or a 503 with Retry-After"),
)
COUNTERS = (
    ("sessions_retired", "Sessions retired (banned, used up, or their proxy dropped)"),
    ("throttled", "Throttling answers (429, or 503 with Retry-After)"),
    ("robots_denied", "Seeds not fetched because robots.txt disallows them"),
    ("duplicates", "Seeds not queued: the spider already knew their URL (queued, in flight, backlogged, "
                   "failed or done)"),
    ("render_fallbacks", "Pages another render engine failed on, rendered again in Chromium"),
)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class SpiderCollector:
    """A prometheus_client collector; `read()` returns {spider: (stat dict, pages done)}."""

    def __init__(self, read):
        self.read = read

    def collect(self):
        found = self.read()
        for field, text in GAUGES:
            family = GaugeMetricFamily("microspider_" + field, text, labels=["spider"])
            for name, (stat, _) in sorted(found.items()):
                family.add_metric([name], stat[field])
            yield family
        pages = CounterMetricFamily("microspider_pages", "Pages fetched and parsed successfully",
                                    labels=["spider"])
        for name, (_, done) in sorted(found.items()):
            pages.add_metric([name], done)
        yield pages
        for field, text in COUNTERS:
            family = CounterMetricFamily("microspider_" + field, text, labels=["spider"])
            for name, (stat, _) in sorted(found.items()):
                family.add_metric([name], stat[field])
            yield family


def exposition(read):
    """The text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SpiderCollector(read))
    return generate_latest(registry)
