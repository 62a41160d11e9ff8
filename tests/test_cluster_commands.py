"""The command tests of tests/test_cli_ops.py and test_ratelimit.py, re-run on a
real Redis Cluster (``pytest -m cluster``): every command behaves as on one server.

The fixtures ``redis_url`` and ``r`` are overridden here: the URL names two seed nodes of the
session cluster, and ``r`` is a cluster client.  Tests that pick another db (-o/-b/-c 3) are
left out: a cluster has db 0 only (``test_cluster.py`` checks that this is refused); so is
test_migrate.py, whose target is db 1 (``test_cluster.py`` migrates one server <-> cluster).
"""
import pytest

from tests.cluster import cluster_as_r, cluster_as_redis_url, redis_cluster  # noqa: F401 (fixtures)
from tests.test_cli_ops import *  # noqa: F401,F403 (the tests and their fixtures)
from tests.test_ratelimit import *  # noqa: F401,F403

pytestmark = pytest.mark.cluster
del test_dump_and_clear_take_long_db_options  # noqa: F821 (db 3)
del test_two_processes_share_one_rate  # noqa: F821 (its helper script opens a plain one-server client;
#                                        test_cluster.py runs --rate across processes instead)

