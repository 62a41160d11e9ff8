"""``microspider dump``: stream the seeds of a spider's queues as text."""
import json
import sys

from ..seed import FIELDS
from ..state import SpiderState

QUEUES = ("work", "backlog", "quarantine")


def dump(redis, name, queues, fields=(), as_json=False, out=None, limit=None):
    """Stream the seeds of the named queues to `out`, a chunk at a time; returns how many.

    One line per seed: the raw JSON with `as_json`, else the `fields` (dotted
    paths into the seed, e.g. ``meta.city``; default ``url``) separated by
    spaces, ``-`` for a missing one.  Quarantined entries are printed as found.
    """
    out = out or sys.stdout
    state = SpiderState(redis, name)
    paths = [f.split(".") for f in (fields or ("url",))]
    total = 0
    for queue in queues:
        for raws in state.queue_chunks(queue):
            if limit is not None:
                raws = raws[:limit - total]
            if queue == "quarantine" or as_json:
                lines = [raw.decode("utf-8", "replace") for raw in raws]
            else:
                lines = [_format_fields(raw, paths) for raw in raws]
            if lines:
                out.write("\n".join(lines) + "\n")
            total += len(lines)
            if limit is not None and total >= limit:
                return total
    return total


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
