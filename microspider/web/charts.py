"""Geometry for the inline SVG charts: a pages/s line and the chain of spiders.

Only numbers leave here; the templates draw them (and escape every name).
"""


def rate_line(buckets, bucket_seconds, width, height, points=120, top=14):
    """(SVG polyline points, peak pages/s) for per-bucket page counts, oldest first.

    Buckets are summed into `points` steps, each drawn as its mean pages/s; the
    peak reaches `top` pixels below the top edge (room for the labels).
    """
    if not buckets:
        return "", 0.0
    step = max(1, len(buckets) // points)
    rates = [sum(buckets[i:i + step]) / float(step * bucket_seconds)
             for i in range(0, len(buckets), step)]
    peak = max(rates)
    scale = (height - 1 - top) / peak if peak else 0.0
    dx = width / float(max(len(rates) - 1, 1))
    coords = ("%.1f,%.1f" % (i * dx, height - 1 - r * scale) for i, r in enumerate(rates))
    return " ".join(coords), peak


def depths(upstreams):
    """{spider: column}: 0 for a spider with no known upstream, else 1 + its deepest upstream."""
    found = {}

    def depth(name, seen):
        if name in found:
            return found[name]
        ups = [u for u in upstreams.get(name, ()) if u in upstreams and u not in seen]
        found[name] = 1 + max((depth(u, seen | {name}) for u in ups), default=-1)
        return found[name]

    for name in sorted(upstreams):
        depth(name, frozenset())
    return found


def chain(upstreams, box_w=170, box_h=30, gap_x=60, gap_y=16):
    """The chain of spiders laid out in columns by depth.

    Returns {"width", "height", "nodes": [{name, x, y, w, h}], "edges": [{x1, y1, x2, y2}]},
    an edge going from an upstream's right side to its downstream's left side.
    """
    columns = {}
    for name, column in sorted(depths(upstreams).items(), key=lambda kv: (kv[1], kv[0])):
        columns.setdefault(column, []).append(name)
    where, nodes = {}, []
    for column, names in sorted(columns.items()):
        for row, name in enumerate(names):
            x, y = 4 + column * (box_w + gap_x), 4 + row * (box_h + gap_y)
            where[name] = (x, y)
            nodes.append({"name": name, "x": x, "y": y, "w": box_w, "h": box_h})
    edges = []
    for name, ups in sorted(upstreams.items()):
        for up in ups:
            if up in where and up != name:
                (ux, uy), (dx, dy) = where[up], where[name]
                edges.append({"x1": ux + box_w, "y1": uy + box_h / 2, "x2": dx - 2, "y2": dy + box_h / 2})
    width = 8 + max((n["x"] + box_w for n in nodes), default=0)
    height = 8 + max((n["y"] + box_h for n in nodes), default=0)
    return {"width": width, "height": height, "nodes": nodes, "edges": edges}
