"""Trial kinds 5 and 6: a network that misbehaves, and bad data.

5. network - a purpose-built site (``sites.NetFaultSite``) resets, stays silent, truncates,
             lies about Content-Length, sends invalid encodings, huge bodies, broken gzip,
             garbage status lines and redirect loops; some pages for a few attempts, some forever.
6. baddata - garbage pushed raw into work queues mid-crawl (LPUSH and RPUSH); poison pushed
             raw (each on its own, so one cannot hide another); parse yielding garbage;
             parse with poison; spiders that raise at import, in start_seeds or in __init__.
"""
import collections
import json
import os
import shutil
import time

from microspider.state import keys
from microspider.seed import Seed
from tests.chaos import check
from tests.chaos.harness import ChaosRedis, Crawl, Processes
from tests.chaos.sites import FETCH_FAULTS, NetFaultSite, fault_plan
from tests.chaos.trial import CtripTrial, run_trial
from tests.crawl import cli_env
from tests.servers import Site, wait_until

MAX_BODY = 65536
NET_RETRY, NET_MAX_AGE = 2, 2
NET_ARGS = ("--idle", "1", "--relay-delay", "0.05", "--max-age", str(NET_MAX_AGE), "--retry",
            str(NET_RETRY), "--timeout", "0.5", "--pool", "20", "--max-body", str(MAX_BODY))
PLAIN_ARGS = ("--idle", "0.5", "--relay-delay", "0.05", "--max-age", "1", "--retry", "0",
              "--timeout", "3", "--pool", "10")


def quiet(site):
    """A tests.servers.Site that does not print the resets our own kills cause."""
    site.server.handle_error = lambda request, address: None
    return site


class Bench:
    """A private Redis, a store and a site for one small crawl; use as a context manager."""

    def __init__(self, suite, kind, site):
        self.suite = suite
        self.folder = suite.folder(kind)
        self.procs = Processes(self.folder)
        self.server = ChaosRedis(suite.redis_port, os.path.join(self.folder, "redis"))
        os.makedirs(self.server.dir)
        self.site = site
        self.store_uri = "sqlite:///" + os.path.join(self.folder, "store.sqlite3")
        self.crawl = None

    def __enter__(self):
        self.server.start()
        self.site.start()
        return self

    def __exit__(self, *exc):
        self.procs.end_all()
        self.site.stop()
        if self.crawl:
            self.crawl.close()
        self.server.kill()
        if not self.suite.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    def crawl_of(self, name, ref, env, args):
        self.crawl = Crawl(self.procs, self.server.url, self.store_uri[len("sqlite:///"):],
                           spiders=((name, ref),), env=cli_env(**env), args=args)
        return self.crawl

    def drive(self, result, workers=1, timeout=60):
        """Start the run, wait for its end; a hang or a bad exit is a problem.  True if it ended well."""
        crawl = self.crawl
        crawl.start({crawl.spiders[0][0]: workers})
        if not crawl.wait(timeout):
            result.problems.append("the run did not end within %.0fs: %s" % (timeout, _stuck(crawl)))
            crawl.stop()
            return False
        for name, code, last in crawl.exits:
            if code != 0:
                result.problems.append("run %s exited %s: %s" % (name, code, last.strip()[:200]))
        return all(code == 0 for _, code, _ in crawl.exits)


def _stuck(crawl):
    name = crawl.spiders[0][0]
    return "work %d, in flight %s, backlog %d" % (crawl.redis.llen(keys.work(name)), crawl.in_flight(),
                                                  crawl.redis.zcard(keys.backlog(name)))


# -- 5. network --------------------------------------------------------------------------------------
def network(suite, trials):
    return [run_trial(suite, "network", "faulty site #%d" % (i + 1), lambda r, i=i: _network(suite, r, i))
            for i in range(trials)]


def _network(suite, result, i):
    plan = fault_plan(60 if suite.quick else 240, suite.seed + i)
    with Bench(suite, "network", NetFaultSite(plan, MAX_BODY)) as b:
        crawl = b.crawl_of("chaos_net", "tests.chaos.spiders:ChaosNet", {"CHAOS_NET": b.site.url}, NET_ARGS)
        b.drive(result, workers=2, timeout=120)
        index = b.site.url + "index"
        loc = check.Locator(crawl.redis, b.store_uri, "chaos_net")
        pages = {p: b.site.url + "n/%d" % p for p in plan}
        expected = [index] + (list(pages.values()) if loc.cached([index])[0] else [])
        acc = check.account(crawl.redis, b.store_uri, {"chaos_net": expected})
        result.seeds, result.lost = acc.seeds, len(acc.lost)
        result.duplicated = b.site.duplicated()
        result.problems += acc.problems()
        _network_items(b.site, plan, acc.locators["chaos_net"], result)
        _network_retries(b.site, plan, result)


