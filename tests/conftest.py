"""Shared fixtures: a private real redis-server per session, flushed per test."""
import pytest
import redis

from tests.servers import RedisServer


def pytest_configure(config):
    config.addinivalue_line("markers", "chaos: the long fault-injection suite (pytest -m chaos)")
    config.addinivalue_line("markers", "slow: longer integration tests")


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server):
    """URL of a flushed private Redis; flushed again after the test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()
    client.close()


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
