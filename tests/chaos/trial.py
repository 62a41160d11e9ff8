"""What every trial shares: its result record, its folder and servers, and the Ctrip crawl around a fault.

A Ctrip trial starts a private Redis (AOF on, a fixed port for the whole
suite), a fresh ``CountingSite``, and ``run`` commands of the three chaos
spiders; the kind's ``inject`` does its damage while the crawl runs; then the
crawl is driven to its end (a run that died is started again, as an operator
would, and the death is reported), and the checker accounts for every seed.
Everything started is ended by PID and process group, also when a trial fails.
"""
import dataclasses
import os
import shutil
import time
import traceback

from tests.chaos import check
from tests.chaos.harness import ChaosRedis, Crawl, Processes, Roles
from tests.chaos.sites import CountingSite
from tests.crawl import cli_env


@dataclasses.dataclass
class TrialResult:
    kind: str
    name: str = ""
    seeds: int = 0
    lost: int = 0
    duplicated: int = 0
    recovery: float = None            # seconds, as the kind defines it
    problems: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def recovered(self, seconds):
        self.recovery = max(self.recovery or 0.0, seconds)


class Suite:
    """Settings shared by the trials of one suite run."""

    def __init__(self, root, seed=1, hotels=1000, quick=False, keep=False, log=print):
        import random

        from tests.servers import free_port

        self.root, self.seed, self.hotels, self.quick, self.keep = root, seed, hotels, quick, keep
        self.rng = random.Random(seed)
        self.redis_port = free_port()
        self.log = log
        self._count = 0

    def folder(self, kind):
        self._count += 1
        path = os.path.join(self.root, "%02d-%s" % (self._count, kind))
        os.makedirs(path)
        return path

    def pages(self):
        """Pages of a crawl of the Ctrip-like site: hotels, list pages, the city list."""
        return self.hotels + self.hotels // 20 + 41

    def expected_seconds(self):
        """A rough length of one undisturbed crawl on this machine, to aim faults inside it."""
        return 3.0 + self.hotels / 150.0


def run_trial(suite, kind, name, body):
    """Run `body(result)`; any exception is a problem of the trial, never the end of the suite."""
    result = TrialResult(kind, name)
    started = time.monotonic()
    try:
        body(result)
    except Exception as exc:
        result.problems.append("trial error: %s: %s" % (type(exc).__name__, exc))
        result.notes.append(traceback.format_exc(limit=6))
    result.seconds = time.monotonic() - started
    suite.log("  %-14s %-28s seeds %6d lost %d dup %4d recovery %s %.1fs%s" % (
        kind, result.name, result.seeds, result.lost, result.duplicated,
        "-" if result.recovery is None else "%.2fs" % result.recovery, result.seconds,
        "".join("\n      ! " + p for p in result.problems)))
    return result


class ServerSet:
    """Several servers (a cluster, a Sentinel set) in the place of the trial's private Redis."""

    def __init__(self, servers):
        self.servers = servers

    @property
    def url(self):
        return self.servers.url

    def start(self):
        self.servers.start()
        return self

    def kill(self):
        self.servers.stop()


