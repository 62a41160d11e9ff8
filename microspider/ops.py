"""Library side of the operations commands: push, stat, relay, dump, clear, export, gen.

Each function here does one command's work on the engine's objects; the CLI only
parses input and prints.  ``parse`` and ``retry`` live in replay.py, ``migrate``
in migrate.py.
"""
import csv
import itertools
import json
import math
import sys
import time

from . import keys, status
from .errors import ConfigError
from .queues import Queues
from .relay import CONTINUOUS, Relay
from .seed import FIELDS, Seed

PUSH_BATCH = 1000
CHUNK = 1000          # seeds per LRANGE / ZRANGE / SCAN round trip


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


def watch(render, interval, out, tty, count=None, plain=False, sleep=time.sleep, now=time.time):
    """Print ``render()`` every `interval` seconds until Ctrl-C (or `count` times).

    On a terminal the screen is redrawn in place; elsewhere each refresh is
    appended, headed by its time, so a log of it reads top to bottom.  `plain`
    prints the bare text (a JSON line per refresh).  Returns the refreshes.
    """
    n = 0
    try:
        while not count or n < count:
            if n:
                sleep(interval)
            text = render()
            if tty:
                out.write("\033[H\033[2J")
            elif n and not plain:
                out.write("\n")
            if not plain:
                out.write("%s (every %gs, Ctrl-C ends)\n"
                          % (time.strftime("%H:%M:%S", time.localtime(now())), interval))
            out.write(text + "\n")
            out.flush()
            n += 1
    except KeyboardInterrupt:  # the way a watch ends: not an error
        pass
    return n


# -- relay ------------------------------------------------------------------------
def relay_once(redis, name, max_age, relay_delay=1.0, clear=False):
    """Move backlog seeds to the work queue now; returns (moved, stayed).

    Without `clear` every seed whose age is <= max_age moves, whether its retry
    delay has passed or not (a user relaying by hand wants them now); older
    seeds are parked (+inf) and stay.  With `clear` every seed moves, over-age
    ones included, its age reset to 0.
    """
    relay = Relay(redis, name, CONTINUOUS, max_age, relay_delay)
    if clear:
        moved = relay.move_all(reset_age=True)
    else:
        while relay.unpark(max_age):
            pass  # one unpark pass can skip parked seeds past its first batch: repeat until none left
        park_over_age(redis, name, max_age)
        moved = relay.move_due(now="(inf")  # an exclusive bound: every finite score, no parked one
    return moved, redis.backlog.zcard(keys.backlog(name))


def park_over_age(redis, name, max_age):
    """Score +inf the backlog seeds whose age is over max_age; returns how many."""
    key, parked = keys.backlog(name), 0
    for chunk in _chunked(redis.backlog.zscan_iter(key, count=CHUNK), CHUNK):
        over = {raw: math.inf for raw, score in chunk
                if score != math.inf and _seed_age(raw) > max_age}
        if over:
            redis.backlog.zadd(key, over, xx=True)  # xx: never re-add a seed moved meanwhile
            parked += len(over)
    return parked


def _seed_age(raw):
    try:
        age = json.loads(raw).get("age", 0)
    except (ValueError, AttributeError):
        return 0  # malformed: let it move, the worker quarantines it
    return age if isinstance(age, int) else 0


# -- dump -------------------------------------------------------------------------
QUEUES = ("work", "backlog", "quarantine")


def dump(redis, name, queues, fields=(), as_json=False, out=None, limit=None):
    """Stream the seeds of the named queues to `out`, CHUNK at a time; returns how many.

    One line per seed: the raw JSON with `as_json`, else the `fields` (dotted
    paths into the seed, e.g. ``meta.city``; default ``url``) separated by
    spaces, ``-`` for a missing one.  Quarantined entries are printed as found.
    """
    out = out or sys.stdout
    fields = [f.split(".") for f in (fields or ("url",))]
    total = 0
    for queue in queues:
        for raws in _queue_chunks(redis, name, queue):
            if limit is not None:
                raws = raws[:limit - total]
            if queue == "quarantine" or as_json:
                lines = [raw.decode("utf-8", "replace") for raw in raws]
            else:
                lines = [_format_fields(raw, fields) for raw in raws]
            if lines:
                out.write("\n".join(lines) + "\n")
            total += len(lines)
            if limit is not None and total >= limit:
                return total
    return total


