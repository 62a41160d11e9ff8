"""The one-command demo: the Ctrip-like site, its three spiders at once, and a check against the truth.

Run it from the repository root::

    python -m examples.ctrip.demo --hotels 3000

It starts the site (``python -m examples.ctrip.site``) on a free port, runs
``microspider run`` for city.py, hotel.py and hotel_info.py together in a fresh
work folder (``./.demo/``; the embedded Redis and store live in its
``.microspider/``), prints a progress line every 2 s, and when the three runs
have ended by themselves checks the items and failure records against the
site's ``/_truth``.  Exit status 0 only if every hotel that is not broken was
collected exactly once with the right values and every broken hotel is visible
as a failure record; 1 otherwise; 2 for bad options.

The verdict comes from ``check.check(truth, items, failures)``, a pure function.
"""
import argparse
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

import requests

from examples.ctrip.check import SHOW, check
from examples.ctrip.dashboard import start_web
from microspider import embedded
from microspider.connection import DEFAULT_REDIS
from microspider.ops import stats
from microspider.state import Redis
from microspider.store import open_store

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SPIDERS = (("ctrip_city", "city.py"), ("ctrip_hotel", "hotel.py"), ("ctrip_hotel_info", "hotel_info.py"))
INFO = "ctrip_hotel_info"
MARKER = ".microspider-demo"      # a folder holding it may be wiped by the demo
SLOW = 3.0                         # seconds the site's slow answers take ...
FETCH_TIMEOUT = 1.5                # ... so a fetch gives up on them (timeout in microspider.cfg)
PROGRESS_EVERY = 2.0


# -- the work folder ---------------------------------------------------------------
def prepare_folder(folder, keep):
    """Create the work folder, wiping an earlier demo's one unless ``keep``; never a foreign one."""
    if os.path.isdir(folder) and os.listdir(folder) and not os.path.exists(os.path.join(folder, MARKER)):
        fail("%s is not empty and was not made by the demo; choose another --dir" % folder)
    if os.path.isdir(folder) and not keep:
        stop_embedded(folder, "left running by an earlier demo")
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "logs"), exist_ok=True)
    for name, text in ((MARKER, "made by python -m examples.ctrip.demo; wiped by its next run\n"),
                       (".gitignore", "*\n")):
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    copy_config(folder)


def stop_embedded(folder, why):
    if embedded.stop(base=folder):
        say("stopped the embedded Redis in %s (%s)" % (folder, why))


def embedded_running(folder):
    try:
        with open(os.path.join(embedded.home(folder), "redis.url")) as f:
            return embedded.answers(f.read().strip())
    except OSError:
        return False


def remembered_port(folder, args):
    """With --keep, the site's port of the crawl found there (its queued URLs name it)."""
    path = os.path.join(folder, "site.json")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        saved = json.load(f)
    if (saved["hotels"], saved["seed"]) != (args.hotels, args.seed):
        fail("%s holds a crawl of --hotels %d --seed %d; drop --keep or use the same values"
             % (folder, saved["hotels"], saved["seed"]))
    return saved["port"]


def remember_site(folder, args, url):
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    with open(os.path.join(folder, "site.json"), "w") as f:
        json.dump({"port": port, "hotels": args.hotels, "seed": args.seed}, f)


# -- processes -----------------------------------------------------------------
def start_site(args, folder, port):
    """Start the site; returns (process, base URL) once it has printed its URL."""
    command = [sys.executable, "-m", "examples.ctrip.site", "--port", str(port),
               "--hotels", str(args.hotels), "--seed", str(args.seed),
               "--fault-rate", str(args.fault_rate), "--slow", str(SLOW)]
    log = open(os.path.join(folder, "logs", "site.log"), "wb")
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
                            start_new_session=True)
    log.close()
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode().strip() if ready else ""
    if not line.startswith("http"):
        end_process(proc)
        fail("the site did not start; see %s" % os.path.join(folder, "logs", "site.log"))
    return proc, line


def run_command(spider_file, args):
    """``microspider run`` of one spider; the rest of its options come from microspider.cfg."""
    return [sys.executable, "-m", "microspider", "run", os.path.join(HERE, spider_file),
            "-w", str(args.workers)]


def copy_config(folder):
    """The repository's microspider.cfg (the example's options) into the work folder."""
    shutil.copyfile(os.path.join(ROOT, "microspider.cfg"), os.path.join(folder, "microspider.cfg"))


