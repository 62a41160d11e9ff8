"""The crawl benchmark keeps working: a small run, every contender, exactly-once checked.

No timing is asserted here; the figures only mean something on a quiet machine.
"""
import json
import os
import subprocess
import sys

from benchmarks.run import _exactly_once

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_small_run_has_every_contender_and_passes_the_exactly_once_check(tmp_path):
    out = tmp_path / "last.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--pages", "200", "--rounds", "1",
         "--server", "python", "--ceiling-seconds", "1", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["rows"]]
    assert {"bare", "bare_notrust", "micro1", "micro1_impersonate", "micro2"} <= set(names)
    assert report["exactly_once"] == "passed"
    for row in report["rows"]:
        assert row["pages_per_s"] > 0 and row["cpu_ms_per_page"] > 0 and row["worker_rss_mb"] > 0
        if row["name"].startswith("micro"):
            assert row["redis_round_trips_per_seed"] > 0
        assert row["name"] in proc.stdout
    assert "exactly once" in proc.stdout


def test_exactly_once_check_reports_missing_and_duplicated_pages():
    fine = {"total": 3, "distinct": 3, "not_once": {}, "not_once_count": 0}
    assert _exactly_once(fine, 3) == []
    twice = {"total": 3, "distinct": 2, "not_once": {"/p/1.html": 2, "/p/2.html": 0},
             "not_once_count": 2}
    [problem] = _exactly_once(twice, 3)
    assert "/p/1.html x2" in problem and "/p/2.html x0" in problem
