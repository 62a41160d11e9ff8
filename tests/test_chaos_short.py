"""The fault-injection suite (tests/chaos), reduced for the default run; and the full suite under -m chaos.

The short version runs one small trial of kill -9, signals, network faults and
scale, and the quick families of bad data, each against real `run` processes:
no seed may be lost, and no trial may fail otherwise (a crash, a hang, a wrong
exit status).  `pytest -m chaos` runs the whole suite (`python -m tests.chaos`).
"""
import subprocess
import sys

import pytest

from tests.chaos import suite
from tests.crawl import ROOT, cli_env

_results = {}


@pytest.fixture
def short_trials(tmp_path):
    def run(kind):
        if kind not in _results:
            _results.update(suite.run([kind], quick=True, root=str(tmp_path), log=lambda line: None))
        return _results[kind]
    return run


@pytest.mark.parametrize("kind", suite.QUICK)
def test_short_chaos_trials_lose_nothing(short_trials, kind):
    results = short_trials(kind)
    details = suite.report({kind: results})
    assert results and sum(r.seeds for r in results) > 0, details
    assert sum(r.lost for r in results) == 0, details
    assert not [p for r in results for p in r.problems], details


@pytest.mark.chaos
def test_full_chaos_suite():
    proc = subprocess.run([sys.executable, "-m", "tests.chaos"], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "lost" in proc.stdout and "OK in" in proc.stdout
