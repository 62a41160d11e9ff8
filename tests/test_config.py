import os

import pytest

from microspider import Spider
from tests.crawl import ROOT
from microspider.config import resolve
from microspider.errors import ConfigError


class Hotel(Spider):
    name = "hotel"
    retry = 7
    pool = 30

    def parse(self, response, seed):
        return ()


def write(tmp_path, text):
    path = tmp_path / "microspider.cfg"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_when_nothing_is_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)       # no microspider.cfg here (the repository root has one)
    s = resolve({"config": None}, None, environ={})
    assert (s.retry, s.worker, s.max_age, s.relay_mode, s.pool, s.mongo_db) == (3, 1, 5, 0, 100, "microspiders")
    assert s.configured == frozenset()
    assert (s.parse_timeout, s.max_crashes, s.fetcher) == (60.0, 3, "curl")


def test_the_repository_config_sets_up_the_ctrip_example():
    s = resolve({"config": os.path.join(ROOT, "microspider.cfg")}, None, environ={})
    assert (s.timeout, s.pool, s.idle, s.relay_delay) == (1.5, 50, 2.0, 0.5)


def test_layering_defaults_cfg_spider_class_flags(tmp_path):
    cfg = write(tmp_path, "[microspider]\nretry = 1\npool = 10\nmax-age = 9\ntimeout = 4\n"
                          "[spider:hotel]\nmax_age = 2\nrelay_mode = 1\n")
    s = resolve({"config": cfg, "timeout": None, "relay_mode": "2"}, Hotel, environ={})
    assert s.retry == 7            # class attribute beats the file
    assert s.pool == 30
    assert s.max_age == 2          # [spider:hotel] beats [microspider]
    assert s.timeout == 4.0        # file, flag not typed
    assert s.relay_mode == 2       # flag beats everything
    assert {"retry", "pool", "max_age", "timeout", "relay_mode"} <= s.configured
    with pytest.raises(Exception):
        s.retry = 1  # frozen


def test_environment_configures_redis(tmp_path):
    s = resolve({"config": None}, None, environ={"MICROSPIDER_REDIS": "10.0.0.1:7000"})
    assert s.redis == "10.0.0.1:7000" and "redis" in s.configured


@pytest.mark.parametrize("text, message", [
    ("[microspider]\nretry = lots\n", "--retry"),
    ("[microspider]\nrelay_mode = 5\n", "--relay-mode"),
    ("[microspider]\nbogus = 1\n", "unknown option"),
    ("[other]\nretry = 1\n", "unknown section"),
    ("retry = 1\n", "malformed"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve({"config": write(tmp_path, text)}, None, environ={})
    assert "\n" not in str(info.value)


def test_missing_explicit_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve({"config": str(tmp_path / "nope.cfg")}, None, environ={})


def test_bad_spider_attribute_is_an_error():
    class Bad(Hotel):
        pool = 0

    with pytest.raises(ConfigError, match="--pool"):
        resolve({"config": None}, Bad, environ={})


@pytest.mark.parametrize("text", ["5x", "abc", "0s", "-3m", "nan"])
def test_a_bad_duration_says_what_a_duration_looks_like(text):
    with pytest.raises(ConfigError) as err:
        resolve({"every": text}, Spider)
    assert "a duration > 0 such as 90s" in str(err.value)
    assert "float" not in str(err.value)
