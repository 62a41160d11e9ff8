"""`microspider try` through the real CLI: a local site, a private real Redis, the embedded store."""
import json
import os
import textwrap

import pytest

from microspider import Seed
from microspider.cli import main
from microspider.store import failure_doc, open_store
from tests.servers import Site

SPIDER = textwrap.dedent('''
    from urllib.parse import urljoin, urlsplit

    from microspider import Seed, Spider


    class ShopSpider(Spider):
        name = "shop"
        headers = {"X-Shop": "yes"}
        retry = 5   # a run's retries; try makes one request unless --retry asks

        def parse(self, response, seed):
            path = urlsplit(response.url).path
            if path == "/list":
                for a in response.soup.select("a.item"):
                    self.send(Seed(urljoin(response.url, a["href"]), meta={"from": "list"}),
                              to="shop_item")
                yield Seed(urljoin(response.url, "/list?page=2"))
            elif path.startswith("/item/"):
                yield {"_id": path, "title": response.soup.title.string}
            elif path == "/spin":
                while True:
                    pass
            else:
                raise LookupError("not a shop page: " + path)
''')

PAGES = {
    "/list": '<a class="item" href="/item/1">1</a> <a class="item" href="/item/2">2</a>',
    "/item/1": "<html><head><title>Teapot</title></head></html>",
    "/spin": "<p>a page parse never finishes</p>",
    "/other": "<p>not ours</p>",
}


def route(handler, path, attempt):
    if handler.headers.get("X-Shop") != "yes":
        return 400, {}, "the spider's headers were not sent"
    if path == "/down":
        return 503, {}, "try later"
    if path == "/moved":
        return 302, {"Location": "/item/1"}, ""
    return (200, {}, PAGES[path]) if path in PAGES else (404, {}, "no such page")


@pytest.fixture(scope="module")
def site():
    server = Site(route).start()
    yield server
    server.stop()


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A fresh cwd holding shop.py and nothing else."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shop.py").write_text(SPIDER)
    return tmp_path