def start_runs(args, folder, env):
    """Start the three runs at once in the work folder; each one's output goes to logs/<spider>.log."""
    runs = {}
    for name, spider_file in SPIDERS:
        with open(os.path.join(folder, "logs", name + ".log"), "wb") as log:
            runs[name] = subprocess.Popen(run_command(spider_file, args), cwd=folder,
                                          env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
    return runs


def spider_env(site_url):
    env = dict(os.environ, CTRIP_SITE=site_url)
    for name in ("MICROSPIDER_REDIS", "MICROSPIDER_MONGO_URI"):
        env.pop(name, None)  # the demo's crawl is its own, in its own folder
    return env


def configure_connection(folder):
    """None (the embedded default) unless a Redis or MongoDB answers at the default address.

    A server there would be used instead of the work folder's embedded ones (and a
    crawl of an earlier demo in it would make this one look finished at once), so
    then the demo starts the folder's embedded Redis itself and names it, with the
    folder's store, in the folder's microspider.cfg: the runs and the commands a
    user types there next read it.  Returns {"redis": URL, "mongo_uri": URI} then.
    """
    config = os.path.join(folder, "microspider.cfg")
    if not (embedded.answers(DEFAULT_REDIS) or _port_open(27017)):
        if os.path.exists(config):
            os.remove(config)  # written by an earlier demo (--keep) when a server answered
        return None
    say("a Redis or MongoDB answers at the default address; the crawl uses the work folder's "
        "embedded ones, named in its microspider.cfg")
    settings = {"redis": embedded.redis_url(base=folder), "mongo_uri": embedded.store_uri(base=folder)}
    with open(config, "w") as f:
        f.write("[microspider]\n" + "".join("%s = %s\n" % kv for kv in settings.items()))
    return settings


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


def end_process(proc, grace=15.0):
    """SIGTERM one process we started, SIGKILL it after ``grace`` seconds; returns its status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def log_tail(folder, name, lines=15):
    with open(os.path.join(folder, "logs", name + ".log"), encoding="utf-8", errors="replace") as f:
        return f.readlines()[-lines:]


# -- watching the crawl ------------------------------------------------------------
class Watcher:
    """Reads the three spiders' figures through the library (what ``stat --json`` prints)."""

    def __init__(self, folder, settings):
        self.folder, self.settings = folder, settings or {}
        self.redis = None
        self.stores = {}

    def connect(self):
        """Connect once the runs have started the embedded Redis (False: not yet)."""
        started = os.path.exists(os.path.join(embedded.home(self.folder), "redis.url"))
        if not (started or self.settings):
            return False
        url = self.settings.get("redis") or embedded.redis_url(base=self.folder)  # theirs, under the lock
        self.redis = Redis(url)
        uri = self.settings.get("mongo_uri") or embedded.store_uri(base=self.folder)
        self.stores = {name: open_store(uri, "microspiders", name) for name, _ in SPIDERS}
        return True

    def stat(self):
        """{spider: the ``stat --json`` object}, or None before the Redis is up."""
        if self.redis is None and not self.connect():
            return None
        return {name: stats.stat(self.redis, self.stores[name], name) for name, _ in SPIDERS}

    def close(self):
        for store in self.stores.values():
            store.close()
        if self.redis is not None:
            self.redis.close()


def progress_line(elapsed, stats, pages_per_s):
    parts = []
    for name, _ in SPIDERS:
        s = stats[name]
        figures = [("ok", s["cached"]), ("items", s["items"] if name == INFO else 0),
                   ("to do", s["work"] + s["in_flight"] + s["backlog_due"] + s["backlog_waiting"]),
                   ("failures", s["failures"]), ("parked", s["backlog_over_age"])]
        parts.append("%s %s" % (name[len("ctrip_"):], ", ".join(
            "%s %d" % pair for pair in figures if pair[1] or pair[0] == "ok")))
    return "[%4.0fs] %s | %.0f pages/s" % (elapsed, " | ".join(parts), pages_per_s)


class Progress:
    """Prints a progress line every PROGRESS_EVERY seconds; remembers when the last page came."""

    def __init__(self, watcher, started):
        self.watcher, self.started = watcher, started
        self.pages, self.shown, self.last_page = None, started, 0.0

    def tick(self, now):
        if now - self.shown < PROGRESS_EVERY:
            return
        stats = self.watcher.stat()
        if not stats:
            return
        pages = sum(s["cached"] for s in stats.values())
        rate = (pages - self.pages) / (now - self.shown) if self.pages is not None else 0.0
        print(progress_line(now - self.started, stats, rate), flush=True)
        if rate:
            self.last_page = now - self.started
        self.pages, self.shown = pages, now


def watch(runs, progress, folder, deadline):
    """Show progress until every run has exited; returns the problems (a failed run, the timeout)."""
    problems = []
    while any(proc.poll() is None for proc in runs.values()) and not problems:
        time.sleep(0.2)
        now = time.monotonic()
        failed = [(name, proc.returncode) for name, proc in runs.items() if proc.poll()]
        for name, code in failed[:1]:
            problems.append("the %s run exited with status %d" % (name, code))
            say("%s exited with status %d; the end of logs/%s.log:" % (name, code, name))
            sys.stderr.writelines("    " + line for line in log_tail(folder, name))
        if now > deadline and not problems:
            problems.append("timed out after %.0f s (--timeout)" % (now - progress.started))
        progress.tick(now)
    for proc in runs.values():
        end_process(proc)
    return problems


# -- results ---------------------------------------------------------------------------
def fetch_truth(site_url):
    response = requests.get(site_url + "_truth", timeout=60)
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def fetch_site_stats(site_url):
    response = requests.get(site_url + "_stats?hits=0", timeout=30)
    response.raise_for_status()
    return response.json()


def leftovers(stats):
    """Problems for seeds that are still to do once every run has ended."""
    out = []
    for name, s in stats.items():
        todo = s["work"] + s["in_flight"] + s["backlog_due"] + s["backlog_waiting"]
        if todo:
            out.append("%s ended with %d seeds still to do" % (name, todo))
    return out


def print_figures(stats, site_stats, elapsed, last_page, report):
    pages = sum(s["cached"] for s in stats.values())
    answered = sum(site_stats["requests"].values())
    print("elapsed %.1f s: %d pages crawled, %.0f pages/s" % (elapsed, pages, pages / elapsed))
    if last_page:
        print("the last new page came at %.0f s (%.0f pages/s until then); after it: broken hotels "
              "going round the backlog until parked, and --idle" % (last_page, pages / last_page))
    print("site: %d requests (%.0f/s), faults served: %s" % (
        answered, answered / elapsed, ", ".join("%s %d" % kv for kv in sorted(site_stats["faults"].items()))))
    print("duplicated work: %d hotel pages served more than once (at-least-once allows it); "
          "duplicated items: %d" % (site_stats["hotel_ok_duplicates"], len(report.duplicates)))
    for name, _ in SPIDERS:
        s = stats[name]
        errors = "".join(" %s %d" % kv for kv in sorted(s["failures_by_error"].items()))
        print("%s: %d pages, %d items, %d failures kept%s, backlog %d (%d parked over max-age)"
              % (name, s["cached"], s["items"], s["failures"], errors and " (%s)" % errors.strip(),
                 s["backlog"], s["backlog_over_age"]))
    print("broken hotels: %d (%s)" % (len(report.broken), ", ".join(report.broken[:SHOW])))


def cli_name(folder):
    """How to type the microspider command from `folder`: plain if it is on PATH, else its path."""
    mine = os.path.join(os.path.dirname(sys.executable), "microspider")
    found = shutil.which("microspider")
    if found and os.path.realpath(found) == os.path.realpath(mine):
        return "microspider"
    return _shown(mine, folder) if os.path.exists(mine) else "%s -m microspider" % sys.executable


def print_next_steps(folder, configured):
    cli = cli_name(folder)
    steps = [
        ("%s stat" % cli, "queues, cache, failures and items of the three spiders"),
        ("%s dump -b -f url -f age %s" % (cli, INFO), "the parked seeds: the broken hotels"),
        ("%s parse %s" % (cli, _shown(os.path.join(HERE, "hotel_info.py"), folder)),
         "re-parse the stored failed pages with the current code"),
        ("%s export -o hotels.jsonl %s" % (cli, INFO), "the items"),
        ("kill $(cat .microspider/redis.pid)",
         "end the embedded Redis: it %s" % ("stays up for these commands" if configured
                                            else "starts again for these commands")),
    ]
    width = max(len(command) for command, _ in steps)
    print("next, from the work folder (cd %s):" % _shown(folder, os.getcwd()))
    for command, why in steps:
        print("  %s  # %s" % (command.ljust(width), why))


def _shown(path, start):
    """``path`` relative to ``start`` when that is short, else absolute."""
    relative = os.path.relpath(path, start)
    return path if relative.startswith(os.path.join(os.pardir, os.pardir)) else relative


def say(line):
    print("demo: " + line, file=sys.stderr, flush=True)


def fail(line):
    """Bad input or a setup that cannot work: one line on stderr, exit status 2."""
    say("error: " + line)
    raise SystemExit(2)


# -- main --------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m examples.ctrip.demo",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--hotels", type=int, default=3000, metavar="N", help="hotels on the site [3000]")
    parser.add_argument("--seed", type=int, default=1, metavar="S",
                        help="the site's seed: names, years, ids and faults follow from it [1]")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="worker processes per spider (run -w) [2]")
    parser.add_argument("--fault-rate", type=float, default=0.15, metavar="P",
                        help="chance of a fault on each of a page's first three requests [0.15]")
    parser.add_argument("--dir", default=".demo", help="work folder [./.demo]")
    parser.add_argument("--keep", action="store_true",
                        help="do not wipe the work folder: continue the crawl found there")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="stop the runs after this long and report [60 + hotels/20]")
    parser.add_argument("--web", nargs="?", type=int, const=8642, default=None, metavar="PORT",
                        help="serve the dashboard on 127.0.0.1:PORT while the demo runs [8642]")
    args = parser.parse_args(argv)
    if args.hotels < 1 or args.workers < 1 or not 0 <= args.fault_rate <= 1:
        parser.error("--hotels and --workers must be >= 1, --fault-rate from 0 to 1")
    return args