def _network_items(site, plan, loc, result):
    """Every page that recovers within the documented attempts has one item; no other page has one."""
    items = collections.Counter(str(i["_id"]) for i in loc.items)
    fetch_attempts = (NET_RETRY + 1) * (NET_MAX_AGE + 1)
    missing = collections.Counter()
    for page, (kind, _) in plan.items():
        attempts = fetch_attempts if kind in FETCH_FAULTS else NET_MAX_AGE + 1
        if site.recovers(page, attempts) and not items.get(str(page)):
            missing[kind] += 1
    if missing:
        result.problems.append("pages that should have recovered have no item, by fault: %s"
                               % ", ".join("%s %d" % kv for kv in sorted(missing.items())))
    doubled = [i for i, n in items.items() if n > 1]
    if doubled:
        result.problems.append("items stored more than once: %s" % doubled[:5])


def _network_retries(site, plan, result):
    """A page that fails forever is fetched (retry+1) x (max-age+1) times: retried at once every pass.

    One attempt may fail on a pooled connection the site had just closed, before
    the site sees it; so only counts at or below one fetch per pass (no immediate
    retries at all) or above the total are wrong.
    """
    want, passes = (NET_RETRY + 1) * (NET_MAX_AGE + 1), NET_MAX_AGE + 1
    seen = collections.defaultdict(set)
    for page, (kind, attempts) in plan.items():
        if attempts is None and kind in FETCH_FAULTS:
            seen[kind].add(site.requests[page])
    wrong = {k: sorted(v) for k, v in seen.items() if min(v) <= passes or max(v) > want}
    result.notes.append("fetches per page that fails forever (want %d): %s" % (want, ", ".join(
        "%s %s" % (k, "/".join(map(str, sorted(v)))) for k, v in sorted(seen.items()))))
    if wrong:
        result.problems.append("not retried at once (%d fetches wanted per forever-failing page): %s"
                               % (want, ", ".join("%s %s" % kv for kv in sorted(wrong.items()))))


# -- 6. bad data --------------------------------------------------------------------------------------
def bad_data(suite, trials):
    cases = [("garbage pushed mid-crawl", _garbage_queue)]
    cases += [("queue: " + label, lambda s, r, raw=raw: _poison_queue(s, r, raw)) for label, raw in POISON_RAWS]
    cases += [("parse: garbage values", lambda s, r: _parse(s, r, "tests.chaos.spiders:ChaosGarbage",
                                                            "chaos_garbage", None))]
    cases += [("parse: " + b, lambda s, r, b=b: _parse(s, r, "tests.chaos.spiders:ChaosPoison",
                                                       "chaos_poison", b))
              for b in ("surrogate_item", "surrogate_send", "surrogate_error", "sys_exit")]
    cases += [("broken spiders", _broken_spiders)]
    if suite.quick:   # the default test run: one of each family
        cases = [c for c in cases if c[0] in QUICK_CASES]
    chosen = [cases[i % len(cases)] for i in range(trials)]
    return [run_trial(suite, "baddata", label, lambda r, f=f: f(suite, r)) for label, f in chosen]


QUICK_CASES = ("garbage pushed mid-crawl", "queue: deeply nested JSON", "parse: garbage values",
               "parse: sys_exit", "broken spiders")
GARBAGE_RAWS = [b"not json", b"", b"{", b"[]", b"42", b'"http://127.0.0.1/"', b"null", b'{"url": 5}',
                b'{"url": "ftp://127.0.0.1/x"}', b'{"url": "http://127.0.0.1:9/", "method": "DELETE"}',
                b'{"url": "http://127.0.0.1:9/", "age": "old"}', b'{"url": "http://127.0.0.1:9/", "age": -1}',
                b'{"url": "http://127.0.0.1:9/", "age": 1e400}', b'{"url": "http://127.0.0.1:9/", "meta": [1]}',
                b'{"url": "http://127.0.0.1:9/", "data": 5}', b"\xff\xfe\x00 not utf-8", b'{"nourl": 1}']


