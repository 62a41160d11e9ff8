"""Move a spider's whole state between environments in one file (``migrate``).

The file is gzip-compressed UTF-8 JSON lines::

    {"format": "microspider-migrate", "version": 2, "spider": "ctrip_hotel", "created": 1700000000.0}
    {"section": "cache", "data": [...]}       # sections in SECTIONS order, a chunk per line
    ...
    {"end": true, "counts": {"upstream": 1, "cache": 300000, "work": 12, ...}}

``upstream`` holds the spiders that sent this one seeds; ``cache`` [base64
fingerprint, success time (epoch s, to the minute) or null when unknown] pairs
(version 1 files, written by 0.1, hold bare base64 fingerprints: they load as
succeeded at load time); ``work`` and ``quarantine`` raw seeds (in-flight seeds of dead
workers are written as work); ``backlog`` [seed, score] pairs, ``"inf"`` for a
parked seed; ``failures`` and ``items`` whole documents.  A raw seed that is
not UTF-8, and every bytes value of a document (response bodies), is written
{"$bytes": base64}; a dict that looks like such a tag is wrapped {"$esc": dict}.

Both directions stream.  Reading makes a first pass that checks the whole file
(gzip CRC, header, every record, the trailer's counts) before a second pass
writes anything, so a truncated or foreign file changes nothing.  Loading is
additive: cache, backlog, failures and items are idempotent; work and
quarantine seeds are appended (loading a file twice duplicates them, which the
cache absorbs once they succeed).
"""
import base64
import binascii
import gzip
import json
import math
import os
import time
import zlib

from ..errors import ConfigError, MigrateError
from ..seed import cache_keys_of
from ..spider import NAME_RE
from ..state import SpiderState

FORMAT, VERSION = "microspider-migrate", 2
READS = (1, 2)             # 1: written by 0.1 (cache entries without their success time)
SECTIONS = ("upstream", "cache", "work", "backlog", "quarantine", "failures", "items")
CHUNK = 1000               # entries per line
DOC_BYTES = 8 << 20        # ... or fewer documents, when their bodies add up to this
TAGS = ("$bytes", "$esc")




# -- output -----------------------------------------------------------------------
def write(redis, store, name, path, now=None):
    """Write everything of spider `name` to a new file at `path`; returns {section: count}.

    Refuses an existing file and a spider with live workers (a running crawl
    changes while it is read).  The file appears only once complete.
    """
    if os.path.exists(path):
        raise ConfigError("%s exists; migrate never overwrites a file" % path)
    live = SpiderState(redis, name).live_workers()
    if live:
        raise ConfigError("%s has %d live workers: stop its run before migrating it" % (name, live))
    counts = dict.fromkeys(SECTIONS, 0)
    part = path + ".part"
    try:
        with gzip.open(part, "wt", encoding="utf-8", compresslevel=6) as f:
            _put(f, {"format": FORMAT, "version": VERSION, "spider": name,
                     "created": time.time() if now is None else now})
            for section, data in _export(redis, store, name):
                _put(f, {"section": section, "data": data})
                counts[section] += len(data)
            _put(f, {"end": True, "counts": counts})
        os.replace(part, path)
    finally:
        if os.path.exists(part):
            os.remove(part)
    return counts


def _put(f, record):
    f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def _export(redis, store, name):
    """(section, chunk of encoded entries), streaming every source."""
    state = SpiderState(redis, name)
    upstream = state.upstreams()
    if upstream:
        yield "upstream", upstream
    for chunk in state.cache.chunks():
        yield "cache", [[base64.b64encode(k).decode("ascii"), t] for k, t in chunk]
    for chunks in (state.queue_chunks("work"), state.inflight_chunks()):
        for chunk in chunks:
            yield "work", [_value(raw) for raw in chunk]
    for chunk in state.backlog.chunks(withscores=True):
        yield "backlog", [[_value(raw), _score(score)] for raw, score in chunk]
    for chunk in state.queue_chunks("quarantine"):
        yield "quarantine", [_value(raw) for raw in chunk]
    for chunk in _doc_chunks(store.iter_failures()):
        yield "failures", chunk
    for chunk in _doc_chunks(store.iter_items()):
        yield "items", chunk


def _doc_chunks(docs):
    chunk, size = [], 0
    for doc in docs:
        chunk.append(encode(doc))
        body = doc.get("body")
        size += len(body) if isinstance(body, bytes) else 0
        if len(chunk) >= CHUNK // 10 or size >= DOC_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


# -- encoding ---------------------------------------------------------------------
def encode(value):
    """A document as JSON-ready data: bytes tagged, tag-like dicts escaped."""
    if isinstance(value, dict):
        out = {str(k): encode(v) for k, v in value.items()}
        return {"$esc": out} if len(out) == 1 and next(iter(out)) in TAGS else out
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)  # e.g. a datetime another program put into an item


