"""The one-command demo (examples/ctrip/demo.py): a real small run, and the checker's verdicts.

The end-to-end runs start the site, the three ``microspider run`` processes and
an embedded Redis in a tmp folder, exactly as a user's ``python -m
examples.ctrip.demo`` does; the 20,000-hotel run is marked slow
(``pytest -m slow tests/test_demo.py``).
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.ctrip import demo
from examples.ctrip.catalog import Catalog
from examples.ctrip.check import check, hotel_id_of
from microspider import embedded

ROOT = Path(__file__).resolve().parent.parent


def run_demo(folder, *options, timeout):
    return subprocess.run([sys.executable, "-m", "examples.ctrip.demo", "--dir", str(folder)]
                          + list(options), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def last_line(result):
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else "(no output; stderr: %s)" % result.stderr[-2000:]


def assert_cleaned_up(folder):
    """The site and the embedded Redis the demo started are gone."""
    if (folder / "microspider.cfg").exists():  # a server answers at the default address here:
        embedded.stop(base=str(folder))          # the demo left the folder's Redis up for the user
        return
    url_file = Path(embedded.home(str(folder)), "redis.url")
    assert url_file.exists() and not embedded.answers(url_file.read_text().strip())


# -- end to end ------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    """One 300-hotel demo run: (work folder, completed process, seconds it took)."""
    folder = tmp_path_factory.mktemp("small") / "demo"
    started = time.monotonic()
    result = run_demo(folder, "--hotels", "300", "--seed", "1", timeout=120)
    return folder, result, time.monotonic() - started


def test_a_small_demo_collects_every_hotel_and_shows_the_broken_ones(small_demo):
    folder, result, seconds = small_demo
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert last_line(result) == "COMPLETE: 297/297 hotels collected, 3 broken hotels visible as failures, 0 lost"
    assert "ctrip_hotel_info: 297 pages, 297 items, 3 failures kept (PageRejected 3)" in result.stdout
    assert "microspider dump -b" in result.stdout
    assert seconds < 60
    for name in ("ctrip_city", "ctrip_hotel", "ctrip_hotel_info"):
        assert "finished after" in (folder / "logs" / (name + ".log")).read_text()
    assert_cleaned_up(folder)


def test_keep_continues_the_crawl_found_in_the_folder(small_demo):
    folder = small_demo[0]
    again = run_demo(folder, "--hotels", "300", "--seed", "1", "--keep", timeout=90)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert last_line(again) == "COMPLETE: 297/297 hotels collected, 3 broken hotels visible as failures, 0 lost"
    assert "site: 0 requests" in again.stdout  # all cached or parked: nothing fetched again
    assert_cleaned_up(folder)


def test_keep_refuses_another_catalog(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / demo.MARKER).write_text("")
    (folder / "site.json").write_text('{"port": 1, "hotels": 60, "seed": 1}')
    result = run_demo(folder, "--hotels", "61", "--keep", timeout=30)
    assert result.returncode == 2
    assert "--hotels 60 --seed 1" in result.stderr


def test_a_foreign_folder_is_never_wiped(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = run_demo(tmp_path, "--hotels", "60", timeout=30)
    assert result.returncode == 2
    assert "not made by the demo" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.slow
def test_the_20000_hotel_demo_is_complete(tmp_path):
    result = run_demo(tmp_path / "demo", "--hotels", "20000", timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert last_line(result) == "COMPLETE: 19980/19980 hotels collected, 20 broken hotels visible as failures, 0 lost"
    assert_cleaned_up(tmp_path / "demo")


# -- the run supervision -----------------------------------------------------------
class NoProgress:
    started = time.monotonic()

    def tick(self, now):
        pass


def sleeper(folder, name, code="import time; time.sleep(60)"):
    with open(os.path.join(folder, "logs", name + ".log"), "w") as log:
        log.write("%s: the last words\n" % name)
        return subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)


def test_a_run_that_fails_is_reported_and_the_others_are_ended(tmp_path, capsys):
    (tmp_path / "logs").mkdir()
    runs = {"ctrip_city": sleeper(tmp_path, "ctrip_city"),
            "ctrip_hotel": sleeper(tmp_path, "ctrip_hotel", "import sys; sys.exit(3)")}
    problems = demo.watch(runs, NoProgress(), str(tmp_path), deadline=time.monotonic() + 30)
    assert problems == ["the ctrip_hotel run exited with status 3"]
    assert runs["ctrip_city"].poll() is not None
    assert "ctrip_hotel: the last words" in capsys.readouterr().err


def test_a_crawl_past_the_deadline_is_stopped(tmp_path):
    (tmp_path / "logs").mkdir()
    runs = {"ctrip_city": sleeper(tmp_path, "ctrip_city")}
    problems = demo.watch(runs, NoProgress(), str(tmp_path), deadline=time.monotonic())
    assert len(problems) == 1 and problems[0].startswith("timed out")
    assert runs["ctrip_city"].poll() is not None


# -- the checker ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def truth():
    return list(Catalog(hotels=200, seed=5).truth())


def crawled(truth):
    """The items and failure documents of a perfect crawl."""
    items = [{k: r[k] for k in ("_id", "name", "city", "opened", "renovated")}
             for r in truth if not r["broken"]]
    failures = [{"_id": "fp" + r["_id"], "seed": {"url": "http://127.0.0.1:1/hotel/%s.html" % r["_id"]},
                 "error": "PageRejected"} for r in truth if r["broken"]]
    return items, failures


def test_a_perfect_crawl_is_complete(truth):
    items, failures = crawled(truth)
    report = check(truth, items, failures)
    assert report.complete
    assert report.verdict() == "COMPLETE: 197/197 hotels collected, 3 broken hotels visible as failures, 0 lost"
    assert report.details() == []


def test_a_missing_hotel_makes_it_incomplete(truth):
    items, failures = crawled(truth)
    gone = items.pop(17)["_id"]
    report = check(truth, items, failures)
    assert not report.complete and report.missing == [gone]
    assert report.verdict().startswith("INCOMPLETE: 196/197 hotels collected, 3 broken hotels visible"
                                       " as failures, 1 lost")
    assert "missing: 1 (%s)" % gone in report.details()


def test_a_duplicated_item_makes_it_incomplete(truth):
    items, failures = crawled(truth)
    items.append(dict(items[3]))
    report = check(truth, items, failures)
    assert not report.complete and report.duplicates == [items[3]["_id"]]
    assert "1 duplicated" in report.verdict()


def test_a_broken_hotel_without_a_failure_record_is_lost(truth):
    items, failures = crawled(truth)
    hidden = hotel_id_of(failures.pop())
    report = check(truth, items, failures)
    assert not report.complete and report.hidden_broken == [hidden] and report.lost == 1
    assert "2 broken hotels visible as failures, 1 lost" in report.verdict()


def test_a_wrong_value_and_an_item_of_a_broken_hotel_make_it_incomplete(truth):
    items, failures = crawled(truth)
    items[0] = dict(items[0], renovated=1999)
    broken = next(r for r in truth if r["broken"])
    items.append({"_id": broken["_id"], "name": broken["name"]})
    report = check(truth, items, failures)
    assert not report.complete
    assert [(w[0], w[1], w[2]) for w in report.wrong] == [(items[0]["_id"], "renovated", 1999)]
    assert report.unexpected == [broken["_id"]]
    assert "196/197 hotels collected" in report.verdict()


def test_a_problem_of_the_runs_makes_it_incomplete(truth):
    report = check(truth, *crawled(truth))
    report.problems = ["the ctrip_hotel run exited with status 1"]
    assert not report.complete
    assert report.verdict().endswith("0 lost; the ctrip_hotel run exited with status 1")


def test_failure_records_of_collected_hotels_are_reported_but_harmless(truth):
    items, failures = crawled(truth)
    failures.append({"seed": {"url": "http://h/hotel/%s.html" % items[5]["_id"]}})
    report = check(truth, items, failures)
    assert report.complete and report.stray_failures == [items[5]["_id"]]


# -- the connection ----------------------------------------------------------------------
def test_the_embedded_default_when_nothing_answers_at_the_default_addresses(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "_port_open", lambda port: False)
    monkeypatch.setattr(demo.embedded, "answers", lambda url: False)
    (tmp_path / "microspider.cfg").write_text("[microspider]\nredis = unix:///gone.sock\n")
    assert demo.configure_connection(str(tmp_path)) is None
    assert not (tmp_path / "microspider.cfg").exists()  # an earlier demo's: it would name a dead Redis


def test_a_server_at_the_default_address_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "_port_open", lambda port: True)  # "a MongoDB answers"
    try:
        settings = demo.configure_connection(str(tmp_path))
        assert embedded.answers(settings["redis"])
        assert settings["mongo_uri"] == embedded.store_uri(base=str(tmp_path))
        config = (tmp_path / "microspider.cfg").read_text()
        assert "redis = %s\n" % settings["redis"] in config and "mongo_uri = sqlite:///" in config
    finally:
        embedded.stop(base=str(tmp_path))
