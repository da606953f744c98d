"""Children of `make run` are stopped together (devtools.stack.supervise)."""

from __future__ import annotations

import os
import sys

from devtools.stack import supervise


def _sleeper() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(60)"]


def test_supervisor_stops_the_rest_when_one_child_dies() -> None:
    supervisor = supervise.Supervisor(signals=supervise.Signals(), stop_timeout=5)
    supervisor.start("a", _sleeper(), os.environ)
    supervisor.start("b", [sys.executable, "-c", "raise SystemExit(3)"], os.environ)
    try:
        assert supervisor.wait(poll=0.05) == 3
    finally:
        supervisor.stop_all()
    assert [p.returncode is not None for _n, p in supervisor.children] == [True, True]


def test_supervisor_returns_0_on_a_signal_and_stops_children() -> None:
    signals = supervise.Signals()
    supervisor = supervise.Supervisor(signals=signals, stop_timeout=5)
    supervisor.start("a", _sleeper(), os.environ)
    supervisor.start("b", _sleeper(), os.environ)
    signals.received.append(15)
    try:
        assert supervisor.wait(poll=0.05) == 0
    finally:
        supervisor.stop_all()
    for _name, process in supervisor.children:
        assert process.returncode is not None