def _garbage_queue(suite, result):
    with CtripTrial(suite, "baddata", result, hotels=max(60, suite.hotels // 3)) as t:
        t.start()
        wait_until(lambda: (t.crawl.ok_total() or 0) > 20, timeout=60, message="progress")
        odd = [json.dumps({"url": t.site.url + "hotel/%s.html" % t.site.catalog.hotel_id(0), "v": 99,
                           "unknown": {"kept": True}}).encode(),
               json.dumps({"url": t.site.url + "nope", "headers": {"X-Number": 5}}).encode()]
        raws = {"chaos_info": GARBAGE_RAWS[::2] + odd, "chaos_hotel": GARBAGE_RAWS[1::2]}
        redis = t.crawl.redis
        for name, items in raws.items():
            for n, raw in enumerate(items):
                (redis.lpush if n % 2 else redis.rpush)(keys.work(name), raw)
        t.finish()
        acc = t.check(raws)
        if "malformed seed quarantined" not in t.crawl.logs():
            result.problems.append("quarantining was not reported")
        quarantined = sum(len(acc.locators[n].quarantine) for n in raws)
        result.notes.append("%d quarantined as found" % quarantined)


POISON_RAWS = [("deeply nested JSON", "[" * 100000),
               ("lone surrogate in a url", '{"url": "%sp/\\ud800"}'),
               ("lone surrogate in the meta of a failing seed", '{"url": "%smissing", "meta": {"k": "\\ud800"}}')]


def plain_route(handler, path, attempt):
    if path == "/missing":
        return 404, {}, "gone"
    return 200, {}, "<h1>%s</h1>" % path


def _poison_queue(suite, result, raw):
    with Bench(suite, "baddata", quiet(Site(plain_route))) as b:
        base = b.site.url + "/"
        raw = (raw % base if "%s" in raw else raw).encode("utf-8", "surrogatepass")
        crawl = b.crawl_of("chaos_plain", "tests.chaos.spiders:ChaosPlain", {"CHAOS_PLAIN": base}, PLAIN_ARGS)
        expected = [base + "p/%d" % i for i in range(8)]
        pushed = [Seed(u).to_json().encode() for u in expected]
        crawl.redis.rpush(keys.work("chaos_plain"), *(pushed[:4] + [raw] + pushed[4:]))
        b.drive(result, timeout=12 if suite.quick else 25)
        acc = check.account(crawl.redis, b.store_uri, {"chaos_plain": expected}, {"chaos_plain": [raw]})
        result.seeds, result.lost = acc.seeds, len(acc.lost)
        result.problems += acc.problems()
        quarantined = raw in crawl.redis.lrange(keys.quarantine("chaos_plain"), 0, -1)
        result.notes.append("the poison ended %s" % ("in quarantine" if quarantined else "elsewhere"))


def _parse(suite, result, ref, name, behaviour):
    from tests.chaos import spiders

    with Bench(suite, "baddata", quiet(Site(plain_route))) as b:
        base = b.site.url + "/"
        env = {"CHAOS_PLAIN": base}
        if behaviour:
            env["CHAOS_POISON"] = behaviour
        crawl = b.crawl_of(name, ref, env, PLAIN_ARGS)
        b.drive(result, timeout=12 if suite.quick else 30)
        behaviours = ("good", behaviour) if behaviour else spiders.GARBAGE
        pages = 6 if behaviour else 3 * len(spiders.GARBAGE)
        starts = [base + "g/%d" % i for i in range(pages)]
        loc = check.Locator(crawl.redis, b.store_uri, name)
        hits = dict(zip(starts, loc.cached(starts)))
        children = [base + "c/%d" % i for i, u in enumerate(starts) if hits[u]
                    and behaviours[i % len(behaviours)] == "good"]
        acc = check.account(crawl.redis, b.store_uri, {name: starts + children})
        result.seeds, result.lost = acc.seeds, len(acc.lost)
        result.problems += acc.problems()
        loc = acc.locators[name]
        for i, url in enumerate(starts):
            what = behaviours[i % len(behaviours)]
            if what != "good" and hits[url]:
                result.problems.append("garbage from parse (%s) was taken as a success: %s" % (what, url))
            if what == "good" and not hits[url]:
                result.problems.append("a good page did not succeed: %s" % url)
        leaks = [u for u in (base + "leak/%d" % i for i in range(pages)) if loc.places([u])[u]]
        leaks += [str(i["_id"]) for i in loc.items if str(i["_id"]).startswith("leak-")]
        if leaks:
            result.problems.append("a parse that raised still sent or stored: %s" % leaks[:3])
        by_error = collections.Counter()
        for d in _failures(b.store_uri, name):
            by_error[d["error"]] += 1
        result.notes.append("failures stored by error: %s" % dict(by_error))


def _failures(store_uri, name):
    from microspider.store import open_store

    store = open_store(store_uri, "microspiders", name)
    try:
        return list(store.iter_failures())
    finally:
        store.close()


# -- broken spiders ---------------------------------------------------------------------------------
BROKEN = {
    "import_error.py": ("chaos_bad_import", 2, '''
class S(Spider):
    name = "chaos_bad_import"
    def parse(self, response, seed):
        return ()
raise RuntimeError("boom at import")
'''),
    "start_seeds_error.py": ("chaos_bad_seeds", 2, '''
class S(Spider):
    name = "chaos_bad_seeds"
    def start_seeds(self):
        yield Seed("http://127.0.0.1:9/one")
        self.send("http://127.0.0.1:9/two", to="chaos_keep")
        raise RuntimeError("boom in start_seeds")
    def parse(self, response, seed):
        return ()
'''),
    "start_seeds_garbage.py": ("chaos_bad_garbage", 2, '''
class S(Spider):
    name = "chaos_bad_garbage"
    def start_seeds(self):
        yield Seed("http://127.0.0.1:9/one")
        yield 42
    def parse(self, response, seed):
        return ()
'''),
    "init_error.py": ("chaos_bad_init", 2, '''
class S(Spider):
    name = "chaos_bad_init"
    start_urls = ["http://127.0.0.1:9/one"]
    def __init__(self):
        raise RuntimeError("boom in __init__")
    def parse(self, response, seed):
        return ()
'''),
    "worker_import_error.py": ("chaos_keep", 1, '''
import os
class S(Spider):
    name = "chaos_keep"
    def parse(self, response, seed):
        return ()
if os.environ.get("MICROSPIDER_WORKER_JOB"):
    raise RuntimeError("boom, only in the worker process")
'''),
}
# keys `run` may write before it fails: the spider's registration
ALLOWED = ("microspider:spiders", ":meta", ":workers", ":stats", ":upstream")


def _broken_spiders(suite, result):
    from tests.crawl import write_spider

    with Bench(suite, "baddata", quiet(Site(plain_route))) as b:
        redis = b.server.client()
        keep = [Seed("http://127.0.0.1:9/keep/%d" % i).to_json() for i in range(5)]
        redis.rpush(keys.work("chaos_keep"), *keep)
        redis.zadd(keys.backlog("chaos_keep"), {Seed("http://127.0.0.1:9/b", age=1).to_json(): time.time() + 3600})
        redis.sadd(keys.cache("chaos_keep"), Seed("http://127.0.0.1:9/c").cache_key)
        for name in ("chaos_bad_seeds", "chaos_bad_garbage"):
            redis.rpush(keys.quarantine(name), b"old garbage")   # a quarantine does not make a crawl stale
        for filename, (name, want, body) in BROKEN.items():
            if suite.quick and want != 2:
                continue   # the crash loop takes a few worker starts: the full suite only
            path = write_spider(b.folder, filename, body)
            before = _snapshot(redis)
            started = time.monotonic()
            code, out = b.procs.run(["run", path, "--redis", b.server.url, "--mongo-uri", b.store_uri,
                                     "--idle", "0.5"], cli_env(), filename.split(".")[0], timeout=90)
            result.recovered(time.monotonic() - started)
            result.seeds = len(keep) + 2
            errors = [l for l in out.splitlines() if "microspider: error:" in l]
            if want == 2:
                ok_output = len(errors) == 1 and "Traceback" not in out
            else:   # the run's own verdict; each crashing worker prints its own error (noted)
                ok_output = "keep crashing" in out
                result.notes.append("%s: %d worker tracebacks in the output" % (filename, out.count("Traceback")))
            if code != want or not ok_output:
                result.problems.append("%s: exit %s (want %d), %s" % (
                    filename, code, want, _line_of(out, "Error") or out.strip()[-150:]))
            changed = _changed(before, _snapshot(redis), name)
            if changed:
                result.problems.append("%s changed Redis: %s" % (filename, changed[:5]))
        work = redis.lrange(keys.work("chaos_keep"), 0, -1)
        result.lost += sum(1 for raw in keep if raw.encode() not in work)


def _line_of(text, needle):
    return next((l.strip()[:200] for l in reversed(text.splitlines()) if needle in l), "")


def _snapshot(redis):
    return {k: redis.dump(k) for k in redis.keys("*")}


def _changed(before, after, name):
    out = []
    for key in sorted(set(before) | set(after)):
        text = key.decode()
        if before.get(key) == after.get(key):
            continue
        if text == "microspider:spiders" or ("{%s}" % name in text and text.endswith(ALLOWED)):
            continue
        out.append("%s %s" % (text, "removed" if key not in after else "added" if key not in before else "changed"))
    return out
