"""Where the time goes: a contender's crawl under py-spy, summarised per page.

``python -m benchmarks.profile [--pages 10000] [--only micro1,bare] [--rate 100]``

Runs each contender once, as ``benchmarks.run`` does, under ``py-spy record
--subprocesses --format raw`` (``pip install py-spy``), keeps the collapsed
stacks in ``benchmarks/out/profile-NAME.txt`` (open them in speedscope or
flamegraph.pl) and prints, for the crawling processes (workers; the bare
process), with start-up (imports) left out:

- inclusive shares of the functions that matter for a crawler (fetch, requests'
  per-request settings merge, urllib3, http.client, socket I/O, lxml, Redis,
  the worker's own bookkeeping), as % of samples and as µs per page;
- self time grouped by package; the top functions by self time;
- a call tree pruned to the nodes above ``--min-share``.

``µs per page`` is samples / rate / pages: py-spy samples only running
threads, so it estimates CPU per page (sampling slows the process, so read the
shares; the benchmark's table has the true CPU per page).  Samples of gevent's
thread-pool threads waiting on their lock are idle waits (py-spy counts them:
those threads use no CPU) and are left out too.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

from benchmarks import contenders
from benchmarks.servers import REPO, open_server

OUT = os.path.join(REPO, "benchmarks", "out")
LINE_NO = re.compile(r":\d+\)$")
IDLE_LEAVES = ("acquire_with_timeout (gevent/_threading.py)",)
STARTUP = ("_find_and_load", "patch_all (gevent/monkey")

# (label, function as py-spy names it, without the line number): inclusive shares
WATCH = [
    ("worker: feed (take + decode + cache check)", "Worker._feed (microspider/crawl/worker.py)"),
    ("  SpiderState.take (Lua LPOP -> in-flight)", "SpiderState.take (microspider/state/gateway.py)"),
    ("  Seed.from_json", "Seed.from_json (microspider/seed.py)"),
    ("  Cache.contains (SMISMEMBER)", "Cache.contains (microspider/state/cache.py)"),
    ("worker: process one seed", "Worker._process (microspider/crawl/worker.py)"),
    ("  Fetcher.fetch", "Fetcher.fetch (microspider/transport/fetcher.py)"),
    ("    Fetcher.request_headers", "Fetcher.request_headers (microspider/transport/fetcher.py)"),
    ("    PoolManager.urlopen", "PoolManager.urlopen (urllib3/poolmanager.py)"),
    ("    Fetcher._read_body", "Fetcher._read_body (microspider/transport/fetcher.py)"),
    ("    make_response (requests.Response)", "make_response (microspider/transport/response.py)"),
    ("bare: one page", "crawl.<locals>.one (benchmarks/bare.py)"),
    ("requests Session.request", "Session.request (requests/sessions.py)"),
    ("  Session.prepare_request", "Session.prepare_request (requests/sessions.py)"),
    ("  Session.merge_environment_settings", "Session.merge_environment_settings (requests/sessions.py)"),
    ("    get_environ_proxies (trust_env)", "get_environ_proxies (requests/utils.py)"),
    ("  merge_setting (requests)", "merge_setting (requests/sessions.py)"),
    ("    typing Protocol isinstance", "_ProtocolMeta.__instancecheck__ (typing.py)"),
    ("  Session.send", "Session.send (requests/sessions.py)"),
    ("    HTTPAdapter.send", "HTTPAdapter.send (requests/adapters.py)"),
    ("      urllib3 urlopen", "HTTPConnectionPool.urlopen (urllib3/connectionpool.py)"),
    ("        send request (http.client)", "HTTPConnection.request (urllib3/connection.py)"),
    ("        getresponse (status + headers)", "HTTPConnection.getresponse (urllib3/connection.py)"),
    ("          email header parsing", "parse_headers (http/client.py)"),
    ("      HTTPAdapter.build_response", "HTTPAdapter.build_response (requests/adapters.py)"),
    ("        extract_cookies_to_jar", "extract_cookies_to_jar (requests/cookies.py)"),
    ("  Response.content (read body)", "Response.content (requests/models.py)"),
    ("  urllib3 HTTPResponse.read", "HTTPResponse.read (urllib3/response.py)"),
    ("socket recv (gevent)", "SocketMixin.recv_into (gevent/_socketcommon.py)"),
    ("socket send (gevent)", "SocketMixin.send (gevent/_socketcommon.py)"),
    ("socket sendall (gevent)", "SocketMixin.sendall (gevent/_socketcommon.py)"),
    ("new connection", "HTTPConnection.connect (urllib3/connection.py)"),
    ("parse: spider's parse", "LinkSpider.parse (benchmarks/linkspider.py)"),
    ("parse: lxml fromstring", "fromstring (lxml/html/__init__.py)"),
    ("parse: bare count_links", "count_links (benchmarks/bare.py)"),
    ("Seed.request_url", "Seed.request_url (microspider/seed.py)"),
    ("Seed.body", "Seed.body (microspider/seed.py)"),
    ("urlsplit", "urlsplit (urllib/parse.py)"),
    ("worker: spider.collect", "collect (microspider/spider.py)"),
    ("worker: flush (acknowledge)", "Worker._flush (microspider/crawl/worker.py)"),
    ("  Worker._outcome", "Worker._outcome (microspider/crawl/worker.py)"),
    ("    Seed.cache_key", "Seed.cache_key (microspider/seed.py)"),
    ("  SpiderState.commit (transaction)", "SpiderState.commit (microspider/state/gateway.py)"),
    ("redis Pipeline.execute", "Pipeline.execute (redis/client.py)"),
    ("redis Script.__call__", "Script.__call__ (redis/commands/core.py)"),
    ("redis Connection.can_read (poll)", "AbstractConnection.can_read (redis/connection.py)"),
    ("gevent hub loop", "Hub.run (gevent/hub.py)"),
    ("gevent sleep", "sleep (gevent/hub.py)"),
]

PACKAGES = [("microspider/", "microspider"), ("benchmarks/", "benchmarks"),
            ("requests/", "requests"), ("urllib3/", "urllib3"), ("http/", "http.client"),
            ("email/", "email (header parsing)"), ("lxml/", "lxml"), ("redis/", "redis-py"),
            ("gevent/", "gevent"), ("greenlet", "gevent"), ("socket.py", "socket"),
            ("urllib/parse", "urllib.parse"), ("typing.py", "typing"), ("json/", "json"),
            ("scrapy/", "scrapy"), ("twisted/", "twisted")]


def py_spy():
    found = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(found):
        raise RuntimeError("no py-spy: pip install py-spy")
    return found


# -- reading py-spy's collapsed stacks -------------------------------------------------------
def read_stacks(path, worker_word=None):
    """(frames, count) of the crawling processes, start-up and idle waits apart; and totals."""
    stacks, totals = [], collections.Counter()
    with open(path, errors="replace") as f:
        for line in f:
            text, _, count = line.rstrip("\n").rpartition(" ")
            parts = text.split(";")
            procs = [p for p in parts if p.startswith("process ")]
            frames = [LINE_NO.sub(")", p) for p in parts if not p.startswith("process ")]
            n = int(count)
            leaf_proc = procs[-1] if procs else ""
            if worker_word and worker_word not in leaf_proc:
                totals["other processes"] += n
                continue
            if worker_word is None and len(procs) > 1:
                totals["other processes"] += n
                continue
            if not frames:
                totals["no Python frame"] += n
            elif frames[-1] in IDLE_LEAVES:
                totals["idle thread-pool waits"] += n
            elif any(s in f for f in frames for s in STARTUP):
                totals["start-up (imports, patching)"] += n
            else:
                totals["crawl"] += n
                stacks.append((frames, n))
    return stacks, totals


def summarise(stacks, totals, pages, rate, min_share=0.02, top=20):
    total = sum(n for _, n in stacks) or 1
    per_page = 1e6 / rate / pages

    def row(label, n):
        return "  %-50s %5.1f%%  %7.1f us/page" % (label, 100.0 * n / total, n * per_page)

    lines = ["samples: %s; %d crawl samples at %d Hz over %d pages = %.0f us/page"
             % (", ".join("%s %d" % kv for kv in sorted(totals.items())), total, rate, pages,
                total * per_page), "", "inclusive (share of crawl samples):"]
    inclusive = collections.Counter()
    for frames, n in stacks:
        for f in set(frames):
            inclusive[f] += n
    for label, func in WATCH:
        if inclusive.get(func):
            lines.append(row(label, inclusive[func]))
    by_pkg = collections.Counter()
    self_time = collections.Counter()
    for frames, n in stacks:
        leaf = frames[-1]
        self_time[leaf] += n
        by_pkg[next((name for key, name in PACKAGES if key in leaf), "other")] += n
    lines += ["", "self time by package (leaf frame):"]
    lines += [row(name, n) for name, n in by_pkg.most_common()]
    lines += ["", "top %d functions by self time:" % top]
    lines += [row(f[:50], n) for f, n in self_time.most_common(top)]
    lines += ["", "call tree (nodes >= %.0f%%):" % (100 * min_share)]
    lines += _tree(stacks, total, min_share, per_page)
    return "\n".join(lines)


def _tree(stacks, total, min_share, per_page):
    root = {}
    for frames, n in stacks:
        node = root
        for f in frames:
            entry = node.setdefault(f, [0, {}])
            entry[0] += n
            node = entry[1]
    out = []

    def walk(node, depth):
        for f, (n, children) in sorted(node.items(), key=lambda kv: -kv[1][0]):
            if n < min_share * total:
                continue
            out.append("  %s%-*s %5.1f%% %7.1f us" % ("  " * depth, max(60 - 2 * depth, 10), f[:60],
                                                      100.0 * n / total, n * per_page))
            walk(children, depth + 1)

    walk(root, 0)
    return out


# -- running under py-spy ----------------------------------------------------------------------
def profile(contender, ctx, rate):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "profile-%s.txt" % contender.name)
    contender.prepare(ctx)
    env = dict(os.environ, PYTHONPATH=REPO + (os.pathsep + os.environ["PYTHONPATH"]
                                              if os.environ.get("PYTHONPATH") else ""))
    cmd = [py_spy(), "record", "--subprocesses", "--format", "raw", "--rate", str(rate),
           "-o", path, "--"] + contender.command(ctx, 1)
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0 or not os.path.exists(path):
        raise RuntimeError("py-spy run of %s failed:\n%s" % (contender.name, proc.stderr[-2000:]))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--only", default="micro1,bare_notrust,bare")
    parser.add_argument("--server", choices=["nginx", "python"])
    parser.add_argument("--rate", type=int, default=100, help="samples per second [default: 100]")
    parser.add_argument("--min-share", type=float, default=0.02)
    parser.add_argument("--summarise", metavar="FILE",
                        help="only summarise an existing profile (with --only NAME for its kind)")
    args = parser.parse_args(argv)
    chosen = contenders.select(args.only.split(","))
    if args.summarise:
        stacks, totals = read_stacks(args.summarise, chosen[0].worker_word)
        print(summarise(stacks, totals, args.pages, args.rate, args.min_share))
        return 0
    workdir = tempfile.mkdtemp(prefix="ms-profile-")
    server = open_server(args.server, workdir, args.pages)
    redis_server = None
    try:
        server.start()
        if any(c.uses_redis for c in chosen):
            from tests.servers import RedisServer

            redis_server = RedisServer().start()
        ctx = contenders.Context(server.url, args.pages, args.concurrency, workdir,
                                 redis_server.url if redis_server else None)
        for contender in chosen:
            server.reset()
            path = profile(contender, ctx, args.rate)
            hits = server.hits()
            stacks, totals = read_stacks(path, contender.worker_word)
            text = "== %s: %s, %d pages, concurrency %d (%s); stacks in %s\n%s\n" % (
                contender.name, contender.label, args.pages, args.concurrency, server.kind,
                os.path.relpath(path, REPO),
                summarise(stacks, totals, args.pages, args.rate, args.min_share))
            if hits["total"] != args.pages:
                text += "WARNING: the server counted %d page requests\n" % hits["total"]
            with open(os.path.join(OUT, "profile-%s.summary.txt" % contender.name), "w") as f:
                f.write(text)
            print(text, flush=True)
    finally:
        server.stop()
        if redis_server:
            redis_server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
