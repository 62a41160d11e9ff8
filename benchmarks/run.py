"""The crawl benchmark: microspider against the bare gevent+requests loop, same site, same parse.

``python -m benchmarks.run [--pages 10000] [--concurrency 64] [--rounds 3]
[--only bare,micro1,...] [--server nginx|python]``

Serves N generated pages (nginx when installed, else ``benchmarks.pyserver``),
measures the server's own ceiling, then runs every contender once per round,
alternating, and prints one table (also written to ``benchmarks/out/last.json``).
Every page must be fetched exactly once per run, counted by the server; a run
that breaks this, or a contender that fails, ends the benchmark with exit 1.
See benchmarks/README.md for what each column means and how it is measured.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import ceiling, contenders
from benchmarks.measure import TreeWatch, children_cpu, redis_delta, redis_info
from benchmarks.servers import REPO, open_server

OUT = os.path.join(REPO, "benchmarks", "out", "last.json")
TIMEOUT = 1800


class BenchmarkFailed(Exception):
    """A contender failed, or a page was not fetched exactly once."""


# -- one run of one contender ------------------------------------------------------------
def run_once(contender, ctx, server, round_no):
    """Run a contender once; returns its measurements (BenchmarkFailed if anything is off)."""
    contender.prepare(ctx)
    server.reset()
    client = ctx.redis() if contender.uses_redis else None
    before = redis_info(client) if client else None
    log_path = os.path.join(ctx.workdir, "%s-%d.log" % (contender.name, round_no))
    cpu0, t0 = children_cpu(), time.monotonic()
    proc, stdout, watch = _execute(contender, ctx, round_no, log_path)
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    redis = redis_delta(before, redis_info(client)) if client else None
    if client:
        client.close()
    hits = _verify(contender, ctx, server, round_no, proc, stdout, log_path)
    return _figures(contender, ctx.pages, proc, watch, hits, wall, cpu, redis)


def _execute(contender, ctx, round_no, log_path):
    """Start the contender's process and wait for it, watching its tree; (proc, stdout, watch)."""
    env = dict(os.environ, PYTHONPATH=REPO + (os.pathsep + os.environ["PYTHONPATH"]
                                              if os.environ.get("PYTHONPATH") else ""))
    with open(log_path, "w") as log:
        proc = subprocess.Popen(contender.command(ctx, round_no), cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=log, text=True)
        with TreeWatch(proc.pid) as watch:
            try:
                stdout, _ = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise BenchmarkFailed("%s did not finish in %d s (log: %s)"
                                      % (contender.name, TIMEOUT, log_path))
    return proc, stdout, watch


def _verify(contender, ctx, server, round_no, proc, stdout, log_path):
    """The server's hits, after checking the exit status, the contender's count, exactly-once."""
    if proc.returncode != 0:
        raise BenchmarkFailed("%s exited with %s:\n%s" % (contender.name, proc.returncode,
                                                         _tail(log_path)))
    problems = contender.check(ctx, stdout)
    hits = server.hits()
    problems += _exactly_once(hits, ctx.pages)
    if problems:
        raise BenchmarkFailed("%s, round %d:\n  %s\n%s" % (contender.name, round_no,
                                                            "\n  ".join(problems), _tail(log_path)))
    return hits


def _figures(contender, pages, proc, watch, hits, wall, cpu, redis):
    span = hits["last"] - hits["first"]
    span_cpu = watch.cpu_between(hits["first"], hits["last"])
    workers = watch.matching(contender.worker_word) if contender.worker_word else [
        watch.procs.get(proc.pid, {"hwm_kb": 0, "cpu_s": cpu, "cmd": ""})]
    return {
        "pages_per_s": pages / span if span > 0 else float("inf"),
        "span_s": span,
        "wall_s": wall,
        "cpu_ms_per_page": 1000.0 * cpu / pages,
        "span_cpu_ms_per_page": 1000.0 * span_cpu / pages,
        "cores": span_cpu / span if span > 0 else None,
        "redis_cpu_ms_per_page": 1000.0 * redis["cpu_s"] / pages if redis else None,
        "redis_round_trips_per_seed": redis["reads"] / pages if redis else None,
        "redis_commands_per_seed": redis["commands"] / pages if redis else None,
        "worker_rss_mb": max(w["hwm_kb"] for w in workers) / 1024.0 if workers else None,
        "processes": [{"cmd": r["cmd"][:120], "cpu_s": round(r["cpu_s"], 3),
                       "hwm_mb": round(r["hwm_kb"] / 1024.0, 1)} for r in watch.procs.values()],
    }


