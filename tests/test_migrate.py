"""migrate: a lossless round trip between two environments, and refusal of bad files."""
import gzip
import json
import math
import os

import pytest
import redis

from microspider import Seed

from microspider.state import keys
from microspider.cli import main
from microspider.ops.migrate import FORMAT, decode, encode
from microspider.state import SpiderState
from microspider.state import Redis
from microspider.state.cache import Cache
from microspider.store import failure_doc, open_store

NAME = "hotel"
N = 10000


@pytest.fixture
def envs(redis_url, tmp_path, monkeypatch):
    """Two environments on the private Redis: source db 0 + store A, target db 1 + store B."""
    monkeypatch.chdir(tmp_path)
    source = ["--redis", redis_url, "--mongo-uri", "sqlite:///%s" % (tmp_path / "a.sqlite3")]
    target = ["--redis", redis_url + "/1", "--mongo-uri", "sqlite:///%s" % (tmp_path / "b.sqlite3")]
    src, dst = redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url + "/1")
    yield {"source": source, "target": target, "src": src, "dst": dst, "path": tmp_path,
           "a": str(tmp_path / "a.sqlite3"), "b": str(tmp_path / "b.sqlite3")}
    src.close()
    dst.close()


def ms(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def fill_source(envs):
    r = envs["src"]
    r.sadd(keys.SPIDERS, NAME)
    r.sadd(keys.upstream(NAME), "city")
    work = [Seed("http://a.com/%d" % n, meta={"n": n, "city": "北京"}).to_json() for n in range(N)]
    for start in range(0, N, 2000):
        r.rpush(keys.work(NAME), *work[start:start + 2000])
    r.rpush(keys.inflight(NAME, "dead-worker"), Seed("http://a.com/inflight").to_json())
    r.sadd(keys.cache(NAME), *[os.urandom(12) for _ in range(N)])
    r.zadd(keys.backlog(NAME), {Seed("http://a.com/b%d" % n, age=n % 7).to_json(): 1700000000.5 + n
                                for n in range(500)})
    r.zadd(keys.backlog(NAME), {Seed("http://a.com/parked", age=9).to_json(): math.inf})
    r.rpush(keys.quarantine(NAME), b"\xff\xfe not utf-8", b'{"url": "ftp://x"}')
    store = open_store("sqlite:///" + envs["a"], "microspiders", NAME)
    docs = []
    for n in range(30):
        doc = failure_doc(Seed("http://a.com/f%d" % n, method="POST", data={"q": n}), "KeyError",
                          "m%d" % n, "Traceback ...")
        doc.update(status=200, headers={"Content-Type": "text/html; charset=gbk"},
                   body=bytes(range(256)) * 4 + os.urandom(n), encoding="gbk")
        docs.append(doc)
    store.save_failures(docs, now=1700000000.25)
    store.save_items([{"_id": "h%d" % n, "name": "酒店 %d" % n, "years": [1999, 2010],
                       "odd": {"$bytes": "not really"}, "none": None, "f": 0.1 * n} for n in range(200)])
    store.close()


def snapshot(r, store_path):
    """Everything a spider has, as comparable values."""
    store = open_store("sqlite:///" + store_path, "microspiders", NAME)
    try:
        return {
            "upstream": r.smembers(keys.upstream(NAME)),
            "work": r.lrange(keys.work(NAME), 0, -1),
            "cache": {k for k, _ in Cache(r, NAME).entries()},
            "backlog": r.zrange(keys.backlog(NAME), 0, -1, withscores=True),
            "quarantine": r.lrange(keys.quarantine(NAME), 0, -1),
            "failures": sorted(store.iter_failures(), key=lambda d: d["_id"]),
            "items": sorted(store.iter_items(), key=lambda d: d["_id"]),
            "spiders": r.smembers(keys.SPIDERS),
        }
    finally:
        store.close()


def test_round_trip_is_lossless_with_binary_bodies_and_10000_seeds(envs, capsys):
    fill_source(envs)
    before = snapshot(envs["src"], envs["a"])
    path = str(envs["path"] / "hotel.msm.gz")
    code, _, err = ms(capsys, "migrate", "-m", "output", "-f", path, *envs["source"], NAME)
    assert code == 0, err
    assert "cache %d, work %d, backlog 501, quarantine 2, failures 30, items 200" % (N, N + 1) in err
    code, _, err = ms(capsys, "migrate", "-m", "input", "-f", path, *envs["target"])
    assert code == 0, err
    after = snapshot(envs["dst"], envs["b"])
    # in-flight seeds of the dead worker come back as work, after the work queue
    assert after["work"] == before["work"] + [Seed("http://a.com/inflight").to_json().encode()]
    for part in ("upstream", "cache", "backlog", "quarantine", "failures", "items"):
        assert after[part] == before[part], part
    assert after["backlog"][-1][1] == math.inf
    assert after["failures"][0]["body"][:256] == bytes(range(256))
    assert after["spiders"] == {NAME.encode(), b"city"}
    assert snapshot(envs["src"], envs["a"]) == before   # output leaves the source as it was

    # loading again is additive and idempotent where it can be
    code, _, err = ms(capsys, "migrate", "-m", "input", "-f", path, *envs["target"], NAME)
    assert code == 0, err
    again = snapshot(envs["dst"], envs["b"])
    assert len(again["work"]) == 2 * len(after["work"])
    assert {k: again[k] for k in ("cache", "backlog", "failures", "items")} == \
        {k: after[k] for k in ("cache", "backlog", "failures", "items")}


def test_output_never_overwrites_and_refuses_a_running_crawl(envs, capsys, redis_url):
    envs["src"].sadd(keys.SPIDERS, NAME)
    path = envs["path"] / "x.gz"
    path.write_bytes(b"precious")
    code, _, err = ms(capsys, "migrate", "-m", "output", "-f", str(path), *envs["source"], NAME)
    assert code == 2 and "exists" in err and path.read_bytes() == b"precious"
    SpiderState(Redis(redis_url), NAME).register_worker("w1")
    code, _, err = ms(capsys, "migrate", "-m", "output", "-f", str(envs["path"] / "y.gz"),
                      *envs["source"], NAME)
    assert code == 2 and "live workers" in err and not os.path.exists(envs["path"] / "y.gz")


def good_file(envs, capsys):
    fill_source(envs)
    path = str(envs["path"] / "good.gz")
    assert ms(capsys, "migrate", "-m", "output", "-f", path, *envs["source"], NAME)[0] == 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return path, f.read().splitlines()


def regzip(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return str(path)


def test_truncated_corrupted_or_foreign_files_are_refused_before_anything_is_written(envs, capsys):
    path, lines = good_file(envs, capsys)
    raw = open(path, "rb").read()
    p = envs["path"]
    header = json.loads(lines[0])
    bad = {
        "cut gzip": (p / "cut.gz", raw[:len(raw) // 2]),
        "flipped byte": (p / "flip.gz", raw[:len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0xFF])
                         + raw[len(raw) // 2 + 1:]),
        "plain text": (p / "foreign.txt", b"url\nhttp://a.com/\n"),
        "empty": (p / "empty.gz", b""),
    }
    cases = {name: str(f) for name, (f, data) in bad.items() if f.write_bytes(data) is not None}
    cases["no end record"] = regzip(p / "noend.gz", lines[:-1])
    cases["lines lost"] = regzip(p / "lost.gz", lines[:3] + lines[4:])
    cases["foreign json"] = regzip(p / "other.gz", ['{"format": "something-else"}'] + lines[1:])
    cases["newer version"] = regzip(p / "v3.gz", [json.dumps(dict(header, version=3))] + lines[1:])
    cases["bad entry"] = regzip(p / "entry.gz", lines[:-2] + [
        lines[-2].replace('"data":[', '"data":[{"$bytes":"!!"},', 1)] + lines[-1:])
    for case, bad_path in cases.items():
        code, out, err = ms(capsys, "migrate", "-m", "input", "-f", bad_path, *envs["target"])
        assert code == 2, case
        assert err.startswith("microspider: error: ") and err.count("\n") == 1, (case, err)
        assert envs["dst"].dbsize() == 0, case
        assert not os.path.exists(envs["b"]), case
    assert "truncated" in ms(capsys, "migrate", "-m", "input", "-f", cases["no end record"],
                             *envs["target"])[2]
    assert "not a microspider migrate file" in ms(capsys, "migrate", "-m", "input", "-f",
                                                  cases["plain text"], *envs["target"])[2]


def test_input_checks_the_spider_name(envs, capsys):
    path, _ = good_file(envs, capsys)
    code, _, err = ms(capsys, "migrate", "-m", "input", "-f", path, *envs["target"], "other")
    assert code == 2 and "holds spider hotel, not other" in err and envs["dst"].dbsize() == 0


def test_encoding_tags_bytes_and_escapes_lookalikes():
    doc = {"body": b"\x00\xff", "x": {"$bytes": "abc"}, "y": {"$esc": 1}, "z": [b"", {"a": 1.5}]}
    line = json.dumps(encode(doc))
    assert decode(json.loads(line)) == doc
    assert FORMAT == "microspider-migrate"
