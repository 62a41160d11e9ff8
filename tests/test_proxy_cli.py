"""`microspider proxy add/remove/list/check` on a real Redis and real local proxies."""
import json

import pytest

from microspider.cli import main
from tests.proxyserver import ProxyServer
from tests.servers import Site


@pytest.fixture
def site():
    s = Site(lambda h, p, a: (200, {}, "ok")).start()
    yield s
    s.stop()


def test_add_list_remove(redis_url, r, capsys):
    assert main(["proxy", "add", "--redis", redis_url, "pool", "http://127.0.0.1:3128",
                 "http://u:pw@127.0.0.1:3129"]) == 0
    assert r.smembers("pool") == {b"http://127.0.0.1:3128", b"http://u:pw@127.0.0.1:3129"}
    capsys.readouterr()
    assert main(["proxy", "list", "--redis", redis_url, "pool", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["proxy"] for row in rows] == ["http://127.0.0.1:3128", "http://u:pw@127.0.0.1:3129"]
    assert all(row["ok"] == 0 and row["fail"] == 0 for row in rows)
    assert main(["proxy", "remove", "--redis", redis_url, "pool", "http://127.0.0.1:3128"]) == 0
    assert r.smembers("pool") == {b"http://u:pw@127.0.0.1:3129"}


def test_add_refuses_a_bad_url_and_adds_nothing(redis_url, r, capsys):
    assert main(["proxy", "add", "--redis", redis_url, "pool", "http://127.0.0.1:3128", "ftp://x"]) == 2
    assert r.scard("pool") == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "microspider: error:" in err


def test_check_prints_a_row_per_proxy(tmp_path, site, capsys):
    good, bad = ProxyServer("ok").start(), ProxyServer("garbage").start()
    try:
        (tmp_path / "p.txt").write_text("%s\n%s\n" % (good.url, bad.url))
        assert main(["proxy", "check", str(tmp_path / "p.txt"), "--url", site.url + "/x",
                     "--timeout", "3"]) == 0
    finally:
        good.stop()
        bad.stop()
    out = capsys.readouterr()
    lines = {l.split()[0]: l for l in out.out.splitlines()[1:]}
    assert lines[good.url].split()[1] == "yes" and lines[bad.url].split()[1] == "no"
    assert "1 of 2 proxies answered" in out.err
