"""`microspider stop`: the embedded Redis of a folder ends cleanly, its data kept."""
import os
import time

import redis

from microspider.state import keys
from tests.crawl import microspider, write_spider
from tests.servers import wait_until


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_ends_the_embedded_redis_and_keeps_its_data(tmp_path):
    spider = write_spider(tmp_path, "shop.py", """
class Shop(Spider):
    name = "shop"

    def parse(self, response, seed):
        yield {{}}
""")
    microspider("push", spider, "http://a.com/1", cwd=tmp_path, check=0)
    home = tmp_path / ".microspider"
    pid = int((home / "redis.pid").read_text())
    url = (home / "redis.url").read_text().strip()
    client = redis.Redis.from_url(url)
    client.zadd(keys.workers("shop"), {"w1": time.time() + 60})     # a run's live worker
    proc = microspider("stop", cwd=tmp_path, check=2)
    assert "shop has 1 live workers" in proc.stderr and proc.stderr.count("\n") == 1 and alive(pid)
    client.zrem(keys.workers("shop"), "w1")
    client.close()
    proc = microspider("stop", cwd=tmp_path, check=0)
    assert "embedded Redis stopped (pid %d)" % pid in proc.stderr
    wait_until(lambda: not alive(pid), timeout=10, message="redis-server gone")
    assert "no embedded Redis is running" in microspider("stop", cwd=tmp_path, check=0).stderr
    proc = microspider("dump", "-o", spider, cwd=tmp_path, check=0)      # started again, same data
    assert proc.stdout.split() == ["http://a.com/1"]
    microspider("stop", "--force", cwd=tmp_path, check=0)
