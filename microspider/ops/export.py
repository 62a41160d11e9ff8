"""``microspider export``: a spider's items as JSON lines or CSV."""
import csv
import json
import sys


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