def decode(value):
    """The inverse of ``encode``."""
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "$bytes":
                return base64.b64decode(inner, validate=True)
            if tag == "$esc":
                return {k: decode(v) for k, v in inner.items()}
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def _value(raw):
    """A Redis value: text when it is UTF-8 (seeds are), else tagged bytes."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return encode(raw)


def _raw(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    found = decode(value)
    if not isinstance(found, bytes):
        raise ValueError("a Redis value must be a string or {\"$bytes\": ...}")
    return found


def _score(score):
    return score if math.isfinite(score) else ("inf" if score > 0 else "-inf")


def _unscore(score):
    if score in ("inf", "-inf"):
        return float(score)
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise ValueError("a backlog score must be a number or \"inf\"")
    return float(score)


def _doc(value):
    doc = decode(value)
    if not isinstance(doc, dict):
        raise ValueError("a document must be a JSON object")
    return doc


def _failure(value):
    doc = _doc(value)
    if not isinstance(doc.get("_id"), str):
        raise ValueError("a failure document needs a string _id")
    return doc


DECODERS = {
    "upstream": _raw,
    "cache": lambda v: _cache_entry(v),
    "work": _raw,
    "backlog": lambda v: (_raw(v[0]), _unscore(v[1])) if isinstance(v, list) and len(v) == 2
    else _bad("a backlog entry must be [seed, score]"),
    "quarantine": _raw,
    "failures": _failure,
    "items": _doc,
}


def _cache_entry(value):
    """(12-byte key, success time or None) from "b64" (version 1) or ["b64", time or null]."""
    key, at = (value, None) if isinstance(value, str) else (
        value if isinstance(value, list) and len(value) == 2 else _bad("a cache entry must be [key, time]"))
    raw = base64.b64decode(key, validate=True)
    if len(raw) != 12:
        raise ValueError("a cache key must be 12 bytes, not %d" % len(raw))
    if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at)):
        raise ValueError("a cache time must be a number or null")
    return raw, at


def _bad(message):
    raise ValueError(message)


# -- input ------------------------------------------------------------------------
def check(path):
    """First pass: read the whole file and check it; returns (spider, {section: count})."""
    spider, counts = None, None
    for spider, section, data, counts in _records(path):
        pass
    return spider, counts


def load(redis, store, path, name):
    """Second pass: add the file's contents to `name`'s Redis keys and store; returns counts.

    Call ``check`` first: this pass writes as it reads.
    """
    loaded = dict.fromkeys(SECTIONS, 0)
    state = SpiderState(redis, name)
    state.register()
    for _, section, data, _ in _records(path):
        if not data:
            continue
        if section == "upstream":
            state.add_upstreams(data)
        elif section == "cache":
            state.cache.load(data)
        elif section == "work":
            state.push_raw(data)
            state.cache.see(cache_keys_of(data))
        elif section == "backlog":
            state.backlog.add(dict(data))
            state.cache.see(cache_keys_of(raw for raw, _ in data))
        elif section == "quarantine":
            state.quarantine(data)
        elif section == "failures":
            store.load_failures(data)
        else:
            store.save_items(data)
        loaded[section] += len(data)
    return loaded


def _records(path):
    """(spider, section, decoded entries, None) per data line; the last has the counts.

    MigrateError for anything that is not a complete, valid file.
    """
    try:
        with open(path, "rb") as raw:
            if raw.read(2) != b"\x1f\x8b":
                raise MigrateError("%s is not a microspider migrate file (not gzip)" % path)
        with gzip.open(path, "rt", encoding="utf-8") as f:
            yield from _parse_lines(path, f)
    except FileNotFoundError:
        raise MigrateError("%s: no such file" % path) from None
    except (EOFError, zlib.error, OSError, UnicodeDecodeError) as exc:
        raise MigrateError("%s is truncated or corrupted (%s); nothing was written"
                           % (path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None


def _parse_lines(path, lines):
    spider, counts, trailer = None, dict.fromkeys(SECTIONS, 0), None
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            if n == 1:
                raise MigrateError("%s is not a microspider migrate file" % path) from None
            raise MigrateError("%s is corrupted: line %d is not JSON; nothing was written"
                               % (path, n)) from None
        if n == 1:
            spider = _header(path, record)
            continue
        if trailer is not None:
            raise MigrateError("%s is corrupted: data after the end record (line %d)" % (path, n))
        if isinstance(record, dict) and record.get("end") is True:
            trailer = record
            continue
        section, data = _section(path, n, record)
        counts[section] += len(data)
        yield spider, section, data, None
    if spider is None:
        raise MigrateError("%s is empty: not a microspider migrate file" % path)
    if trailer is None:
        raise MigrateError("%s is truncated: no end record; nothing was written" % path)
    expected = trailer.get("counts")
    if expected != counts:
        wrong = ", ".join("%s %s, not %s" % (s, counts[s], (expected or {}).get(s)) for s in SECTIONS
                          if counts[s] != (expected or {}).get(s))
        raise MigrateError("%s is truncated or corrupted: it holds %s as the end record says; "
                           "nothing was written" % (path, wrong))
    yield spider, None, [], counts


def _header(path, record):
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise MigrateError("%s is not a microspider migrate file" % path)
    if record.get("version") not in READS:
        raise MigrateError("%s is a version %r migrate file; this microspider reads versions %s"
                           % (path, record.get("version"), " and ".join(map(str, READS))))
    spider = record.get("spider")
    if not isinstance(spider, str) or not NAME_RE.match(spider):
        raise MigrateError("%s: bad spider name %r in the header" % (path, spider))
    return spider


def _section(path, n, record):
    section = record.get("section") if isinstance(record, dict) else None
    data = record.get("data") if isinstance(record, dict) else None
    if section not in DECODERS or not isinstance(data, list):
        raise MigrateError("%s is corrupted: line %d is not a record of this format" % (path, n))
    try:
        return section, [DECODERS[section](v) for v in data]
    except (ValueError, TypeError, AttributeError, IndexError, binascii.Error) as exc:
        raise MigrateError("%s is corrupted: line %d (%s): %s" % (path, n, section, exc)) from None