class CtripTrial:
    """A crawl of the Ctrip-like site around one fault; use as a context manager.

    `servers` (a tests.cluster.Cluster, a tests.sentinel.SentinelSet) replaces the
    private redis-server; ``self.server.servers`` is it then."""

    WORKERS = {"chaos_city": 1, "chaos_hotel": 1, "chaos_info": 2}

    def __init__(self, suite, kind, result, fsync="everysec", fault_rate=0.15, slow=0.5, hotels=None,
                 servers=None):
        self.suite, self.result = suite, result
        self.folder = suite.folder(kind)
        self.procs = Processes(self.folder)
        if servers is not None:
            self.server = ServerSet(servers)
        else:
            self.server = ChaosRedis(suite.redis_port, os.path.join(self.folder, "redis"), fsync=fsync)
            os.makedirs(self.server.dir)
        self.site = CountingSite(hotels=hotels or suite.hotels, seed=suite.seed + suite._count,
                                 fault_rate=fault_rate, slow=slow)
        self.store_path = os.path.join(self.folder, "store.sqlite3")
        self.crawl = None
        self.poisoned = {}         # hotel id -> what its page makes parse do (CHAOS_POISON_HOTELS)

    def __enter__(self):
        self.server.start()
        self.site.start()
        self.crawl = Crawl(self.procs, self.server.url, self.store_path,
                           env=cli_env(CHAOS_SITE=self.site.url,
                                       CHAOS_POISON_HOTELS=",".join("%s:%s" % kv for kv in self.poisoned.items())))
        return self

    def __exit__(self, *exc):
        self.procs.end_all()
        self.site.stop()
        if self.crawl:
            self.crawl.close()
        self.server.kill()
        if not self.suite.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    def start(self):
        self.crawl.start(self.WORKERS)

    def finish(self, timeout=None, restarts=2):
        """Drive the crawl to its end; a run that ended badly is reported and started again.

        Returns True when every run ended with 0 (after restarts, if any).
        """
        timeout = timeout or 60 + 3 * self.suite.expected_seconds()
        deadline = time.monotonic() + timeout
        started = {}
        while True:
            if not self.crawl.wait(max(1.0, deadline - time.monotonic()), until_failure=True):
                self.result.problems.append("the crawl did not end within %.0fs: %s"
                                            % (timeout, self._stuck()))
                self.crawl.stop()
                return False
            time.sleep(0.5)           # runs that die together are all seen together
            self.crawl.collect_exits()
            bad = [e for e in self.crawl.exits if e[1] != 0]
            self.crawl.exits = []
            for name, code, last in bad:
                self.result.problems.append("run %s exited %s: %s" % (name, code, last.strip()[:200]))
            if not bad and not self.crawl.runs:
                return not any(p.startswith("run ") for p in self.result.problems)
            for name, _, _ in bad:
                started[name] = started.get(name, 0) + 1
                if started[name] > restarts:
                    self.crawl.stop()
                    return False
                self.crawl.start_run(name, workers=self.WORKERS[name])

    def _stuck(self):
        from microspider.ops import stats as status

        parts = []
        for name, _ in self.crawl.spiders:
            try:
                c = status.counts(Roles(self.crawl.redis), name)
                parts.append("%s work %d in flight %d backlog %d" % (name, c["work"], c["in_flight"], c["backlog"]))
            except Exception as exc:
                parts.append("%s: %s" % (name, exc))
        return "; ".join(parts)

    def check(self, raws=None):
        """Account for every seed and item; adds to the result.  Returns the Account."""
        redis = self.crawl.redis
        catalog, base = self.site.catalog, self.site.url
        locators = {}

        def cached(name, urls):
            if name not in locators:
                locators[name] = check.Locator(redis, "sqlite:///" + self.store_path, name)
            return locators[name].cached(urls)

        expected = check.ctrip_expected(catalog, base, cached)
        acc = check.account(redis, "sqlite:///" + self.store_path, expected, raws)
        item_problems = check.ctrip_items(catalog, base, acc.locators["chaos_info"])
        lost_items = [p for p in item_problems if p.startswith("item lost")]
        self.result.seeds += acc.seeds
        self.result.lost += len(acc.lost) + len(lost_items)
        self.result.duplicated += self.site.duplicated()
        self.result.problems += acc.problems() + item_problems[:10]
        self._completeness(acc)
        return acc

    def _completeness(self, acc):
        """A finished crawl should hold every good hotel: say so if not (not lost: parked somewhere)."""
        items = {str(i["_id"]) for i in acc.locators["chaos_info"].items}
        catalog = self.site.catalog
        missing = [catalog.hotel_id(i) for i in range(catalog.size)
                   if i not in catalog.broken and catalog.hotel_id(i) not in items
                   and catalog.hotel_id(i) not in self.poisoned]
        if missing and not self.crawl.alive():
            self.result.problems.append("incomplete: %d good hotels without an item (e.g. %s)"
                                        % (len(missing), ", ".join(missing[:3])))