def crawl(args, folder, processes):
    """Start the site and the runs, watch them, check the result; returns the exit status."""
    port = remembered_port(folder, args) if args.keep else 0
    prepare_folder(folder, args.keep)
    processes["redis"] = not embedded_running(folder)  # ours to stop at the end
    processes["site"], site_url = start_site(args, folder, port)
    remember_site(folder, args, site_url)
    configured = configure_connection(folder)
    processes["redis"] = processes["redis"] and not configured  # then it stays up for the user
    say("site %s (%d hotels, seed %d, fault rate %.2f); work folder %s; logs in %s"
        % (site_url, args.hotels, args.seed, args.fault_rate, folder, os.path.join(folder, "logs")))
    watcher = Watcher(folder, configured)
    progress = Progress(watcher, time.monotonic())
    try:
        runs = start_runs(args, folder, spider_env(site_url))
        processes.update(runs)
        if args.web is not None:
            processes["web"], said = start_web(args.web, folder, spider_env(site_url))
            for line in said:
                say(line)
        deadline = progress.started + (args.timeout or 60 + args.hotels / 20)
        problems = watch(runs, progress, folder, deadline)
        elapsed = time.monotonic() - progress.started
        stats = watcher.stat()
        if not stats:
            print("INCOMPLETE: no crawl state found; " + "; ".join(problems))
            return 1
        report = check(fetch_truth(site_url), list(watcher.stores[INFO].iter_items()),
                       list(watcher.stores[INFO].iter_failures()))
    finally:
        watcher.close()
    report.problems = problems + leftovers(stats)
    print_figures(stats, fetch_site_stats(site_url), elapsed, progress.last_page, report)
    if args.keep:
        print("(--keep: the page counts include the earlier runs in this folder)")
    print_next_steps(folder, configured)
    for line in report.details():
        print(line)
    print(report.verdict(), flush=True)
    return 0 if report.complete else 1


def main(argv=None):
    args = parse_args(argv)
    folder = os.path.abspath(args.dir)
    processes = {}
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return crawl(args, folder, processes)
    except KeyboardInterrupt:
        say("interrupted; the runs put their seeds back (--keep continues the crawl)")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        for name, _ in SPIDERS:
            if name in processes:
                end_process(processes[name])
        if "web" in processes:
            end_process(processes["web"])
        if processes.get("redis"):
            stop_embedded(folder, "started by this demo")
        if "site" in processes:
            end_process(processes["site"])


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