def _exactly_once(hits, pages):
    if hits["total"] == pages and hits["distinct"] == pages and not hits["not_once_count"]:
        return []
    sample = ", ".join("%s x%d" % kv for kv in list(hits["not_once"].items())[:10])
    return ["server-side count: %d requests for %d distinct pages of %d; %d pages not fetched "
            "exactly once (%s)" % (hits["total"], hits["distinct"], pages, hits["not_once_count"],
                                   sample)]


def _tail(path, n=30):
    with open(path, errors="replace") as f:
        lines = f.readlines()
    return "".join("    | " + l for l in lines[-n:])


# -- the whole benchmark ---------------------------------------------------------------
def benchmark(pages=10000, concurrency=64, rounds=3, only=None, server_kind=None, say=print,
              ceiling_seconds=3):
    """Run the benchmark; returns the report (a dict), BenchmarkFailed on a failed check."""
    chosen = contenders.select(only)
    workdir = tempfile.mkdtemp(prefix="ms-bench-")
    server = open_server(server_kind, workdir, pages)
    redis_server = None
    try:
        say("site: %d pages of 8-12 KB; generating and starting %s ..." % (pages, server.kind))
        server.start()
        rps, how = ceiling.measure(server.url, pages, connections=concurrency,
                                    seconds=ceiling_seconds)
        say("server: %s at %s; its ceiling: %.0f pages/s (%s)" % (server.version, server.url, rps, how))
        server.reset()
        if any(c.uses_redis for c in chosen):
            from tests.servers import RedisServer

            redis_server = RedisServer().start()
        ctx = contenders.Context(server.url, pages, concurrency, workdir,
                                 redis_server.url if redis_server else None)
        runs = {c.name: [] for c in chosen}
        for round_no in range(1, rounds + 1):
            order = chosen[round_no - 1:] + chosen[:round_no - 1]  # who goes first alternates too
            for contender in order:
                result = run_once(contender, ctx, server, round_no)
                runs[contender.name].append(result)
                say("  round %d %-13s %7.0f pages/s  %5.2f CPU ms/page  wall %.1fs" % (
                    round_no, contender.name, result["pages_per_s"], result["cpu_ms_per_page"],
                    result["wall_s"]))
        return _report(chosen, runs, pages, concurrency, rounds, server, rps, how)
    finally:
        server.stop()
        if redis_server:
            redis_server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def _report(chosen, runs, pages, concurrency, rounds, server, rps, how):
    rows = []
    for c in chosen:
        row = {"name": c.name, "label": c.label, "rounds": runs[c.name]}
        for field in ("pages_per_s", "cpu_ms_per_page", "span_cpu_ms_per_page", "cores", "redis_cpu_ms_per_page",
                      "redis_round_trips_per_seed", "redis_commands_per_seed", "worker_rss_mb",
                      "wall_s"):
            values = [r[field] for r in runs[c.name] if r[field] is not None]
            row[field] = statistics.median(values) if values else None
            row[field + "_range"] = [min(values), max(values)] if values else None
        rows.append(row)
    base = next((r for r in rows if r["name"] == contenders.BASELINE), None)
    for row in rows:
        for field in ("pages_per_s", "cpu_ms_per_page", "span_cpu_ms_per_page", "worker_rss_mb"):
            row[field + "_rel"] = (row[field] / base[field] if base and base[field] and
                                   row[field] is not None else None)
    return {
        "pages": pages, "concurrency": concurrency, "rounds": rounds,
        "server": {"kind": server.kind, "version": server.version, "ceiling_pages_per_s": rps,
                   "ceiling_client": how},
        "machine": {"cores": os.cpu_count(), "load_avg_at_end": os.getloadavg(),
                    "environment_variables": len(os.environ), "python": sys.version.split()[0]},
        "revision": _revision(),
        "exactly_once": "passed",
        "rows": rows,
        "targets": targets(rows, concurrency),
    }