@pytest.fixture
def ms(folder, capsys):
    """ms(*args) -> (exit status, stdout, stderr) of `microspider try ...`."""
    def run(*args):
        code = main(["try"] + list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_list_page_shows_seeds_with_their_spider(ms, site):
    code, out, err = ms("shop.py", site.url + "/list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "status 200  %s/list" % site.url
    sent = [line.split("  ", 2)[1:] for line in lines if line.startswith("seed")]
    assert [to for to, _ in sent] == ["-> shop_item", "-> shop_item", "-> shop"]
    assert [json.loads(raw)["url"] for _, raw in sent] == [
        site.url + "/item/1", site.url + "/item/2", site.url + "/list?page=2"]
    assert json.loads(sent[0][1])["meta"] == {"from": "list"}
    assert "0 items and 3 seeds" in err


def test_item_page_shows_item_after_redirect(ms, site):
    code, out, _ = ms("shop.py", site.url + "/moved")
    assert code == 0
    assert out.splitlines() == ["status 200  %s/item/1" % site.url,
                                'item  {"_id": "/item/1", "title": "Teapot"}']


def test_parse_that_raises_exits_1_with_traceback(ms, site):
    code, out, err = ms("shop.py", site.url + "/other")
    assert code == 1
    assert out.splitlines() == ["status 200  %s/other" % site.url]
    assert "Traceback (most recent call last)" in err and 'raise LookupError("not a shop page: "' in err
    assert err.rstrip().splitlines()[-1] == "microspider: LookupError: not a shop page: /other"


def test_json_object(ms, site):
    code, out, _ = ms("shop.py", site.url + "/list", "--json")
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"status", "url", "items", "seeds", "error"}
    assert result["status"] == 200 and result["url"] == site.url + "/list"
    assert result["items"] == [] and result["error"] is None
    assert result["seeds"][0] == {"to": "shop_item", "seed": Seed(site.url + "/item/1",
                                                                  meta={"from": "list"}).to_dict()}
    code, out, _ = ms("shop.py", site.url + "/other", "--json")
    assert code == 1
    assert json.loads(out)["error"] == {"type": "LookupError", "message": "not a shop page: /other"}


def test_one_request_unless_retry_asks(ms, site):
    before = site.count("/down")
    code, out, _ = ms("shop.py", site.url + "/down", "--json")
    assert code == 1 and site.count("/down") == before + 1
    error = json.loads(out)["error"]
    assert error["type"] == "FetchError" and "HTTP 503" in error["message"]
    code, _, _ = ms("shop.py", site.url + "/down", "--retry", "2")
    assert code == 1 and site.count("/down") == before + 4


def test_a_user_agent_of_another_browser_is_warned_of_as_run_does(ms, site, folder):
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    (folder / "fox.py").write_text(SPIDER.replace('name = "shop"', 'name = "shop"\n'
                                                  '    impersonate = "chrome"\n'
                                                  '    user_agents = [%r]' % firefox))
    code, out, err = ms("fox.py", site.url + "/item/1", "--json")
    assert code == 0 and json.loads(out)["items"] == [{"_id": "/item/1", "title": "Teapot"}]
    assert "shop: User-Agent %r is not a chrome" % firefox in err
    code, _, err = ms("shop.py", site.url + "/item/1", "--impersonate", "chrome")
    assert code == 0 and "is not a chrome" not in err


def test_parse_timeout_ends_a_parse_that_never_yields(ms, site):
    code, out, _ = ms("shop.py", site.url + "/spin", "--parse-timeout", "0.5", "--json")
    assert code == 1
    assert json.loads(out)["error"]["type"] == "ParseTimeout"


@pytest.mark.parametrize("args, says", [
    (["missing.py", "http://127.0.0.1:1/"], "spider file not found: missing.py"),
    (["shop.py", "ftp://example.com/x"], "ftp://example.com/x"),
    (["shop.py", "not a url"], "not a url"),
    (["shop.py", "http://[::1"], "http://[::1"),   # urlsplit raises on the open bracket
    (["shop.py"], "give either a URL or --failure ID"),
])
def test_bad_input_is_one_line_exit_2(ms, args, says):
    code, out, err = ms(*args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and says in err and err.startswith("microspider: error:")


def test_nothing_written_to_redis_or_files(ms, site, folder, r, redis_url):
    r.set("microspider:{other}:work", "kept")
    keys_before, files_before = sorted(r.keys("*")), sorted(os.listdir(folder))
    store = folder / "elsewhere.sqlite3"
    for url in ("/list", "/item/1", "/other", "/down"):
        ms("shop.py", site.url + url, "--redis", redis_url, "--mongo-uri", "sqlite:///%s" % store)
    ms("shop.py", site.url + "/list")   # no connection options at all: no embedded Redis either
    assert sorted(r.keys("*")) == keys_before and r.dbsize() == 1
    assert sorted(os.listdir(folder)) == files_before == ["shop.py"]


def stored_failure(folder, path, status=200, body=b"<html><head><title>Kettle</title></head></html>"):
    """A failure of `path` in the embedded store of `folder` (as a run would leave it); its ID."""
    seed = Seed("http://127.0.0.1:9/" + path.lstrip("/"))
    doc = failure_doc(seed, "KeyError", "title", "Traceback ...")
    doc.update(status=status, headers={"Content-Type": "text/html; charset=utf-8"}, body=body,
               encoding="utf-8")
    store = open_store("sqlite:///%s" % (folder / ".microspider" / "store.sqlite3"), "microspiders", "shop")
    store.save_failures([doc])
    store.close()
    return seed.fingerprint


def test_failures_says_when_there_are_none(folder, capsys):
    store = "sqlite:///%s" % (folder / "empty.sqlite3")
    assert main(["failures", "shop.py", "--mongo-uri", store]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.strip().splitlines()[-1] == "microspider: shop: no stored failures"


def test_failure_id_parses_the_stored_response(ms, folder, capsys):
    fid = stored_failure(folder, "/item/7")
    assert main(["failures", "shop.py", "--mongo-uri",
                 "sqlite:///%s" % (folder / ".microspider" / "store.sqlite3")]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith(fid + "  KeyError  200  x1  http://127.0.0.1:9/item/7")
    code, out, err = ms("shop.py", "--failure", fid)   # the embedded store, read where it is
    assert code == 0, err
    assert out.splitlines()[1] == 'item  {"_id": "/item/7", "title": "Kettle"}'
    assert not [f for f in os.listdir(folder / ".microspider") if f.startswith("redis")]  # none started
    assert open_store("sqlite:///%s" % (folder / ".microspider" / "store.sqlite3"), "microspiders",
                      "shop").count_failures() == 1   # still stored: try fixes nothing


def test_unknown_failure_id_is_exit_2(ms, folder):
    code, _, err = ms("shop.py", "--failure", "nope")   # (after the line saying which store)
    assert code == 2 and err.strip().splitlines()[-1].startswith("microspider: error: no stored")
    assert "there is no store" in err
    assert not (folder / ".microspider").exists()
    stored_failure(folder, "/item/7")
    code, _, err = ms("shop.py", "--failure", "nope")
    assert code == 2 and err.strip().splitlines()[-1].endswith(
        "no stored failure nope for shop; `microspider failures shop` lists them")


RENDERED_SPIDER = textwrap.dedent('''
    from microspider import Spider


    class Rendered(Spider):
        name = "rendered_shop"
        render_wait = "h1.name"   # the data comes by XHR after the load event

        def parse(self, response, seed):
            yield {"_id": seed.url, "name": response.soup.select_one("h1.name").text}
''')


def test_render_fetches_the_page_in_a_browser(ms, folder):
    from tests.render_site import shop_site

    (folder / "rendered.py").write_text(RENDERED_SPIDER)
    site = shop_site()
    try:
        code, out, _ = ms("rendered.py", site.url + "/item/3", "--json")   # no script ran: no h1
        assert code == 1 and json.loads(out)["error"]["type"] == "AttributeError"
        code, out, err = ms("rendered.py", site.url + "/item/3", "--render", "--json")
        assert code == 0, out + err
        assert json.loads(out)["items"] == [{"_id": site.url + "/item/3", "name": "Item 3"}]
    finally:
        site.stop()
    assert sorted(os.listdir(folder)) == ["rendered.py", "shop.py"]
