"""Is a crawl of the Ctrip-like site complete?  ``check(truth, items, failures) -> Report``, a pure function.

Complete means: every hotel that is not broken is exactly one item equal to its
truth record, no other item exists, and every broken hotel has a failure record
(its page was stored when the parser rejected it).  ``demo.py`` feeds it the
site's ``/_truth`` and ctrip_hotel_info's items and failure documents.

>>> truth = [{"_id": "1000001", "name": "A", "city": "北京", "opened": 2001, "renovated": None,
...           "broken": False}]
>>> check(truth, [], []).verdict()
'INCOMPLETE: 0/1 hotels collected, 0 broken hotels visible as failures, 1 lost'
"""
import re
from collections import Counter
from dataclasses import dataclass, field

FIELDS = ("name", "city", "opened", "renovated")
HOTEL_URL = re.compile(r"/hotel/(\d+)\.html")
SHOW = 10  # ids listed per problem


@dataclass
class Report:
    """What a crawl got, compared with the truth.  ``complete`` is the verdict."""

    expected: int = 0                                  # hotels that are not broken
    collected: int = 0                                 # of those, one item with the right values
    broken: list = field(default_factory=list)         # ids of broken hotels
    missing: list = field(default_factory=list)        # expected ids without an item
    wrong: list = field(default_factory=list)          # (id, field, got, truth)
    duplicates: list = field(default_factory=list)     # ids with more than one item
    unexpected: list = field(default_factory=list)     # item ids of broken or unknown hotels
    hidden_broken: list = field(default_factory=list)  # broken ids without a failure record
    stray_failures: list = field(default_factory=list)  # failure records of collected hotels
    problems: list = field(default_factory=list)       # anything else that went wrong (run exits)

    @property
    def lost(self):
        return len(self.missing) + len(self.hidden_broken)

    @property
    def complete(self):
        return not (self.missing or self.wrong or self.duplicates or self.unexpected
                    or self.hidden_broken or self.problems)

    def verdict(self):
        """The last line: ``COMPLETE: ...`` or ``INCOMPLETE: ...``."""
        line = "%d/%d hotels collected, %d broken hotels visible as failures, %d lost" % (
            self.collected, self.expected, len(self.broken) - len(self.hidden_broken), self.lost)
        if self.complete:
            return "COMPLETE: " + line
        extra = [("%d wrong" % len(self.wrong)) if self.wrong else "",
                 ("%d duplicated" % len(self.duplicates)) if self.duplicates else "",
                 ("%d unexpected" % len(self.unexpected)) if self.unexpected else ""]
        return "INCOMPLETE: " + "; ".join([line] + [e for e in extra if e] + self.problems)

    def details(self):
        """The lines that explain the verdict (empty when there is nothing to explain)."""
        out = []
        for label, ids in (("missing", self.missing), ("duplicated items", self.duplicates),
                           ("unexpected items", self.unexpected),
                           ("broken hotels without a failure record", self.hidden_broken),
                           ("failure records of collected hotels (stale, harmless)", self.stray_failures)):
            if ids:
                out.append("%s: %d (%s%s)" % (label, len(ids), ", ".join(ids[:SHOW]),
                                              ", ..." if len(ids) > SHOW else ""))
        for hotel_id, name, got, want in self.wrong[:SHOW]:
            out.append("wrong value: hotel %s %s = %r, truth %r" % (hotel_id, name, got, want))
        return out


def check(truth, items, failures):
    """Compare items and failure records with the site's truth.

    ``truth``: the records of ``/_truth`` ({"_id", "name", "city", "opened",
    "renovated", "broken"}); ``items``: ctrip_hotel_info's items; ``failures``:
    its failure documents (only ``seed.url`` is read).  Every hotel that is not
    broken must be one item equal to its truth; every broken one must have a
    failure record.
    """
    truth = {record["_id"]: record for record in truth}
    counts = Counter(str(item.get("_id")) for item in items)
    by_id = {str(item.get("_id")): item for item in items}
    failed = {hotel_id_of(doc) for doc in failures}
    report = Report()
    report.broken = sorted(i for i, record in truth.items() if record["broken"])
    expected = sorted(i for i, record in truth.items() if not record["broken"])
    report.expected = len(expected)
    report.duplicates = sorted(i for i, n in counts.items() if n > 1)
    report.unexpected = sorted(i for i in counts if i not in truth or truth[i]["broken"])
    report.hidden_broken = [i for i in report.broken if i not in failed]
    for hotel_id in expected:
        item = by_id.get(hotel_id)
        if item is None:
            report.missing.append(hotel_id)
            continue
        wrong = [(hotel_id, name, item.get(name), truth[hotel_id][name]) for name in FIELDS
                 if item.get(name) != truth[hotel_id][name]]
        report.wrong.extend(wrong)
        if hotel_id in failed:
            report.stray_failures.append(hotel_id)
        if not wrong and counts[hotel_id] == 1:
            report.collected += 1
    return report


def hotel_id_of(failure):
    """The hotel id in a failure document's seed URL (None for another page)."""
    match = HOTEL_URL.search((failure.get("seed") or {}).get("url") or failure.get("url") or "")
    return match.group(1) if match else None