def _revision():
    """The checkout's commit (with "+changes" when its files differ), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def targets(rows, concurrency):
    """The crawl targets of issue 7, as (target, measured, met) from the medians."""
    by = {r["name"]: r for r in rows}
    out = []

    def add(text, value, met):
        out.append({"target": text, "measured": value, "met": met})

    m1, m2, bare = by.get("micro1"), by.get("micro2"), by.get("bare")
    curl = by.get("micro1_curl") or m1      # issue 15: the libcurl fetcher (the default)
    if curl and bare:
        add("%s pages/s >= 1.6x bare (libcurl fetcher)" % curl["name"],
            "%.2fx" % curl["pages_per_s_rel"], curl["pages_per_s_rel"] >= 1.6)
    imp = by.get("micro1_impersonate")    # issue 18: a browser's TLS identity (curl_cffi)
    if imp and bare:
        add("micro1_impersonate pages/s >= 1.4x bare (impersonating fetcher)",
            "%.2fx" % imp["pages_per_s_rel"], imp["pages_per_s_rel"] >= 1.4)
    if m1 and bare:
        add("micro1 pages/s >= 1.0x bare", "%.2fx" % m1["pages_per_s_rel"], m1["pages_per_s_rel"] >= 1.0)
        add("micro1 CPU ms/page <= 1.0x bare", "%.2fx" % m1["cpu_ms_per_page_rel"],
            m1["cpu_ms_per_page_rel"] <= 1.0)
    if m1:
        add("Redis round trips per seed <= 0.1 (--pool %d)" % concurrency,
            "%.3f" % m1["redis_round_trips_per_seed"], m1["redis_round_trips_per_seed"] <= 0.1)
    if m1 and m2:
        ratio = m2["pages_per_s"] / m1["pages_per_s"]
        add("micro2 pages/s >= 1.5x micro1", "%.2fx" % ratio, ratio >= 1.5)
    for m in (m1, m2):
        if m:
            add("%s worker RSS <= 150 MB at --pool 100 (here --pool %d)" % (m["name"], concurrency),
                "%.0f MB" % m["worker_rss_mb"], m["worker_rss_mb"] <= 150)
    return out


# -- the table ---------------------------------------------------------------------------
def table(report):
    """The report as a text table (medians; min-max in brackets; x = relative to the bare loop)."""
    head = ("contender", "pages/s (min-max)", "x bare", "CPU ms/page", "x bare", "in span",
            "x bare", "cores",
            "Redis CPU ms/page", "Redis RT/seed", "RSS/worker MB", "x bare")
    lines = []
    for r in report["rows"]:
        lo, hi = r["pages_per_s_range"]
        lines.append((
            r["name"], "%.0f (%.0f-%.0f)" % (r["pages_per_s"], lo, hi), _x(r["pages_per_s_rel"]),
            "%.3f" % r["cpu_ms_per_page"], _x(r["cpu_ms_per_page_rel"]),
            "%.3f" % r["span_cpu_ms_per_page"], _x(r["span_cpu_ms_per_page_rel"]), _num(r["cores"], "%.2f"),
            _num(r["redis_cpu_ms_per_page"], "%.3f"), _num(r["redis_round_trips_per_seed"], "%.3f"),
            _num(r["worker_rss_mb"], "%.0f"), _x(r["worker_rss_mb_rel"])))
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(head)]
    fmt = "  ".join("%%-%ds" % w if i == 0 else "%%%ds" % w for i, w in enumerate(widths))
    s = report["server"]
    text = [
        "microspider benchmark (%s): %d pages, concurrency %d, median of %d round(s)"
        % (report["revision"] or "not a git checkout", report["pages"], report["concurrency"],
           report["rounds"]),
        "server: %s, ceiling %.0f pages/s (%s)" % (s["version"], s["ceiling_pages_per_s"],
                                                   s["ceiling_client"]),
        "", fmt % head, fmt % tuple("-" * w for w in widths)]
    text += [fmt % l for l in lines]
    text += ["", "every page fetched exactly once (server-side count): %s" % report["exactly_once"],
             "", "targets (issue 7):"]
    text += ["  [%s] %s: %s" % ("met " if t["met"] else "MISS", t["target"], t["measured"])
             for t in report["targets"]] or ["  (none measured: they need bare, micro1, micro2)"]
    return "\n".join(text)


def _x(value):
    return "-" if value is None else "%.2f" % value


def _num(value, fmt):
    return "-" if value is None else fmt % value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64,
                        help="greenlets of the bare loop; --pool of microspider")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated contenders: %s"
                        % ",".join(c.name for c in contenders.ALL))
    parser.add_argument("--server", choices=["nginx", "python"],
                        help="default: nginx when on PATH, else python")
    parser.add_argument("--ceiling-seconds", type=int, default=3,
                        help="how long the server's ceiling is measured [default: 3]")
    parser.add_argument("--out", default=OUT, help="JSON report [default: benchmarks/out/last.json]")
    args = parser.parse_args(argv)
    try:
        report = benchmark(args.pages, args.concurrency, args.rounds,
                           args.only.split(",") if args.only else None, args.server,
                           say=lambda line: print(line, file=sys.stderr, flush=True),
                           ceiling_seconds=args.ceiling_seconds)
    except (BenchmarkFailed, ValueError, RuntimeError) as exc:
        print("benchmark FAILED: %s" % exc, file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
