"""Stored failures back into the crawl: re-parse their responses, or refetch their seeds.

``reparse`` (the ``parse`` command) runs the spider's current ``parse`` on the
responses kept in the failure store, without fetching: what the worker does
after a fetch, with the same meaning of success.  ``retry`` sends the seeds of
stored failures back to the work queue to be fetched again.

Either way a seed handled here is taken out of the backlog too (matched by
fingerprint, since its JSON there carries another age): one streaming pass
over the backlog at the end, O(backlog), run only when something was handled.
"""
import collections

from ..config import Settings
from ..crawl.outcome import Outcome, parse_failure, parse_response
from ..transport.response import from_failure
from ..seed import Seed
from ..state import SpiderState
from ..state.chunking import batched

BATCH = 100           # failure documents (with their bodies) in memory at once
SCAN = 1000
NO_RESPONSE = "(no response stored)"


class Summary:
    """What a ``parse`` run did."""

    def __init__(self):
        self.reparsed = self.fixed = self.items = self.sent = self.unbacklogged = 0
        self.failing = collections.Counter()   # error class -> still failing

    def line(self, name):
        failing = sum(self.failing.values())
        errors = ", ".join("%s %d" % kv for kv in sorted(self.failing.items()))
        return ("%s: re-parsed %d: fixed %d (%d items stored, %d seeds sent, %d taken out of the "
                "backlog), still failing %d%s" % (name, self.reparsed, self.fixed, self.items, self.sent,
                                                  self.unbacklogged, failing,
                                                  " (%s)" % errors if errors else ""))


# -- parse ------------------------------------------------------------------------
def reparse(spider, redis, store, limit=None, no_cache=False):
    """Re-run ``spider.parse`` on up to `limit` stored failures (oldest first); returns a Summary.

    A success stores the items, sends the new seeds (recording upstream links as
    the worker does), caches the seed unless `no_cache`, removes the failure and
    takes the seed out of the backlog.  A failure again updates the stored
    document (attempts + 1).  Redis is written before the failure is removed,
    so a crash in between repeats work, never loses it.
    """
    summary, fixed, seen = Summary(), set(), set()
    total = limit or store.count_failures()   # documents re-saved meanwhile do not come round again
    docs = (d for d in store.iter_failures(limit=total) if d["_id"] not in seen)
    for batch in batched(docs, BATCH):
        seen.update(d["_id"] for d in batch)
        fixed.update(_reparse_batch(spider, redis, store, batch, no_cache, summary))
    if fixed:
        summary.unbacklogged = drop_from_backlog(redis, spider.name, fixed)
    return summary


def _reparse_batch(spider, redis, store, docs, no_cache, summary):
    outcome, failed, fixed, items = Outcome(spider.name, Settings(no_cache=no_cache)), [], [], []
    for doc in docs:
        try:
            seed = Seed.from_dict(doc["seed"])
        except (ValueError, TypeError, KeyError):
            summary.failing["MalformedSeed"] += 1
            continue
        if doc.get("status") is None:
            summary.failing[NO_RESPONSE] += 1   # nothing to parse: `retry` refetches it
            continue
        summary.reparsed += 1
        response = from_failure(doc)
        try:
            found, sends = parse_response(spider, response, seed)
        except Exception as exc:
            summary.failing[type(exc).__name__] += 1
            failed.append(parse_failure(seed, exc, response))
            continue
        outcome.succeeded(seed, sends)
        items.extend(found)
        fixed.append(seed.fingerprint)
        summary.sent += len(sends)
    summary.fixed += len(fixed)
    summary.items += len(items)
    if items:
        store.save_items(items)
    if failed:
        store.save_failures(failed)
    if fixed:
        outcome.count("reparsed", len(fixed))
        outcome.count("items", len(items))
        SpiderState(redis, spider.name).commit(outcome, worker="parse")
        store.remove_failures(fixed)
    return fixed


# -- listing ----------------------------------------------------------------------
LISTED = ("_id", "error", "status", "url", "attempts", "last_failed")


def listing(store, limit=None):
    """One short dict per stored failure (its ID, error, status, URL, attempts), oldest first.

    The ID is what ``microspider try SPIDER --failure ID`` takes.
    """
    for doc in store.iter_failures(limit=limit):
        yield {field: doc.get(field) for field in LISTED}


# -- retry ------------------------------------------------------------------------
def retry(redis, store, name, limit=None):
    """Send the seeds of up to `limit` stored failures to the work queue, age 0.

    They are queued whatever the frontier holds of them (so the worker fetches
    them even if they were cached) and taken out of the backlog after.  The failure documents stay
    until the seeds succeed.  Returns (sent, malformed, taken out of the backlog).
    """
    state, sent, malformed, fingerprints = SpiderState(redis, name), 0, 0, set()
    for batch in batched(store.iter_failures(limit=limit), SCAN):
        seeds = []
        for doc in batch:
            try:
                seeds.append(Seed.from_dict(doc["seed"]).replace(age=0))
            except (ValueError, TypeError, KeyError):
                malformed += 1
        if seeds:
            state.clear_crashes([s.fingerprint for s in seeds])
            sent += state.admit(seeds, force=True)[0]
            fingerprints.update(s.fingerprint for s in seeds)
    return sent, malformed, drop_from_backlog(redis, name, fingerprints) if fingerprints else 0


# -- backlog ----------------------------------------------------------------------
def drop_from_backlog(redis, name, fingerprints):
    """Remove from the backlog every seed with one of these fingerprints; returns how many."""
    backlog, removed = SpiderState(redis, name).backlog, 0
    for chunk in backlog.scan():
        removed += backlog.remove([raw for raw, _ in chunk if _fingerprint(raw) in fingerprints])
    return removed


def _fingerprint(raw):
    try:
        return Seed.from_json(raw).fingerprint
    except ValueError:
        return None

