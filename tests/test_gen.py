"""gen: a spider file from the template that loads and parses, and a microspider.cfg that reads."""
import os
import subprocess
import sys

import pytest

from microspider import Seed
from microspider.cli import main
from microspider.config import OPTIONS, read_config, resolve
from microspider.transport.response import from_failure
from microspider.spider import collect, load_spider

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_gen_writes_a_spider_that_loads_and_parses(here, capsys):
    assert main(["gen", "hotel_info", "--url", "http://127.0.0.1:8765/"]) == 0
    assert "wrote ./hotel_info.py" in capsys.readouterr().err
    cls = load_spider(str(here / "hotel_info.py"))
    assert (cls.__name__, cls.name, list(cls.start_urls)) == (
        "HotelInfoSpider", "hotel_info", ["http://127.0.0.1:8765/"])
    page = from_failure({"status": 200, "url": "http://h.com/list?page=1", "encoding": "utf-8",
                         "body": b"<html><title> Hotels </title><a class='next' href='?page=2'>"
                                 b"next</a></html>"})
    spider = cls()
    items, sends = collect(spider, lambda: spider.parse(page, Seed("http://h.com/list?page=1")))
    assert items == [{"_id": "http://h.com/list?page=1", "title": "Hotels"}]
    assert [(to, s.url) for to, s in sends] == [("hotel_info", "http://h.com/list?page=2")]


def test_gen_writes_a_config_whose_every_line_is_a_valid_option(here):
    assert main(["gen", "city"]) == 0
    text = (here / "microspider.cfg").read_text()
    assert read_config(str(here / "microspider.cfg")) == {"microspider": {}, "spider:city": {}}
    for opt in OPTIONS:
        assert "\n# %s = " % opt.flag[2:] in text, opt.name
    uncommented = "\n".join(line[2:] if " = " in line and line.startswith("# ") else line
                            for line in text.splitlines())
    (here / "all.cfg").write_text(uncommented)
    settings = resolve({"config": str(here / "all.cfg")}, environ={})
    assert settings.redis == "127.0.0.1:6379" and settings.retry == 3 and settings.forever is False


def test_gen_never_overwrites(here, capsys):
    (here / "city.py").write_text("# mine\n")
    (here / "microspider.cfg").write_text("[microspider]\nretry = 9\n")
    assert main(["gen", "city"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("microspider: error: ./city.py exists") and err.count("\n") == 1
    assert (here / "city.py").read_text() == "# mine\n"
    assert main(["gen", "hotel"]) == 0   # an existing microspider.cfg is kept as it is
    assert (here / "microspider.cfg").read_text() == "[microspider]\nretry = 9\n"


@pytest.mark.parametrize("name", ["9lives", "bad-name", "a.b", ""])
def test_gen_refuses_names_that_are_not_identifiers(here, name, capsys):
    assert main(["gen", name]) == 2
    assert "bad spider name" in capsys.readouterr().err and os.listdir(here) == []


def test_gen_exit_status_from_the_console_entry(here):
    (here / "city.py").write_text("")
    proc = subprocess.run([sys.executable, "-m", "microspider", "gen", "city"], cwd=here,
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "exists" in proc.stderr
