"""Run the trial kinds, print one table, exit non-zero if a seed was lost or a trial failed.

    python -m tests.chaos                         # every kind, full trial counts
    python -m tests.chaos --only kill9 --trials 3 --seed 7
    python -m tests.chaos --quick                 # the reduced suite of the default test run

Exit status: 0 all good; 1 a seed or item was lost; 3 nothing lost, but a trial
failed otherwise (a crash, a hang, a wrong exit status, a run that did not end).
"""
import argparse
import shutil
import sys
import tempfile
import time

from tests.chaos import cluster, crawls, faults, scale, sentinel
from tests.chaos.trial import Suite

# name: (function(suite, trials), full trials, quick trials, what it does)
KINDS = {
    "kill9": (crawls.kill9, 20, 1, "kill -9 a random worker at a random moment"),
    "signals": (crawls.signals, 4, 1, "SIGTERM/SIGINT to run during heavy in-flight work"),
    "redis": (crawls.redis_restarts, 6, 1, "Redis restarted mid-crawl (private and embedded)"),
    "store": (crawls.store_faults, 3, 1, "failure store locked, read-only; MongoDB unreachable"),
    "network": (faults.network, 2, 1, "resets, silence, truncated/huge bodies, bad encodings, loops"),
    "baddata": (faults.bad_data, 10, 5, "garbage in the queue, garbage from parse, broken spiders"),
    "scale": (scale.relay_scale, 2, 2, "100,000 backlog seeds relayed by 4 processes at once"),
    "poison": (crawls.poison, 5, 1, "pages whose parse exits, segfaults or never returns"),
    "cluster": (cluster.failover, 5, 1, "kill -9 of a Redis Cluster master mid-crawl (replica promoted)"),
    "sentinel": (sentinel.failover, 5, 1, "kill -9 of the master behind Sentinel mid-crawl (replica promoted)"),
}
QUICK = ("kill9", "signals", "network", "baddata", "scale", "poison")


def run(only=None, trials=None, seed=1, hotels=None, quick=False, keep=False, root=None, log=print):
    """Run the chosen kinds; returns {kind: [TrialResult]} in order."""
    kinds = list(only or (QUICK if quick else KINDS))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError("unknown trial kind %s; choose from %s" % (", ".join(unknown), ", ".join(KINDS)))
    own_root = root is None
    root = root or tempfile.mkdtemp(prefix="ms-chaos-")
    suite = Suite(root, seed=seed, hotels=hotels or (150 if quick else 3000), quick=quick, keep=keep, log=log)
    results = {}
    try:
        for kind in kinds:
            function, full, short, what = KINDS[kind]
            count = trials or (short if quick else full)
            log("%s: %s (%d trials)" % (kind, what, count))
            results[kind] = function(suite, count)
    finally:
        if own_root and not keep:
            shutil.rmtree(root, ignore_errors=True)
        elif keep:
            log("trial folders kept in %s" % root)
    return results


def table(results):
    """The summary table, one row per kind."""
    head = ("kind", "trials", "seeds", "lost", "dup fetches", "max recovery", "time", "failed")
    rows = [head]
    for kind, rs in results.items():
        recoveries = [r.recovery for r in rs if r.recovery is not None]
        rows.append((kind, str(len(rs)), str(sum(r.seeds for r in rs)), str(sum(r.lost for r in rs)),
                     str(sum(r.duplicated for r in rs)),
                     "%.2fs" % max(recoveries) if recoveries else "-",
                     "%.0fs" % sum(r.seconds for r in rs), str(sum(1 for r in rs if r.problems))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def report(results):
    """Problems and notes of every trial, for below the table."""
    out = []
    for kind, rs in results.items():
        for r in rs:
            for p in r.problems:
                out.append("FAIL %s / %s: %s" % (kind, r.name, p))
            for n in r.notes:
                if not n.startswith("Traceback"):
                    out.append("note %s / %s: %s" % (kind, r.name, n))
    return "\n".join(out)


def exit_status(results):
    every = [r for rs in results.values() for r in rs]
    if any(r.lost for r in every):
        return 1
    return 3 if any(r.problems for r in every) else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=None, help="trials per kind [default: per kind]")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the trials [default: 1]")
    parser.add_argument("--only", default=None, help="comma-separated kinds: " + ",".join(KINDS))
    parser.add_argument("--hotels", type=int, default=None,
                        help="hotels of the Ctrip-like site [default: 3000; 150 with --quick]")
    parser.add_argument("--quick", action="store_true", help="the reduced suite: one short trial per kind")
    parser.add_argument("--keep", action="store_true", help="keep the trial folders (logs, stores)")
    args = parser.parse_args(argv)
    only = [k.strip() for k in args.only.split(",") if k.strip()] if args.only else None
    started = time.monotonic()
    try:
        results = run(only, args.trials, args.seed, args.hotels, args.quick, args.keep,
                      log=lambda line: print(line, flush=True))
    except ValueError as exc:
        print("python -m tests.chaos: error: %s" % exc, file=sys.stderr)
        return 2
    print()
    print(table(results))
    details = report(results)
    if details:
        print()
        print(details)
    status = exit_status(results)
    print("\n%s in %.0fs (seed %d)" % ({0: "OK", 1: "LOST SEEDS", 3: "FAILED"}[status],
                                        time.monotonic() - started, args.seed))
    return status


if __name__ == "__main__":
    sys.exit(main())
