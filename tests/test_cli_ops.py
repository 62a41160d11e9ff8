"""The operations commands through the real CLI: a private Redis, the embedded SQLite store."""
import io
import json
import math
import os
import subprocess
import sys
import textwrap
import time

import pytest

from microspider import Seed

from microspider.state import keys
from microspider.cli import main
from microspider.ops.stats import STAT_KEYS, watch
from microspider.state import SpiderState
from microspider.state.cache import Cache
from microspider.store import failure_doc, open_store

NAME = "shop"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def env(redis_url, tmp_path, monkeypatch):
    """Connection flags for one test; the cwd is a fresh folder (no microspider.cfg)."""
    monkeypatch.chdir(tmp_path)
    store_uri = "sqlite:///%s" % (tmp_path / "store.sqlite3")
    return {"flags": ["--redis", redis_url, "--mongo-uri", store_uri], "store": store_uri,
            "path": tmp_path}


@pytest.fixture
def ms(env, capsys):
    """ms(command, *args) -> (exit status, stdout, stderr) of `microspider command ... flags`."""
    def run(command, *args):
        code = main([command] + env["flags"] + list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def store_of(env, name=NAME):
    return open_store(env["store"], "microspiders", name)


def register(r, name=NAME):
    r.sadd(keys.SPIDERS, name)


def aged(url, age, **fields):
    return Seed(url, age=age, **fields).to_json()


def failure(seed, error="ValueError", body=b"<html><title>t</title></html>", status=200):
    doc = failure_doc(seed, error, "boom", "Traceback ...")
    doc.update(status=status, headers={"Content-Type": "text/html"}, body=body, encoding="utf-8")
    return doc


def subprocess_cli(args, cwd, **kwargs):
    return subprocess.run([sys.executable, "-m", "microspider"] + args, cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO), **kwargs)


# -- help and errors --------------------------------------------------------------
@pytest.mark.parametrize("command", ["gen", "push", "relay", "parse", "retry", "dump", "clear",
                                     "migrate", "stat", "export"])
def test_every_command_has_help_with_defaults(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: microspider %s" % command)
    if command != "gen":
        assert "--redis" in out and "--mongo-uri" in out and "[default:" in out


def test_unknown_spider_is_one_line_exit_2(ms):
    code, out, err = ms("dump", "nosuchspider")
    assert code == 2 and out == ""
    assert err.startswith("microspider: error: ") and err.count("\n") == 1


# -- push -------------------------------------------------------------------------
def test_push_reports_bad_lines_with_numbers_and_pushes_nothing(ms, env, r):
    register(r)
    seeds = env["path"] / "seeds.jsonl"
    seeds.write_text('{"url": "http://a.com/1"}\nnot json\n\n{"url": "ftp://a.com/"}\n{"meta": {}}\n')
    code, _, err = ms("push", NAME, "--file", str(seeds))
    assert code == 2 and "line 2" in err and "line 4" in err and "line 5" in err
    assert r.llen(keys.work(NAME)) == 0


def test_push_stdin_skips_cached_unless_forced(ms, r, monkeypatch):
    register(r)
    r.sadd(keys.cache(NAME), Seed("http://a.com/1").cache_key)
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"url": "http://a.com/1"}\n'
                                                  '{"url": "http://a.com/2", "meta": {"k": 1}}\n'))
    code, _, err = ms("push", NAME, "--file", "-")
    assert code == 0 and "1 seeds pushed, 1 already known" in err
    assert [Seed.from_json(x).meta for x in r.lrange(keys.work(NAME), 0, -1)] == [{"k": 1}]
    code, _, err = ms("push", NAME, "--force", "http://a.com/1")
    assert code == 0 and r.llen(keys.work(NAME)) == 2


# -- stat -------------------------------------------------------------------------
def test_stat_json_has_exactly_the_spec_keys(ms, env, r):
    register(r)
    r.rpush(keys.work(NAME), aged("http://a.com/1", 0))
    now = time.time()
    r.zadd(keys.backlog(NAME), {aged("http://a.com/2", 1): now - 5, aged("http://a.com/3", 2): now + 500,
                                aged("http://a.com/4", 9): math.inf})
    store = store_of(env)
    store.save_failures([failure(Seed("http://a.com/5"), "KeyError")])
    store.save_items([{"_id": "x"}])
    code, out, _ = ms("stat", "--json", NAME)
    s = json.loads(out)
    assert code == 0 and tuple(sorted(s)) == tuple(sorted(STAT_KEYS))
    assert (s["work"], s["backlog"], s["backlog_due"], s["backlog_waiting"], s["backlog_over_age"]) \
        == (1, 3, 1, 1, 1)
    assert s["failures"] == 1 and s["failures_by_error"] == {"KeyError": 1} and s["items"] == 1
    register(r, "other")
    code, out, _ = ms("stat", "--json")
    every = json.loads(out)
    assert sorted(every) == ["other", NAME] and set(every["other"]) == set(STAT_KEYS)


