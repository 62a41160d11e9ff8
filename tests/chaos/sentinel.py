"""Trial kind "sentinel": the Ctrip crawl behind Redis Sentinel (a master, a replica, three
sentinels), and ``kill -9`` of the master at a random moment.

The sentinels promote the replica (about 2-3 s with down-after 1000 ms, quorum 2);
workers, supervisors and relays find the new master through the sentinels and go
on; the crawl must end by itself with every seed accounted for (lost = 0).  Every
acknowledging transaction was confirmed by the replica (WAIT) first, so the
killed master takes nothing with it that a run already relied on.
"""
from tests.chaos.crawls import _random_moment, _recover
from tests.chaos.trial import CtripTrial, run_trial
from tests.sentinel import SentinelSet


def failover(suite, trials):
    return [run_trial(suite, "sentinel", "master failover #%d" % (i + 1), lambda r: _failover(suite, r))
            for i in range(trials)]


def _failover(suite, result):
    with CtripTrial(suite, "sentinel", result, servers=SentinelSet()) as t:
        t.start()
        _random_moment(suite, t.crawl, suite.rng)
        old = t.server.servers.master_port()
        new, promoted = t.server.servers.failover()
        t.crawl.close()            # the checker's own client asks the sentinels again
        result.name += " (%d -> %d, promoted in %.1fs)" % (old, new.port, promoted)
        _recover(t, result, 60, promoted)
        t.finish()
        t.check()
