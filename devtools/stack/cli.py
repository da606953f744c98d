"""The commands behind `make run`, `make test` and `make manage` (see the package docstring)."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import environ as django_environ

from devtools.stack import DATA_DIR, ROOT, say, truthy
from devtools.stack.network import display_url
from devtools.stack.provision import Stack, checkout_secret_key, provision
from devtools.stack.supervise import Interrupted, Signals, Supervisor, die_with_parent

DEFAULT_BIND = "127.0.0.1:8080"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}
RUN_SETTINGS = "config.settings.local"
DEFAULT_ADMIN_EMAIL = "admin@example.com"
DEFAULT_ADMIN_PASSWORD = "flotilla-admin"
LOGIN_PATH = "/api/management/v1/useradm/auth/login"
STARTUP_TIMEOUT = 90.0


def _manage(args: Sequence[str], env: Mapping[str, str]) -> int:
    return subprocess.call(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=dict(env)
    )


def _wait_until_healthy(url: str, supervisor: Supervisor) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if supervisor.first_exit() is not None or supervisor.signals.received:
            return False
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def run_environ(
    stack: Stack, environ: Mapping[str, str], *, data_dir: Path = DATA_DIR
) -> dict[str, str]:
    """The environment of `run` and `manage` children: local settings on the stack's servers.

    DEBUG stays off (DJANGO_DEBUG=1 turns it on), the secret key is the checkout's own unless
    DJANGO_SECRET_KEY is given, and the server listens on loopback unless FLOTILLA_BIND says.
    """
    env = stack.environ(environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", RUN_SETTINGS)
    env.setdefault("FLOTILLA_BIND", DEFAULT_BIND)
    if not env.get("DJANGO_SECRET_KEY"):
        env["DJANGO_SECRET_KEY"] = checkout_secret_key(data_dir)
    return env


def banner(stack: Stack, env: Mapping[str, str]) -> str:
    bind = env.get("FLOTILLA_BIND", DEFAULT_BIND)
    url = display_url(bind)
    email = env.get("FLOTILLA_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL)
    password = env.get("FLOTILLA_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
    base = url or f"http://<{bind}>"
    curl = f"curl -X POST -u {shlex.quote(f'{email}:{password}')} {base}{LOGIN_PATH}"
    if bind.startswith("unix:"):
        curl = f"curl --unix-socket {shlex.quote(bind[5:])} -X POST -u {shlex.quote(f'{email}:{password}')} http://localhost{LOGIN_PATH}"
    lines = [
        "",
        "Flotilla is running.",
        f"  Listening on: {bind}",
        f"  URL:          {base}/",
        f"  Admin:        {base}/admin/",
        f"  Login:        {email} / {password}",
        f"  API token:    {curl}",
        f"  Database:     {stack.notes.get('database', '')}",
        f"  Redis:        {stack.notes.get('redis', '')}",
    ]
    public = env.get("FLOTILLA_PUBLIC_URL")
    if public:
        lines.insert(4, f"  Public URL:   {public}")
    if bind.split(":")[0] in LOOPBACK_HOSTS or bind.startswith("[::1]"):
        lines.append(
            "  Only this machine can connect; for devices on other machines set "
            "FLOTILLA_BIND=0.0.0.0:8080."
        )
    lines += ["Stop with Ctrl-C (or SIGTERM).", ""]
    return "\n".join(lines)


def run_command(environ: Mapping[str, str]) -> int:
    signals = Signals()
    signals.install()
    supervisor = Supervisor(signals=signals)
    stack: Stack | None = None
    try:
        DATA_DIR.mkdir(exist_ok=True)
        stack = provision("run", environ)
        env = run_environ(stack, environ)
        for args in (
            ["migrate", "--noinput"],
            ["ensure_admin"],
            ["collectstatic", "--noinput", "--verbosity", "0"],
        ):
            returncode = _manage(args, env)
            if returncode:
                say(f"manage.py {' '.join(args)} failed with code {returncode}")
                return returncode
        python = sys.executable
        supervisor.start(
            "web", [python, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"], env
        )
        supervisor.start(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "INFO",
                "--concurrency",
                "2",
            ],
            env,
        )
        supervisor.start(
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "INFO",
                "-s",
                str(DATA_DIR / "celerybeat-schedule"),
            ],
            env,
        )
        url = display_url(env["FLOTILLA_BIND"])
        if url is None or _wait_until_healthy(url, supervisor):
            sys.stdout.write(banner(stack, env) + "\n")
            sys.stdout.flush()
        elif supervisor.first_exit() is None and not signals.received:
            say(f"no answer from {url}/healthz within {STARTUP_TIMEOUT:.0f} s")
        return supervisor.wait()
    except Interrupted as exc:
        say(f"{exc} received, stopping")
        return 0
    finally:
        supervisor.stop_all()
        if stack is not None:
            stack.stop()


def test_command(args: Sequence[str], environ: Mapping[str, str]) -> int:
    signals = Signals()
    signals.install()
    stack: Stack | None = None
    try:
        stack = provision("test", environ)
        # No DJANGO_SETTINGS_MODULE of ours: pytest takes config.settings.test from its ini.
        env = stack.environ(environ)
        # Same process group: pytest gets the terminal's Ctrl-C itself (and keeps the tty for
        # --pdb); the stack only forwards SIGTERM, which make sends to its own child alone.
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args],
            cwd=ROOT,
            env=env,
            preexec_fn=die_with_parent,
        )
        signals.raising = False
        forwarded = 0
        while process.poll() is None:
            terms = [s for s in signals.received if s == signal.SIGTERM]
            if len(terms) > forwarded:
                forwarded = len(terms)
                process.send_signal(signal.SIGTERM)
            time.sleep(0.1)
        returncode = process.returncode
        return 128 - returncode if returncode < 0 else returncode
    except Interrupted as exc:
        say(f"{exc} received, stopping")
        return 1
    finally:
        if stack is not None:
            stack.stop()


def manage_command(args: Sequence[str], environ: Mapping[str, str]) -> int:
    signals = Signals()
    signals.install()
    stack: Stack | None = None
    try:
        stack = provision("run", environ)
        return _manage(args, run_environ(stack, environ))
    except Interrupted as exc:
        say(f"{exc} received, stopping")
        return 1
    finally:
        if stack is not None:
            stack.stop()


USAGE = """usage: python -m devtools.stack run
       python -m devtools.stack test [pytest args...]
       python -m devtools.stack manage [manage.py args...]
"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in {"run", "test", "manage"}:
        sys.stderr.write(USAGE)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if truthy(os.environ.get("DJANGO_READ_DOT_ENV_FILE")) and (ROOT / ".env").exists():
        # As the settings would; values already in the environment win.
        django_environ.Env.read_env(str(ROOT / ".env"))
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run_command(os.environ)
    if command == "test":
        return test_command(rest, os.environ)
    return manage_command(rest, os.environ)
