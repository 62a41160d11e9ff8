"""What happens to a seed after its fetch: the one outcome path of the worker and ``parse`` replay.

``parse_response`` applies the status rule and runs ``parse``; ``Outcome``
collects what a batch of finished seeds changes in Redis (``SpiderState.commit``
writes it): ``succeeded`` caches the seed and sends what parse yielded,
``backlogged`` sends a failed seed back with ``age + 1``.
"""
import traceback

from ..errors import HTTPStatusError
from ..spider import collect
from ..store import failure_doc
from .relay import backlog_score


def parse_response(spider, response, seed):
    """(items, sends) of ``spider.parse``; raises whatever parse raised.

    An error status reaches parse only when the spider lists it in ``handle_status``;
    otherwise it is an HTTPStatusError, stored as a parse failure.
    """
    def call():
        if response.status_code >= 400 and response.status_code not in spider.handle_status:
            raise HTTPStatusError("HTTP %d from %s" % (response.status_code, response.url))
        return spider.parse(response, seed)

    return collect(spider, call)


def parse_failure(seed, exc, response):
    """The failure document of a parse that raised `exc` (call inside the except block)."""
    return failure_doc(seed, type(exc).__name__, str(exc)[:2000], traceback.format_exc(), response)


class Outcome:
    """What a batch of finished seeds changes in Redis; ``SpiderState.commit`` writes it."""

    def __init__(self, name):
        self.name = name
        self.done = []            # raw seeds to remove from in-flight
        self.cache_adds = []
        self.backlog = {}         # raw -> score
        self.sends = {}           # target -> [raw]
        self.quarantine = []
        self.stats = {}
        self.pages = 0
        self.links = []           # downstream spiders to record (first send only)

    def __len__(self):
        return len(self.done)

    def count(self, field, n=1):
        if n:
            self.stats[field] = self.stats.get(field, 0) + n

    def finish(self, raw):
        self.done.append(raw)

    def to_quarantine(self, raw):
        self.quarantine.append(raw)
        self.count("quarantined")

    def succeeded(self, seed, sends, no_cache=False, linked=None):
        """A seed fetched and parsed: cache it, send what parse yielded, record new links."""
        if not no_cache:
            self.cache_adds.append(seed.cache_key)
        linked = set() if linked is None else linked
        for target, new in sends:
            self.sends.setdefault(target, []).append(new.to_json())
            if target != self.name and target not in linked and target not in self.links:
                self.links.append(target)
                linked.add(target)

    def backlogged(self, seed, settings, now):
        """A seed that failed: to the backlog with age + 1 (or dropped with --no-backlog)."""
        if settings.no_backlog:
            self.count("dropped")
            return
        aged = seed.replace(age=seed.age + 1)
        self.backlog[aged.to_json()] = backlog_score(aged.age, settings.max_age, settings.relay_delay, now)
        self.count("backlogged")
