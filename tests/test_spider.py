"""The Spider base class, collect(), and loading spiders from files and modules."""
import sys

import pytest

from microspider import Seed, Spider
from microspider.errors import SpiderLoadError
from microspider.spider import collect, load_spider
from tests.crawl import write_spider


class Shop(Spider):
    name = "shop"
    start_urls = ["http://a.com/", Seed("http://b.com/", meta={"x": 1})]

    def parse(self, response, seed):
        self.send("http://c.com/", to="other")
        yield Seed("http://a.com/2")
        yield {"_id": 1}


def test_collect_gathers_items_yielded_seeds_and_sends():
    items, sent = collect(Shop(), lambda: Shop().parse(None, None))
    assert items == [{"_id": 1}]
    assert [(t, s.url) for t, s in sent] == [("other", "http://c.com/"), ("shop", "http://a.com/2")]


def test_start_seeds_accept_urls_and_seeds():
    _, sent = collect(Shop(), Shop().start_seeds)
    assert [s.url for _, s in sent] == ["http://a.com/", "http://b.com/"] and sent[1][1].meta == {"x": 1}


def test_send_outside_the_framework_is_an_error():
    with pytest.raises(RuntimeError):
        Shop().send("http://a.com/")


def test_parse_must_be_defined_and_says_which_class():
    class NoParse(Spider):
        name = "x"

    with pytest.raises(NotImplementedError, match="NoParse.parse"):
        NoParse().parse(None, None)


def test_load_from_file_with_and_without_class(tmp_path):
    path = write_spider(tmp_path, "two.py", '''
class A(Spider):
    name = "a"
    def parse(self, response, seed):
        return ()
class B(A):
    name = "b"
''')
    assert load_spider(path + ":B").name == "b"
    with pytest.raises(SpiderLoadError, match="defines 2 Spider classes"):
        load_spider(path)
    with pytest.raises(SpiderLoadError, match="no Spider class named C"):
        load_spider(path + ":C")


def test_load_from_a_dotted_module(tmp_path, monkeypatch):
    pkg = tmp_path / "myspiders"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write_spider(pkg, "city.py", '''
class City(Spider):
    name = "city"
    def parse(self, response, seed):
        return ()
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_spider("myspiders.city").name == "city"
        assert load_spider("myspiders.city:City").name == "city"
    finally:
        for mod in [m for m in sys.modules if m.startswith("myspiders")]:
            del sys.modules[mod]


@pytest.mark.parametrize("body, message", [
    ("class S(Spider):\n    name = 'bad name!'\n    def parse(self, r, s):\n        return ()\n", "name must be"),
    ("class S(Spider):\n    name = 's'\n", "does not define parse"),
    ("import not_a_module_anywhere\n", "cannot import"),
    ("x = 1\n", "defines 0 Spider classes"),
])
def test_load_errors_are_one_line(tmp_path, body, message):
    path = tmp_path / "s.py"
    path.write_text("from microspider import Spider\n" + body)
    with pytest.raises(SpiderLoadError, match=message) as info:
        load_spider(str(path))
    assert "\n" not in str(info.value)