def test_stat_watch_refreshes_and_takes_a_spider_after_the_flag(ms, r):
    register(r)
    code, out, _ = ms("stat", "--count", "1", "--watch", NAME)   # NAME is not seconds: the spider
    assert code == 0 and "Ctrl-C ends" in out and "work 0" in out
    code, out, _ = ms("stat", NAME, "--json", "--watch", "0.001", "--count", "2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and all(set(json.loads(x)) == set(STAT_KEYS) for x in lines)


def test_watch_redraws_on_a_terminal_and_ends_on_ctrl_c():
    out, pauses, renders = io.StringIO(), [], iter(["one", "two", "three"])

    def sleep(seconds):
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt

    assert watch(lambda: next(renders), 3, out, tty=True, sleep=sleep) == 2
    assert out.getvalue().count("\033[2J") == 2 and "two" in out.getvalue() and pauses == [3, 3]


# -- relay ------------------------------------------------------------------------
def test_relay_moves_every_seed_within_max_age_now_and_parks_the_rest(ms, r):
    register(r)
    now = time.time()
    r.zadd(keys.backlog(NAME), {aged("http://a.com/due", 1): now - 1,
                                aged("http://a.com/waiting", 3): now + 3600,
                                aged("http://a.com/old", 4): now - 1,       # over -m 3
                                aged("http://a.com/parked", 9): math.inf})
    code, _, err = ms("relay", "-m", "3", NAME)
    assert code == 0 and "2 seeds moved" in err and "2 stayed" in err
    moved = sorted(Seed.from_json(x).url for x in r.lrange(keys.work(NAME), 0, -1))
    assert moved == ["http://a.com/due", "http://a.com/waiting"]
    assert r.zrangebyscore(keys.backlog(NAME), "inf", "inf") == [aged("http://a.com/old", 4).encode(),
                                                                  aged("http://a.com/parked", 9).encode()]
    code, _, err = ms("relay", "-r", NAME)
    assert code == 0 and "2 seeds moved" in err and r.zcard(keys.backlog(NAME)) == 0
    assert [Seed.from_json(x).age for x in r.lrange(keys.work(NAME), 2, -1)] == [0, 0]


def test_relay_moves_thousands_of_parked_seeds_once_max_age_allows(ms, r):
    register(r)
    r.zadd(keys.backlog(NAME), {aged("http://a.com/%d" % n, 6): math.inf for n in range(5000)})
    code, _, err = ms("relay", "--max-age", "6", NAME)
    assert code == 0 and "5000 seeds moved" in err and r.llen(keys.work(NAME)) == 5000


# -- parse ------------------------------------------------------------------------
SPIDER = '''
from microspider import Seed, Spider


class ShopSpider(Spider):
    name = "shop"

    def parse(self, response, seed):
        price = response.soup.select_one("span.price")
        {fix}
        self.send(Seed("http://a.com/detail/" + price.text), to="detail")
        yield {{"_id": seed.url, "price": int(price.text)}}
'''


def write_spider(path, fix):
    path.write_text(textwrap.dedent(SPIDER.format(fix=fix)))
    return str(path)


def test_parse_replays_stored_failures_after_the_spider_is_fixed(ms, env, r):
    spider = write_spider(env["path"] / "shop.py", 'raise ValueError("layout changed")')
    store = store_of(env)
    good = Seed("http://a.com/p1", meta={"n": 1})
    bad = Seed("http://a.com/p2")
    store.save_failures([failure(good, body=b"<html><span class='price'>42</span></html>"),
                         failure(bad, body=b"<html>captcha</html>")])
    r.zadd(keys.backlog(NAME), {good.replace(age=1).to_json(): math.inf,
                                bad.replace(age=1).to_json(): math.inf,
                                aged("http://a.com/other", 1): math.inf})
    code, _, err = ms("parse", spider)
    assert code == 0 and "fixed 0" in err and "still failing 2 (ValueError 2)" in err
    assert {d["attempts"] for d in store.iter_failures()} == {2}

    write_spider(env["path"] / "shop.py", "# fixed: the price span is back")
    code, _, err = ms("parse", spider)
    assert code == 0 and "re-parsed 2: fixed 1" in err and "still failing 1 (AttributeError 1)" in err
    assert [d["url"] for d in store.iter_failures()] == ["http://a.com/p2"]
    assert next(store.iter_failures())["attempts"] == 3
    assert list(store.iter_items()) == [{"_id": "http://a.com/p1", "price": 42}]
    assert Cache(r, NAME).contains([good.cache_key, bad.cache_key]) == [True, False]
    assert [Seed.from_json(x).url for x in r.lrange(keys.work("detail"), 0, -1)] == [
        "http://a.com/detail/42"]
    assert r.smembers(keys.upstream("detail")) == {NAME.encode()}
    left = sorted(Seed.from_json(x).url for x in r.zrange(keys.backlog(NAME), 0, -1))
    assert left == ["http://a.com/other", "http://a.com/p2"]


def test_parse_num_and_no_cache(ms, env, r):
    spider = write_spider(env["path"] / "shop.py", "")
    store = store_of(env)
    for n, at in ((1, 10.0), (2, 20.0)):
        store.save_failures([failure(Seed("http://a.com/%d" % n),
                                     body=b"<span class='price'>%d</span>" % n)], now=at)
    code, _, err = ms("parse", "-n", "1", "--no-cache", spider)
    assert code == 0 and "re-parsed 1: fixed 1" in err
    assert [d["url"] for d in store.iter_failures()] == ["http://a.com/2"]   # oldest went first
    assert Cache(r, NAME).size() == 0
    assert ms("parse", "-n", "0", spider)[0] == 2


def test_parse_needs_the_spider_code(ms, r):
    register(r, "catalog")   # known to Redis by name, but there is no code to parse with
    code, _, err = ms("parse", "catalog")
    assert code == 2 and err.startswith("microspider: error: no spider module catalog")


# -- retry ------------------------------------------------------------------------
def test_retry_sends_failed_seeds_to_work_ignoring_the_cache(ms, env, r):
    register(r)
    store = store_of(env)
    seeds = [Seed("http://a.com/%d" % n, age=3) for n in range(3)]
    for n, seed in enumerate(seeds):
        store.save_failures([failure(seed)], now=10.0 + n)   # -n takes the oldest first
    r.sadd(keys.cache(NAME), seeds[0].cache_key)
    r.zadd(keys.backlog(NAME), {s.replace(age=4).to_json(): math.inf for s in seeds[:2]})
    code, _, err = ms("retry", "-n", "2", NAME)
    assert code == 0 and "2 seeds sent" in err and "2 taken out of the backlog" in err
    work = [Seed.from_json(x) for x in r.lrange(keys.work(NAME), 0, -1)]
    assert len(work) == 2 and {s.age for s in work} == {0}
    assert Cache(r, NAME).size() == 0 and r.zcard(keys.backlog(NAME)) == 0
    assert store.count_failures() == 3   # records stay until the seeds succeed


# -- dump -------------------------------------------------------------------------
def test_dump_fields_json_and_queue_selectors(ms, r):
    register(r)
    r.rpush(keys.work(NAME), Seed("http://a.com/1", meta={"city": "bj", "tags": [1]}).to_json(),
            Seed("http://a.com/2", method="POST", data={"q": "x"}).to_json())
    r.zadd(keys.backlog(NAME), {aged("http://a.com/3", 2): 5.0})
    r.rpush(keys.quarantine(NAME), b"\xffnot a seed")
    code, out, _ = ms("dump", NAME)
    assert code == 0 and out.splitlines() == ["http://a.com/1", "http://a.com/2", "http://a.com/3"]
    code, out, _ = ms("dump", "-o", "-f", "url", "-f", "meta.city", "-f", "method", "-f", "meta.tags", NAME)
    assert out.splitlines() == ["http://a.com/1 bj GET [1]", "http://a.com/2 - POST -"]
    code, out, _ = ms("dump", "-b", "-f", "age", NAME)
    assert out == "2\n"
    code, out, _ = ms("dump", "-b", "--json", NAME)
    assert json.loads(out) == json.loads(aged("http://a.com/3", 2))
    code, out, _ = ms("dump", "-q", NAME)
    assert out == "\ufffdnot a seed\n"
    code, out, _ = ms("dump", "-n", "1", NAME)
    assert out == "http://a.com/1\n"


def test_dump_and_clear_take_long_db_options(ms, env, redis_url, r):
    import redis

    other = redis.Redis.from_url(redis_url, db=3)
    register(r)
    other.rpush(keys.work(NAME), aged("http://a.com/db3", 0))
    code, out, _ = ms("dump", "--work-queue", "3", "-o", NAME)
    assert code == 0 and out == "http://a.com/db3\n"
    code, _, _ = ms("clear", "-y", "-o", "--work-queue", "3", NAME)
    assert code == 0 and other.llen(keys.work(NAME)) == 0
    assert not (env["path"] / "store.sqlite3").exists()   # clearing a queue leaves the store alone
    other.close()


def test_dump_streams_a_large_queue_in_bounded_memory(env, r):
    """200,000 seeds (~50 MB) go through a dump process whose peak RSS hardly grows."""
    register(r)
    pad = "x" * 200
    pipe = r.pipeline(transaction=False)
    for start in range(0, 200000, 10000):
        pipe.rpush(keys.work(NAME), *['{"v":1,"url":"http://a.com/%d","meta":{"pad":"%s"}}' % (n, pad)
                                      for n in range(start, start + 10000)])
    pipe.execute()
    data = sum(len(x) for x in r.lrange(keys.work(NAME), 0, 999)) * 200
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking pytest process
    probe = ("import sys\nfrom microspider.__main__ import main\nsys.argv = ['microspider'] + sys.argv[1:]\n"
             "try:\n    main()\nfinally:\n    hwm = [l for l in open('/proc/self/status') if "
             "l.startswith('VmHWM')][0]\n    sys.stderr.write('MAXRSS %s\\n' % hwm.split()[1])\n")

    def peak_kb(name):
        with open(env["path"] / "out.txt", "w") as out:
            proc = subprocess.run([sys.executable, "-c", probe, "dump", "-o"] + env["flags"]
                                  + [name], stdout=out, stderr=subprocess.PIPE, text=True,
                                  cwd=env["path"], timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
        assert proc.returncode == 0, proc.stderr
        return int(proc.stderr.rsplit("MAXRSS ", 1)[1])

    register(r, "empty")
    base = peak_kb("empty")
    full = peak_kb(NAME)
    with open(env["path"] / "out.txt") as f:
        assert sum(1 for _ in f) == 200000
    assert data > 40e6
    assert (full - base) * 1024 < data / 5, "dump grew by %d kB for %d bytes of seeds" % (full - base, data)


# -- clear ------------------------------------------------------------------------
def fill(r, env):
    register(r)
    r.rpush(keys.work(NAME), aged("http://a.com/1", 0))
    r.zadd(keys.backlog(NAME), {aged("http://a.com/2", 1): 1.0})
    r.sadd(keys.cache(NAME), b"123456789012")
    r.rpush(keys.quarantine(NAME), b"junk")
    store = store_of(env)
    store.save_failures([failure(Seed("http://a.com/3"))])
    store.save_items([{"_id": "i"}])
    return store


def test_clear_without_yes_on_a_non_terminal_refuses_and_removes_nothing(env, r):
    fill(r, env)
    proc = subprocess_cli(["clear", "-o", "-c"] + env["flags"] + [NAME], env["path"],
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("microspider: error: clear asks for confirmation")
    assert r.llen(keys.work(NAME)) == 1 and Cache(r, NAME).size() == 1


def test_clear_removes_what_is_picked_and_says_how_much(ms, env, r):
    store = fill(r, env)
    code, _, err = ms("clear", NAME)
    assert code == 2 and "say what to clear" in err
    code, _, err = ms("clear", "-y", "-o", "-m", "-i", NAME)
    assert code == 0 and "removed failures 1, items 1, work 1" in err
    assert r.llen(keys.work(NAME)) == 0 and store.count_failures() == store.count_items() == 0
    assert r.zcard(keys.backlog(NAME)) == 1 and Cache(r, NAME).size() == 1
    code, _, err = ms("clear", "-y", "-c", "-b", "-q", NAME)
    assert code == 0 and "cache 1, backlog 1, quarantine 1" in err


def test_clear_all_refuses_live_workers_then_forgets_the_spider(ms, env, redis_url, r):
    from microspider.state import Redis

    fill(r, env)
    register(r, "downstream")
    r.sadd(keys.upstream("downstream"), NAME, "city")
    queues = SpiderState(Redis(redis_url), NAME)
    queues.register_worker("w1")
    queues.take("w1", 1)
    code, _, err = ms("clear", "-y", "--all", NAME)
    assert code == 2 and "1 live workers" in err
    queues.heartbeat(["w1"], now=time.time() - 3600)   # the worker died long ago
    code, _, err = ms("clear", "-y", "--all", NAME)
    assert code == 0 and "other keys" in err
    assert [k for k in r.keys("*") if NAME.encode() in k] == []
    assert r.smembers(keys.upstream("downstream")) == {b"city"}


# -- export -----------------------------------------------------------------------
def test_export_jsonl_and_csv(ms, env, r):
    register(r)
    store_of(env).save_items([{"_id": "a", "price": 1, "tags": ["x"]}, {"_id": "b", "name": "n"}])
    code, out, err = ms("export", NAME)
    assert code == 0 and [json.loads(x)["_id"] for x in out.splitlines()] == ["a", "b"]
    code, _, err = ms("export", "-o", "items.csv", NAME)
    assert code == 0 and "2 items exported" in err
    assert (env["path"] / "items.csv").read_text().splitlines() == [
        "_id,price,tags,name", 'a,1,"[""x""]",', "b,,,n"]
