"""Trial kind "cluster": the Ctrip crawl on a real Redis Cluster (3 masters + 3 replicas), and
``kill -9`` of the master that holds a random spider's slot at a random moment.

Its replica is promoted (about 3-4 s with a 2 s node timeout); workers and
supervisors ride through the failover; the crawl must end by itself with every
seed accounted for (lost = 0).  Writes a batch makes to other masters are
confirmed by a replica (WAIT) before it is acknowledged, so the killed master
takes nothing with it that was not already on its replica.
"""
import time

from microspider.state import keys
from tests.chaos.crawls import _random_moment, _recover
from tests.chaos.harness import CTRIP_SPIDERS
from tests.chaos.trial import CtripTrial, run_trial
from tests.cluster import Cluster


def failover(suite, trials):
    return [run_trial(suite, "cluster", "master failover #%d" % (i + 1), lambda r: _failover(suite, r))
            for i in range(trials)]


def _failover(suite, result):
    rng = suite.rng
    with CtripTrial(suite, "cluster", result, servers=Cluster()) as t:
        t.start()
        _random_moment(suite, t.crawl, rng)
        name = rng.choice([n for n, _ in CTRIP_SPIDERS])
        cluster = t.server.servers
        old = cluster.master_of(keys.work(name))
        killed = time.monotonic()
        new = cluster.failover(keys.work(name))
        promoted = time.monotonic() - killed
        t.crawl.close()            # the checker's own client re-reads the slot map
        result.name += " (%s: %d -> %d, promoted in %.1fs)" % (name, old.port, new.port, promoted)
        _recover(t, result, 60, promoted)
        t.finish()
        t.check()
