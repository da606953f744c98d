"""Run every benchmark, one after the other, each in its own process; ``--smoke`` for tiny sizes.

Usage (from the project root):

    .venv/bin/python -m bench.run_all            # full sizes (tens of minutes; see docs/benchmarks.md)
    .venv/bin/python -m bench.run_all --smoke    # tiny sizes, no verdict on timings (about a minute)
    .venv/bin/python -m bench.run_all --only poll,dynamic

Each benchmark prints its own figures (Markdown tables); this prints which ones failed. Exit status
0 when every benchmark exited 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench import common

FULL: dict[str, list[str]] = {
    "poll": [],
    "status_reports": [],
    "expansion": ["--sizes", "100000,1000000"],
    "dynamic": [],
}
SMOKE: dict[str, list[str]] = {
    "poll": [
        "--devices", "300", "--deployments", "5", "--dynamic", "1", "--duration", "1",
        "--runs", "1", "--profile-samples", "3", "--connections", "8",
    ],
    "status_reports": ["--devices", "40", "--runs", "1", "--duration", "1", "--connections", "8"],
    "expansion": ["--sizes", "2000", "--runs", "1"],
    "dynamic": ["--devices", "2000", "--runs", "1", "--filters", "3"],
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", help="comma-separated: " + ", ".join(FULL))
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    names = args.only.split(",") if args.only else list(plan)
    unknown = set(names) - set(plan)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    failed = []
    for name in names:
        command = [sys.executable, "-m", f"bench.{name}", *plan[name]]
        if args.smoke:
            command.append("--smoke")
        common.log(f"== {' '.join(command[1:])}")
        started = time.perf_counter()
        result = subprocess.run(command, cwd=common.PROJECT_ROOT)
        common.log(
            f"== bench.{name} exited {result.returncode} after {time.perf_counter() - started:.0f} s"
        )
        if result.returncode != 0:
            failed.append(name)
    common.say()
    common.say(
        f"benchmarks failed: {', '.join(failed)}"
        if failed
        else "all benchmarks exited 0"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
