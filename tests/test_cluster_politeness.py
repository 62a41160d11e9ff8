"""The cool-downs, robots.txt store and Crawl-delay slots on a real Redis Cluster
(``pytest -m cluster``): every key of a spider shares its hash tag, so each script runs on one slot.
"""
import pytest

from tests.cluster import cluster_as_r, cluster_as_redis_url, redis_cluster  # noqa: F401 (fixtures)
from tests.test_robots import (site, test_crawl_delay_spaces_requests_for_every_process,  # noqa: F401
                               test_disallow_allow_and_wildcards, test_fetched_once_for_every_process,
                               test_a_5xx_robots_txt_disallows_for_now_and_is_asked_again,
                               test_a_file_stored_between_look_and_claim_is_not_fetched_again)
from tests.test_throttle import (cooldowns, test_retry_after_sets_the_window_capped,  # noqa: F401
                                 test_throttle_raises_and_counts)

pytestmark = pytest.mark.cluster



def test_a_throttled_crawl_on_a_cluster(tmp_path, redis_url):
    from tests.test_throttle import test_a_retry_after_over_the_cap_sends_the_seed_to_the_backlog as crawl

    crawl(tmp_path, redis_url)
