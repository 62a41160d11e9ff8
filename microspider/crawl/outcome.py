"""What happens to a seed after its fetch: the one outcome path of the worker and ``parse`` replay.

``parse_response`` applies the status rule and runs ``parse``.  The worker
turns what happened to each seed into a record (``Parsed``, ``FetchFailed``,
``NoProxyLeft``, ``ThrottledTooLong``, ``ParseFailed``, ``RobotsDenied``, ``Cached``,
``Malformed``) and never asks
which one it holds: a ``Batch`` of records saves their store part (items,
failures), then each record writes its Redis part into an ``Outcome``, which
``SpiderState.commit`` writes and acknowledges.  ``Outcome.succeeded`` caches a
seed and sends what parse yielded; ``Outcome.backlogged`` sends a failed seed
back with ``age + 1``.
"""
import time
import traceback

from ..config import Settings
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


def parse_timeout(seed, seconds, response):
    """The failure document of a parse that ran past ``--parse-timeout`` `seconds`."""
    return failure_doc(seed, "ParseTimeout", "parse ran past --parse-timeout %gs" % seconds, "", response)


# -- what happened to one seed ----------------------------------------------------------
class Record:
    """One finished seed: what the store keeps of it and what it writes into an Outcome."""

    items = ()        # for the item store
    failure = None    # a failure document for the failure store
    fixed = None      # the fingerprint whose stored failure is now obsolete

    def __init__(self, raw, seed=None):
        self.raw, self.seed = raw, seed

    def write(self, outcome, stored):
        """Add this seed's Redis part to `outcome`; `stored`: the batch's store part was written."""
        raise NotImplementedError


class Parsed(Record):
    """Fetched and parsed: an item batch, and seeds to send."""

    def __init__(self, raw, seed, items, sends):
        super().__init__(raw, seed)
        self.items, self.sends, self.fixed = items, sends, seed.fingerprint

    def write(self, outcome, stored):
        if not stored:   # its items are not saved: it must come round again
            outcome.count("store_errors")
            outcome.backlogged(self.seed)
            return
        outcome.succeeded(self.seed, self.sends)
        outcome.count("ok")
        outcome.count("items", len(self.items))
        outcome.pages += 1


class FetchFailed(Record):
    """No usable response after the retries (a connection error, a timeout, a ban): to the backlog."""

    counter = "fetch_failures"

    def write(self, outcome, stored):
        outcome.count(self.counter)
        outcome.backlogged(self.seed)


class NoProxyLeft(FetchFailed):
    """Not fetched: no proxy of the pool was usable (all benched or gone)."""

    counter = "no_proxy"


class ThrottledTooLong(FetchFailed):
    """The host asked us to wait longer than ``--max-retry-after``: to the backlog, not a failure."""

    counter = "throttled_backlogged"


class RobotsDenied(Record):
    """Not fetched: robots.txt disallows it.  Finished like a success with nothing to keep, so
    it is not met again; counted as ``robots_denied``, not as a page."""

    def write(self, outcome, stored):
        outcome.succeeded(self.seed, ())
        outcome.count("robots_denied")


class ParseFailed(Record):
    """Parse raised or ran too long: the failure document is stored, the seed backlogged."""

    def __init__(self, raw, seed, failure):
        super().__init__(raw, seed)
        self.failure = failure

    def write(self, outcome, stored):
        outcome.count("parse_failures" if stored else "store_errors")
        outcome.backlogged(self.seed)


class Cached(Record):
    """Skipped: the cache holds a fresh success of this seed."""

    def write(self, outcome, stored):
        outcome.count("cached")


class Malformed(Record):
    """A queued seed that cannot be decoded: to quarantine."""

    def write(self, outcome, stored):
        outcome.to_quarantine(self.raw)


class Batch:
    """Records of finished seeds, waiting to be saved and acknowledged together."""

    def __init__(self):
        self.records = []

    def __len__(self):
        return len(self.records)

    def add(self, record):
        self.records.append(record)

    def save(self, store):
        """Write the store part: items, failure documents, obsolete failures; StoreError if not."""
        items = [item for r in self.records for item in r.items]
        failures = [r.failure for r in self.records if r.failure is not None]
        fixed = [r.fixed for r in self.records if r.fixed is not None]
        if items:
            store.save_items(items)
        if failures:
            store.save_failures(failures)
        if fixed:
            store.remove_failures(fixed)

    def outcome(self, name, stored, settings, now, linked=None):
        """The Redis part of the batch as an Outcome (`stored`: ``save`` succeeded)."""
        outcome = Outcome(name, settings, now, linked)
        for record in self.records:
            outcome.finish(record.raw)
            record.write(outcome, stored)
        return outcome


# -- what a batch writes in Redis -------------------------------------------------------
class Outcome:
    """What a batch of finished seeds changes in Redis; ``SpiderState.commit`` writes it.

    `settings` gives no_cache, no_backlog, max_age and relay_delay; `now` dates
    the backlog scores; `linked` (shared across batches) names the downstream
    spiders already recorded, so a link is written once.
    """

    def __init__(self, name, settings=None, now=None, linked=None):
        self.name = name
        self.settings = settings or Settings()
        self.now = time.time() if now is None else now
        self.linked = set() if linked is None else linked
        self.done = []            # raw seeds to remove from in-flight
        self.cache_adds = []
        self.unseen = []          # seeds done under --no-cache: the frontier forgets them
        self.backlog = {}         # raw -> score
        self.sends = {}           # target -> [(cache key, raw)], admitted by the target's frontier
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

    def succeeded(self, seed, sends):
        """A seed fetched and parsed: cache it, send what parse yielded, record new links.

        Under --no-cache the frontier forgets it instead, so it is queued again when met."""
        (self.unseen if self.settings.no_cache else self.cache_adds).append(seed.cache_key)
        for target, new in sends:
            self.sends.setdefault(target, []).append((new.cache_key, new.encoded()))
            if target != self.name and target not in self.linked:
                self.links.append(target)
                self.linked.add(target)

    def backlogged(self, seed):
        """A seed that failed: to the backlog with age + 1 (or dropped with --no-backlog)."""
        settings = self.settings
        if settings.no_backlog:
            self.count("dropped")
            return
        aged = seed.replace(age=seed.age + 1)
        self.backlog[aged.to_json()] = backlog_score(aged.age, settings.max_age, settings.relay_delay,
                                                     self.now)
        self.count("backlogged")