def _queue_chunks(redis, name, queue):
    """Lists of raw seeds of one queue, read by index CHUNK at a time (backlog by due time)."""
    if queue == "backlog":
        read = lambda start: redis.backlog.zrange(keys.backlog(name), start, start + CHUNK - 1)
    else:
        key = keys.work(name) if queue == "work" else keys.quarantine(name)
        read = lambda start: redis.work.lrange(key, start, start + CHUNK - 1)
    start = 0
    while True:
        raws = read(start)
        if raws:
            yield raws
        if len(raws) < CHUNK:
            return
        start += CHUNK


def _format_fields(raw, paths):
    try:
        obj = json.loads(raw)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return raw.decode("utf-8", "replace")
    full = {k: f() for k, f in FIELDS.items() if f is not None}  # fields at their default are not on the wire
    full.update(obj)
    return " ".join(_cell_text(_dig(full, path)) for path in paths)


def _dig(obj, path):
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _cell_text(value):
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)


# -- clear ------------------------------------------------------------------------
CLEARABLE = ("cache", "failures", "items", "work", "backlog", "quarantine")


def clear(redis, store, name, parts, everything=False):
    """Remove the named parts of a spider's state; returns {part: how many removed}.

    `everything` also removes in-flight records, heartbeats, counters, settings
    and upstream links (both ways), and forgets the spider; it is refused while
    workers live.
    """
    if everything:
        live = Queues(redis, name).live_workers()
        if live:
            raise ConfigError("%s has %d live workers: stop its run before clear --all" % (name, live))
        parts = CLEARABLE
    removed = {}
    sizes = {"work": (redis.work, keys.work(name), "llen"),
             "backlog": (redis.backlog, keys.backlog(name), "zcard"),
             "cache": (redis.cache, keys.cache(name), "scard"),
             "quarantine": (redis.work, keys.quarantine(name), "llen")}
    for part in parts:
        if part == "failures":
            removed[part] = store.clear_failures()
        elif part == "items":
            removed[part] = store.clear_items()
        else:
            client, key, size = sizes[part]
            removed[part] = _unlink_counted(client, key, size)
    if everything:
        removed["other keys"] = _clear_engine_keys(redis, name)
    return removed


def _unlink_counted(client, key, size):
    pipe = client.pipeline(transaction=True)
    getattr(pipe, size)(key)
    pipe.unlink(key)
    return pipe.execute()[0]


def _clear_engine_keys(redis, name):
    fixed = [keys.workers(name), keys.stats(name), keys.pages(name), keys.meta(name),
             keys.upstream(name), keys.seeding(name), keys.relaylock(name), keys.ratelimit(name)]
    patterns = [keys.inflight(name, "*"), keys.ratelimit(name, "*")]
    found = [k for p in patterns for k in redis.work.scan_iter(match=p, count=CHUNK)]
    n = 0
    for chunk in _chunked(iter(fixed + found), CHUNK):
        n += redis.work.unlink(*chunk)
    pipe = redis.work.pipeline(transaction=False)
    for other in status.spiders(redis):  # a forgotten upstream would keep its downstreams waiting
        pipe.srem(keys.upstream(other), name)
    pipe.srem(keys.SPIDERS, name)
    pipe.execute()
    return n


# -- export -----------------------------------------------------------------------
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


def _chunked(iterator, n):
    while True:
        chunk = list(itertools.islice(iterator, n))
        if not chunk:
            return
        yield chunk
