"""Child processes of the stack: started in their own sessions, stopped together."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from devtools.stack import LOCAL_HOST, ROOT, say

# How long children get between SIGTERM and SIGKILL (gunicorn's graceful_timeout is 30 s).
STOP_TIMEOUT = 30.0

_PR_SET_PDEATHSIG = 1
_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM if the stack process dies (even by SIGKILL)."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def own_session_and_die_with_parent() -> None:
    os.setsid()  # terminal Ctrl-C reaches only the stack, which forwards it once
    die_with_parent()


def free_port(host: str = LOCAL_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Signals:
    """Records SIGINT/SIGTERM; raises ``Interrupted`` while ``raising`` (set-up phases)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.raising = True

    def install(self, signums: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        for signum in signums:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.raising:
            raise Interrupted(signum)


@dataclass
class Supervisor:
    """Children in their own sessions; when one dies or a signal comes, all are stopped."""

    signals: Signals
    stop_timeout: float = STOP_TIMEOUT
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        process = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            preexec_fn=own_session_and_die_with_parent,
        )
        self.children.append((name, process))

    def first_exit(self) -> tuple[str, int] | None:
        for name, process in self.children:
            returncode = process.poll()
            if returncode is not None:
                return name, returncode
        return None

    def wait(self, poll: float = 0.2) -> int:
        """Until a signal (0) or a child's death (its code, at least 1)."""
        self.signals.raising = False
        while True:
            if self.signals.received:
                name = signal.Signals(self.signals.received[0]).name
                say(f"{name} received, stopping")
                return 0
            exited = self.first_exit()
            if exited is not None:
                name, returncode = exited
                say(f"{name} exited with code {returncode}, stopping the rest")
                return returncode if returncode > 0 else 1
            time.sleep(poll)

    def stop_all(self) -> None:
        """SIGTERM to each child, SIGKILL to its session after the timeout or a new signal."""
        self.signals.raising = False
        seen = len(self.signals.received)
        for _name, process in self.children:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(p.poll() is None for _n, p in self.children):
            if time.monotonic() > deadline:
                say("children still running, killing them")
                break
            if len(self.signals.received) > seen:
                say("second signal, killing the children")
                break
            time.sleep(0.1)
        for _name, process in self.children:
            # Grandchildren (gunicorn and celery pool workers) share their parent's session.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
