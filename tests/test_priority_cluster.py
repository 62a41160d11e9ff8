"""The queue tests of tests/test_priority.py re-run on a real Redis Cluster (``pytest -m cluster``):
every level of a spider's work queue lives on its slot, and every script and push finds them.

The fixtures ``redis_url`` and ``r`` are overridden as in test_cluster_commands.py; the test
that picks other dbs is left out (a cluster has db 0 only).
"""
import pytest

from tests.cluster import cluster_as_r, cluster_as_redis_url, redis_cluster  # noqa: F401 (fixtures)
from tests.test_priority import *  # noqa: F401,F403 (the tests and their fixtures)

pytestmark = pytest.mark.cluster
del test_relay_across_dbs_keeps_priority  # noqa: F821 (dbs 1 and 2)
del test_the_frontier_admits_across_dbs_to_the_levels_of_the_work_db  # noqa: F821 (dbs 1 and 3)

