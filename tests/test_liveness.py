"""Liveness and parse-timeout logic of the worker and the supervisor, on an injected clock (no processes)."""
import os

import gevent
import pytest

from microspider.config import Settings
from microspider.crawl.supervisor import Child, live_ids
from microspider.crawl.worker import Monitor, ParseInterrupt, Worker


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Proc:
    def __init__(self, code=None):
        self.code = code

    def poll(self):
        return self.code


def child(clock, code=None):
    c = Child.__new__(Child)          # no pipe, no reader: fed by hand
    c.proc, c.clock, c.last_sign, c.processing, c.hung, c._pending = Proc(code), clock, clock(), {}, False, b""
    return c


def test_child_names_the_seeds_in_parse_first_else_those_in_processing():
    clock = Clock()
    c = child(clock)
    for line in ("S aa", "S bb", "P bb", "S cc", "D aa"):
        c.heard(line)
    assert c.suspects() == ["bb"]
    c.heard("D bb")
    assert c.suspects() == ["cc"]
    c.heard("D cc")
    assert c.suspects() == []


def test_child_lines_split_across_reads_are_joined():
    c = child(Clock())
    c._take(b"S a")
    c._take(b"a\nP aa\nS b")
    assert c.processing == {"aa": "P"}
    c._take(b"b\n")
    assert c.processing == {"aa": "P", "bb": "S"}


def test_a_silent_or_dead_child_gets_no_heartbeat():
    clock = Clock()
    kids = {"talks": child(clock), "silent": child(clock), "dead": child(clock, code=-9)}
    clock.t += 20
    kids["talks"].heard("B")
    clock.t += 5
    assert live_ids(kids, limit=10) == ["talks"]
    clock.t += 6
    assert live_ids(kids, limit=10) == []


class FakeState:
    def __init__(self, *args):
        pass


@pytest.fixture
def worker(monkeypatch):
    monkeypatch.setattr("microspider.crawl.worker.SpiderState", FakeState)
    clock = Clock()
    spider = type("S", (), {"name": "s"})()
    w = Worker(spider, Settings(parse_timeout=5.0), None, None, "w1", fetcher=None, clock=clock)
    return w, clock


def test_parse_timeout_check_raises_only_in_an_overdue_parse(worker):
    w, clock = worker
    w.check_parse_timeout()                       # no parse running: nothing happens
    seen = []

    def parse():
        clock.t += 4
        w.check_parse_timeout()                   # 4 s in: fine
        seen.append("4s")
        clock.t += 2
        w.check_parse_timeout()                   # 6 s in: over --parse-timeout 5
        seen.append("6s")

    with pytest.raises(ParseInterrupt):
        w._timed(parse)
    assert seen == ["4s"] and w.parsing == {}
    w.check_parse_timeout()                       # the parse is over: nothing happens


def test_parse_timeout_ends_a_parse_that_yields(worker):
    w, _ = worker
    w.settings = Settings(parse_timeout=0.05)
    with pytest.raises(gevent.Timeout):
        w._timed(lambda: gevent.sleep(5))


def test_monitor_without_a_pipe_says_nothing():
    m = Monitor()
    m.start("aa"), m.parsing("aa"), m.done("aa"), m.beat()
    assert m.fd is None


def read_pipe(fd):
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    os.close(r)
    os.close(w)


def test_monitor_holds_a_done_line_until_the_next_start_and_says_both_in_one_write(pipe):
    r, w = pipe
    m = Monitor(w)
    m.start("aa")
    m.parsing("aa")
    assert read_pipe(r) == b"S aa\nP aa\n"
    m.done("aa")
    assert read_pipe(r) == b""                    # held: the greenlet takes its next seed at once
    m.start("bb")
    assert read_pipe(r) == b"D aa\nS bb\n"
    m.done("bb")
    m.flush()                                     # no next seed: said before waiting
    assert read_pipe(r) == b"D bb\n"
    m.flush()
    assert read_pipe(r) == b""


def test_the_supervisor_reads_the_joined_lines_as_it_read_single_ones(pipe):
    r, w = pipe
    m, c = Monitor(w), child(Clock())
    for say in (lambda: m.start("aa"), lambda: m.parsing("aa"), lambda: m.done("aa"),
                lambda: m.start("bb"), lambda: m.parsing("bb")):
        say()
        c._take(read_pipe(r))
    assert c.processing == {"bb": "P"} and c.suspects() == ["bb"]


def test_a_worker_flushes_the_monitor_before_it_waits_for_work(worker, pipe):
    w, _ = worker
    r, fd = pipe
    w.monitor = Monitor(fd)
    w.local.put(("raw", "seed"))
    w.monitor.done("aa")
    assert w._next_seed() == ("raw", "seed") and read_pipe(r) == b""   # a seed was there: still held
    waiter = gevent.spawn(w._next_seed)
    gevent.sleep(0)                                                     # it waits on the empty queue
    assert read_pipe(r) == b"D aa\n"
    waiter.kill()
