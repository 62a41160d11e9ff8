"""Shared fixtures: a private real redis-server per session, flushed per test."""
import shutil
import ssl
import subprocess

import pytest
import redis

from tests.servers import RedisServer, Site


def pytest_configure(config):
    config.addinivalue_line("markers", "chaos: the long fault-injection suite (pytest -m chaos)")
    config.addinivalue_line("markers", "slow: longer integration tests")
    config.addinivalue_line("markers", "cluster: on a real Redis Cluster, failovers included (pytest -m cluster)")


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


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    assert shutil.which("openssl"), "the https tests need openssl to make a certificate"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    both = folder / "both.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    return str(both)


@pytest.fixture(scope="session")
def tls_site(certificate):
    site = Site(lambda handler, path, attempt: (200, {}, "secret page " + path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)
    site.server.socket = context.wrap_socket(site.server.socket, server_side=True)
    yield site.start()
    site.stop()


# the render engines: the render contract tests run on each (as the fetcher tests on every transport)
RENDER_ENGINES = ("chromium", "lightpanda")


def engine_installed(engine):
    """Lightpanda comes with the lightpanda wheel (the test extra installs it); Chromium is required."""
    if engine == "lightpanda":
        try:
            from microspider.render.lightpanda import find_lightpanda

            find_lightpanda()
        except Exception:
            return False
    return True


# for a contract test whose Lightpanda case repeats one of tests/test_render_engines.py (or is
# long): Chromium in the default run, Lightpanda with -m slow (docs/testing.md)
LIGHTPANDA_SLOW = pytest.mark.parametrize(
    "engine", ["chromium", pytest.param("lightpanda", marks=pytest.mark.slow)], indirect=True)


@pytest.fixture(scope="module", params=RENDER_ENGINES)
def engine(request):
    """Each render engine in turn; Lightpanda is skipped only when its wheel is absent."""
    if not engine_installed(request.param):
        pytest.skip("the lightpanda wheel is not installed (pip install microspider[lightpanda])")
    return request.param
