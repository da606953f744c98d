"""The benchmarks in tiny sizes, so they cannot rot: each must exit 0 and print its figures.

No timing is asserted (``--smoke``): CI machines are shared and noisy. Each benchmark runs as a
subprocess against its own scratch database and a claimed Redis database, with the real server
and worker processes, exactly as documented in bench/README.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# (benchmark, figure lines its output must contain)
EXPECTED = {
    "poll": [
        "| ping: requests/s |",
        "| next, first poll (admission): rate / ping |",
        "| next, repeat poll (resume): rate / ping |",
        "| next, nothing to do (204): rate / ping |",
        "Queries of one next, first poll (admission)",
    ],
    "status_reports": [
        "| status reports/s |",
        "| answers other than 204 (5xx) | 0 (0) |",
        "| statistics (API) exact |",
        "| deployment finished by the worker | finished |",
    ],
    "expansion": [
        "| N=2000: expansion / baseline |",
        "| N=2000: worker peak RSS (idle) |",
        "| N=2000: create request latency |",
    ],
    "dynamic": [
        "| full re-evaluation (cold) / plain INSERT … SELECT, 2000 devices |",
        "| single device: inventory change + re-check, 3 saved filters |",
    ],
}


@pytest.mark.worker
def test_every_benchmark_runs_in_smoke_size() -> None:
    # given: the environment of this test run (DATABASE_URL/REDIS_URL name the servers to use)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    # when
    result = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--smoke"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    # then
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "all benchmarks exited 0" in result.stdout
    missing = [
        (name, line)
        for name, lines in EXPECTED.items()
        for line in lines
        if line not in result.stdout
    ]
    assert missing == [], output[-6000:]
