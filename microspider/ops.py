"""Library side of the operations commands: push, stat, export (and friends)."""
import csv
import json
import sys

from . import keys, status
from .errors import ConfigError
from .queues import Queues
from .seed import Seed

PUSH_BATCH = 1000


# -- push -------------------------------------------------------------------------
def read_seeds(urls, seed_file=None):
    """Validate every URL / JSON line first; ConfigError listing the bad lines."""
    seeds, bad = [], []
    for n, url in enumerate(urls, 1):
        try:
            seeds.append(Seed(url))
        except ValueError as exc:
            bad.append("argument %d: %s" % (n, exc))
    if seed_file is not None:
        for n, line in enumerate(seed_file, 1):
            if not line.strip():
                continue
            try:
                seeds.append(Seed.from_dict(json.loads(line)))
            except (ValueError, TypeError) as exc:
                bad.append("line %d: %s" % (n, exc))
    if bad:
        more = " (and %d more)" % (len(bad) - 3) if len(bad) > 3 else ""
        raise ConfigError("nothing pushed; bad seeds: %s%s" % ("; ".join(bad[:3]), more))
    return seeds


def push_seeds(redis, name, seeds, force=False):
    """Push seeds to a work queue; cached ones are skipped unless force. Returns (pushed, cached)."""
    queues = Queues(redis, name)
    redis.work.sadd(keys.SPIDERS, name)
    pushed = skipped = 0
    for start in range(0, len(seeds), PUSH_BATCH):
        batch = seeds[start:start + PUSH_BATCH]
        if not force:
            flags = queues.cached([s.cache_key for s in batch])
            skipped += sum(flags)
            batch = [s for s, hit in zip(batch, flags) if not hit]
        pushed += queues.push(batch)
    return pushed, skipped


# -- stat -------------------------------------------------------------------------
STAT_KEYS = ("work", "backlog", "backlog_due", "backlog_waiting", "backlog_over_age", "in_flight",
             "quarantined", "cached", "failures", "failures_by_error", "items", "workers",
             "pages_per_s")


def stat(redis, store, name):
    """The ``stat --json`` object of one spider: exactly STAT_KEYS."""
    found = status.counts(redis, name)
    found["failures"] = store.count_failures()
    found["failures_by_error"] = store.failures_by_error()
    found["items"] = store.count_items()
    return {k: found[k] for k in STAT_KEYS}


def format_stat(name, s):
    errors = ", ".join("%s %d" % kv for kv in sorted(s["failures_by_error"].items())) or "none"
    return ("%s\n  work %d | in flight %d | quarantined %d\n"
            "  backlog %d (due %d, waiting %d, over age %d)\n"
            "  cached %d | items %d | failures %d (%s)\n"
            "  workers %d | %.2f pages/s (last minute)" % (
                name, s["work"], s["in_flight"], s["quarantined"], s["backlog"], s["backlog_due"],
                s["backlog_waiting"], s["backlog_over_age"], s["cached"], s["items"], s["failures"],
                errors, s["workers"], s["pages_per_s"]))


# -- export ----------------------------------------------------------------------
def export_items(store, output, fmt):
    """Stream items to `output` ('-' = stdout) as jsonl or csv; returns how many."""
    out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8", newline="")
    try:
        if fmt == "csv":
            return _export_csv(store, out)
        n = 0
        for item in store.iter_items():
            out.write(json.dumps(item, ensure_ascii=False, sort_keys=True, default=str) + "\n")
            n += 1
        return n
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()


def _export_csv(store, out):
    columns = {}
    for item in store.iter_items():  # first pass: the columns, in first-seen order
        for k in item:
            columns.setdefault(k, None)
    names = ["_id"] + [c for c in columns if c != "_id"] if columns else []
    writer = csv.DictWriter(out, fieldnames=names, extrasaction="ignore")
    writer.writeheader()
    n = 0
    for item in store.iter_items():
        writer.writerow({k: _cell(v) for k, v in item.items()})
        n += 1
    return n


def _cell(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value
