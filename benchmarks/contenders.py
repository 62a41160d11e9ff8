"""The contenders of ``benchmarks.run``: how each is prepared, started and checked.

Every contender is one subprocess tree started by the harness; it fetches each
of the N pages once with the same concurrency and the same parse (count the
``<a>`` elements with lxml).  ``prepare`` runs before the clock starts (for
the Redis-backed ones: flush the private Redis and push the N seeds), ``check``
after it stopped, and returns what went wrong, if anything.
"""
import importlib.util
import os
import sys

from benchmarks.site import page_urls

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(REPO, "benchmarks")
SPIDER = "bench_links"


class Context:
    """What every contender needs: the site, the concurrency, the private Redis, a work dir."""

    def __init__(self, base, pages, concurrency, workdir, redis_url=None):
        self.base, self.pages, self.concurrency = base, pages, concurrency
        self.workdir, self.redis_url = workdir, redis_url

    @property
    def urls(self):
        return page_urls(self.base, self.pages)

    def redis(self):
        import redis

        return redis.Redis.from_url(self.redis_url)


class Contender:
    name = label = None
    uses_redis = False
    worker_word = None       # command-line word of the worker processes (None: the root process)

    def available(self):
        return True

    def prepare(self, ctx):
        """Make the state the run starts from (not timed)."""

    def command(self, ctx, round_no):
        raise NotImplementedError

    def check(self, ctx, stdout):
        """Problems found after the run (a list of strings; empty when all is well)."""
        return []


def _python(module, *args):
    return [sys.executable, "-m", module] + [str(a) for a in args]


class Bare(Contender):
    name = "bare"
    label = "bare loop (trust_env=True)"

    def command(self, ctx, round_no):
        return _python("benchmarks.bare", "--base", ctx.base, "--pages", ctx.pages,
                       "--concurrency", ctx.concurrency)

    def check(self, ctx, stdout):
        import json

        lines = [l for l in stdout.splitlines() if l.startswith("{")]
        if not lines:
            return ["the bare loop printed no result"]
        totals = json.loads(lines[-1])
        return [] if totals["pages"] == ctx.pages and not totals["errors"] else [
            "bare loop: %(pages)d pages, %(errors)d errors" % totals]


class BareNoTrust(Bare):
    name = "bare_notrust"
    label = "bare loop (trust_env=False)"

    def command(self, ctx, round_no):
        return super().command(ctx, round_no) + ["--no-trust-env"]


class BareRedis(Bare):
    name = "bare_redis"
    label = "bare loop + LPOP/SADD per page"
    uses_redis = True

    def prepare(self, ctx):
        client = ctx.redis()
        client.flushall()
        for start in range(0, ctx.pages, 1000):
            client.rpush("bench:urls", *ctx.urls[start:start + 1000])
        client.close()

    def command(self, ctx, round_no):
        return super().command(ctx, round_no) + ["--redis", ctx.redis_url]


class Microspider(Contender):
    """``microspider run benchmarks/linkspider.py --pool C -w W`` over N pushed seeds."""

    uses_redis = True
    worker_word = "_worker"

    def __init__(self, workers, fetcher=None, impersonate=None):
        self.workers = workers
        self.flags = ["--fetcher", fetcher] if fetcher else []
        if impersonate:
            self.flags = ["--impersonate", impersonate]
        self.name = "micro%d" % workers + ("_" + (fetcher or "impersonate") if self.flags else "")
        self.label = " ".join(["microspider -w %d" % workers] + self.flags)

    def available(self):
        return "--impersonate" not in self.flags or importlib.util.find_spec("curl_cffi") is not None

    def prepare(self, ctx):
        from microspider.ops.seeding import push_seeds
        from microspider.state import Redis
        from microspider.seed import Seed

        client = ctx.redis()
        client.flushall()
        client.close()
        redis = Redis(ctx.redis_url)
        pushed, _ = push_seeds(redis, SPIDER, [Seed(u) for u in ctx.urls], force=True)
        redis.close()
        assert pushed == ctx.pages

    def command(self, ctx, round_no):
        store = os.path.join(ctx.workdir, "store-%s-%d.sqlite3" % (self.name, round_no))
        return _python("microspider", "run", os.path.join(HERE, "linkspider.py"),
                       "--pool", ctx.concurrency, "-w", self.workers, "--idle", "0.5",
                       "--redis", ctx.redis_url, "--mongo-uri", "sqlite:///" + store,
                       "--config", os.devnull,   # defaults only, not the example's microspider.cfg
                       *self.flags)

    def check(self, ctx, stdout):
        from microspider.state import keys

        client = ctx.redis()
        stats = {k.decode(): int(v) for k, v in client.hgetall(keys.stats(SPIDER)).items()}
        work = client.llen(keys.work(SPIDER))
        backlog = client.zcard(keys.backlog(SPIDER))
        client.close()
        problems = []
        if stats.get("ok", 0) != ctx.pages:
            problems.append("microspider counted %d pages ok of %d (stats %s)"
                            % (stats.get("ok", 0), ctx.pages, stats))
        if work or backlog:
            problems.append("microspider left work %d, backlog %d" % (work, backlog))
        return problems


class Scrapy(Contender):
    """Scrapy over the N URLs, same concurrency and parse (``benchmarks.peers``)."""

    name = "scrapy"
    label = "Scrapy"

    def available(self):
        return importlib.util.find_spec("scrapy") is not None

    def command(self, ctx, round_no):
        return _python("benchmarks.peers", "scrapy", "--base", ctx.base, "--pages", ctx.pages,
                       "--concurrency", ctx.concurrency)

    check = Bare.check


class ScrapyRedis(Scrapy):
    """scrapy-redis reading the N URLs from a Redis list (``benchmarks.peers``)."""

    name = "scrapy_redis"
    label = "scrapy-redis"
    uses_redis = True

    def available(self):
        return super().available() and importlib.util.find_spec("scrapy_redis") is not None

    prepare = BareRedis.prepare

    def command(self, ctx, round_no):
        return _python("benchmarks.peers", "scrapy_redis", "--base", ctx.base, "--pages",
                       ctx.pages, "--concurrency", ctx.concurrency, "--redis", ctx.redis_url)


ALL = [Bare(), BareNoTrust(), BareRedis(), Microspider(1), Microspider(2),
       Microspider(1, "curl"), Microspider(1, "urllib3"), Microspider(1, impersonate="chrome"),
       Scrapy(), ScrapyRedis()]
DEFAULT = ["bare", "bare_notrust", "micro1", "micro1_urllib3", "micro1_impersonate", "micro2", "scrapy",
           "scrapy_redis"]
BASELINE = "bare"


def select(names=None):
    """The contenders to run: `names` (in that order) or the default set that is installed."""
    by_name = {c.name: c for c in ALL}
    if names:
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError("unknown contender %s; known: %s"
                             % (", ".join(unknown), ", ".join(by_name)))
        chosen = [by_name[n] for n in names]
        missing = [c.name for c in chosen if not c.available()]
        if missing:
            raise ValueError("not installed: %s (pip install -e .[bench])" % ", ".join(missing))
        return chosen
    return [by_name[n] for n in DEFAULT if by_name[n].available()]
