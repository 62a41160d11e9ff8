"""The shared token bucket, on the real redis-server."""
import json
import os
import subprocess
import sys
import time

import pytest

from microspider.state import keys
from microspider.state import Redis, SpiderState
from microspider.state.ratelimit import RateLimiter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rewind(r, key, seconds):
    """Pretend the bucket was last touched `seconds` earlier (server time is not injectable)."""
    ts = int(r.hget(key, "ts"))
    r.hset(key, "ts", ts - int(seconds * 1_000_000))


def test_burst_goes_out_at_once_then_each_token_waits_one_interval(r):
    limiter = RateLimiter(r, "bucket", rate=10, burst=3)
    waits = [limiter.reserve() for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    for wait, expected in zip(waits[3:], (0.1, 0.2, 0.3)):
        assert expected - 0.05 < wait <= expected     # a little server time passes between calls


def test_tokens_come_back_with_server_time(r):
    limiter = RateLimiter(r, "bucket", rate=10, burst=5)
    for _ in range(5):
        assert limiter.reserve() == 0.0
    assert limiter.reserve() > 0            # now one token in debt
    rewind(r, "bucket", 0.5)                # 5 tokens refilled: debt paid, 4 left
    assert [limiter.reserve() for _ in range(4)] == [0.0] * 4
    assert limiter.reserve() > 0


def test_refill_never_exceeds_burst(r):
    limiter = RateLimiter(r, "bucket", rate=10, burst=2)
    limiter.reserve()
    rewind(r, "bucket", 3600)
    assert [limiter.reserve() for _ in range(2)] == [0.0, 0.0]
    assert limiter.reserve() > 0


def test_fractional_rate(r):
    limiter = RateLimiter(r, "bucket", rate=0.5)
    waits = [limiter.reserve() for _ in range(3)]
    assert waits[0] == 0.0
    assert 1.95 < waits[1] <= 2.0
    assert 3.95 < waits[2] <= 4.0


def test_reserving_several_tokens_at_once(r):
    limiter = RateLimiter(r, "bucket", rate=100)
    assert 0.05 < limiter.reserve(10) <= 0.09      # 1 in the bucket, 9 more at 100/s
    assert 0.15 < limiter.reserve(10) <= 0.19


@pytest.mark.parametrize("rate", [0, -1, "fast", None, float("nan"), float("inf"), True])
def test_bad_rates_are_refused_in_one_line(r, rate):
    with pytest.raises(ValueError) as caught:
        RateLimiter(r, "bucket", rate=rate)
    message = str(caught.value)
    assert "rate must be a positive number" in message and "\n" not in message


@pytest.mark.parametrize("burst", [0, 0.5, "many"])
def test_bad_bursts_are_refused(r, burst):
    with pytest.raises(ValueError, match="burst must be"):
        RateLimiter(r, "bucket", rate=5, burst=burst)


def test_rate_given_as_text_is_accepted(r):
    assert RateLimiter(r, "bucket", rate="2.5").rate == 2.5


def test_spider_bucket_lives_at_its_key_and_expires_when_idle(r, redis_url):
    limiter = SpiderState(Redis(redis_url), "hotel").rate_limiter(4)
    limiter.reserve()
    limiter.reserve()
    key = keys.ratelimit("hotel")
    assert r.hget(key, "tokens") is not None
    assert 0 < r.pttl(key) <= 1500              # full again 0.5 s from now, +1 s margin


def test_server_clock_is_the_only_clock(r):
    RateLimiter(r, "bucket", rate=1).reserve()
    seconds, micros = r.time()
    assert abs(int(r.hget("bucket", "ts")) - (seconds * 1_000_000 + micros)) < 1_000_000


def test_host_buckets_are_separate(r, redis_url):
    limiter = SpiderState(Redis(redis_url), "hotel").host_rate_limiter(1)
    assert limiter.reserve("a.example") == 0.0
    assert limiter.reserve("b.example") == 0.0
    assert limiter.reserve("a.example") > 0.9
    assert r.exists(keys.ratelimit("hotel", "a.example"), keys.ratelimit("hotel", "b.example")) == 2
    assert limiter.for_host("b.example").reserve() > 0.9


def test_for_host_limiter_uses_the_host_key(r, redis_url):
    bound = SpiderState(Redis(redis_url), "hotel").host_rate_limiter(2, burst=4).for_host("a.example")
    assert (bound.key, bound.rate, bound.burst) == (keys.ratelimit("hotel", "a.example"), 2.0, 4.0)


SENDER = r"""
import json, sys, threading, time
import redis
from microspider.state.ratelimit import RateLimiter

url, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
limiter = RateLimiter(redis.Redis.from_url(url), "shared", rate=20)
sent = []

def send():
    while True:
        wait = limiter.reserve()
        if wait:
            time.sleep(wait)
        if time.time() >= end:
            return
        sent.append(time.time())

time.sleep(max(0.0, start - time.time()))
threads = [threading.Thread(target=send) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(sent))
"""


def test_two_processes_share_one_rate(redis_url):
    start = time.time() + 1.5                   # both processes are up by then
    end = start + 3.0
    env = dict(os.environ, PYTHONPATH=ROOT)
    procs = [
        subprocess.Popen([sys.executable, "-c", SENDER, redis_url, repr(start), repr(end)],
                         stdout=subprocess.PIPE, env=env, cwd=ROOT)
        for _ in range(2)
    ]
    sent = []
    for proc in procs:
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        sent.append(json.loads(out))
    assert all(sent), "each process got its share"
    total = sum(len(times) for times in sent)
    assert abs(total - 20 * 3.0) <= 0.1 * 20 * 3.0, total
    stamps = sorted(t for times in sent for t in times)
    # no burst beyond the bucket: any 1-second window holds about 20 sends
    worst = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps if s + 1.0 <= end)
    assert worst <= 22, worst
