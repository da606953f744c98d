"""Peak resident memory of the web server while a 1 GiB artifact is uploaded (goal: < 200 MB).

Usage (from the project root, PostgreSQL on 127.0.0.1:5432 reachable as `postgres`):

    .venv/bin/python -m bench.upload_memory [--size-mib 1024] [--client mender-cli|stream] [--keep]

What it does:
1. creates a scratch database (`flotilla_bench_upload`, dropped at the end) and migrates it;
2. writes a payload of --size-mib MiB of random-ish data and packs it with the real
   `mender-artifact write module-image --compression none` in a temporary directory;
3. starts the real server: `gunicorn -c config/gunicorn.conf.py` (one gthread worker) with
   DATABASE_URL pointing at the scratch database and MEDIA_ROOT in the temporary directory;
4. uploads the artifact with a chunked multipart body: `mender-cli artifacts upload` (default,
   exactly what operators run) or a streaming Python client (`--client stream`);
5. samples VmRSS from /proc/<pid>/status of the gunicorn master and every worker every 20 ms
   and prints the peak per process and the largest one, then checks the stored file.

Exit status 0 when the upload succeeded and the peak worker RSS is below --limit-mb (200).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    SECRET_KEY,
    children_of,
    create_database,
    database_url,
    drop_database,
    free_port,
    log,
    manage,
    rss_kib,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
GUNICORN = PYTHON.parent / "gunicorn"
MENDER_ARTIFACT = Path("/usr/bin/mender-artifact")
MENDER_CLI = Path("/usr/bin/mender-cli")
DATABASE = "flotilla_bench_upload"
DATABASE_URL = database_url(DATABASE)
USERNAME = "bench@example.com"
PASSWORD = "bench-secret-pass-123"
MIB = 1024 * 1024


# ------------------------------------------------------------------ memory sampling


@dataclass
class MemorySampler:
    """Samples the RSS of the gunicorn master and its workers in a background thread."""

    master_pid: int
    interval: float = 0.02
    peaks: dict[int, int] = field(default_factory=dict)
    baseline: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample_once(self) -> dict[int, int]:
        current = {}
        for pid in [self.master_pid, *children_of(self.master_pid)]:
            value = rss_kib(pid)
            if value is not None:
                current[pid] = value
                self.peaks[pid] = max(self.peaks.get(pid, 0), value)
        return current

    def start(self) -> None:
        self.baseline = self.sample_once()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# ------------------------------------------------------------------ set-up


def server_env(media_root: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": DATABASE_URL,
        "FLOTILLA_MEDIA_ROOT": str(media_root),
        "FLOTILLA_BIND": f"127.0.0.1:{port}",
        "FLOTILLA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FLOTILLA_WEB_WORKERS": "1",
        "FLOTILLA_ACCESS_LOG": "",
        "TMPDIR": str(media_root.parent / "tmp"),
        "PYTHONUNBUFFERED": "1",
    }


def create_user_and_token(env: dict[str, str]) -> str:
    code = (
        "from django.contrib.auth import get_user_model\n"
        "from config.accounts.services.tokens import issue_user_token\n"
        f"u = get_user_model().objects.create_user(username={USERNAME!r}, email={USERNAME!r}, password={PASSWORD!r})\n"
        "print(issue_user_token(user=u))\n"
    )
    return manage(env, "shell", "-c", code).strip().splitlines()[-1]


def write_payload(path: Path, size: int) -> None:
    """Incompressible-looking but cheap data: a 1 MiB random block with a counter per MiB."""
    block = os.urandom(MIB)
    with path.open("wb") as out:
        written = 0
        index = 0
        while written < size:
            chunk = index.to_bytes(8, "big") + block[8:]
            chunk = chunk[: size - written]
            out.write(chunk)
            written += len(chunk)
            index += 1


def build_artifact(work: Path, size: int) -> Path:
    payload = work / "payload.bin"
    write_payload(payload, size)
    artifact = work / "bench-1gib.mender"
    subprocess.run(
        [
            str(MENDER_ARTIFACT), "write", "module-image", "-T", "single-file", "-n", "bench-1gib",
            "-t", "bench-device", "-f", str(payload), "--compression", "none", "-o", str(artifact),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    payload.unlink()
    return artifact


def start_server(
    env: dict[str, str], url: str, log_path: Path
) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as server_log:
        process = subprocess.Popen(
            [str(GUNICORN), "-c", "config/gunicorn.conf.py"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not become healthy in 30 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# ------------------------------------------------------------------ upload clients


def upload_with_mender_cli(url: str, artifact: Path, home: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    for args in (
        ["login", "--username", USERNAME, "--password", PASSWORD],
        [
            "artifacts",
            "upload",
            "--no-progress",
            "--description",
            "bench",
            str(artifact),
        ],
    ):
        result = subprocess.run(
            [str(MENDER_CLI), "--server", url, *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=home,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"mender-cli {args[0]} failed: {result.stdout}{result.stderr}"
            )


def _multipart_stream(artifact: Path, boundary: str) -> Iterator[bytes]:
    size = artifact.stat().st_size
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="size"\r\n\r\n{size}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nbench\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="artifact"; filename="{artifact.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    with artifact.open("rb") as source:
        while chunk := source.read(MIB):
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def upload_with_stream(url: str, artifact: Path, token: str) -> None:
    import requests

    boundary = "flotilla-bench-" + os.urandom(8).hex()
    response = requests.post(
        f"{url}/api/management/v1/deployments/artifacts",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        data=_multipart_stream(
            artifact, boundary
        ),  # a generator: sent with Transfer-Encoding: chunked
        timeout=1800,
    )
    if response.status_code != 201:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mib", type=int, default=1024, help="payload size in MiB (default 1024)"
    )
    parser.add_argument(
        "--client", choices=["mender-cli", "stream"], default="mender-cli"
    )
    parser.add_argument(
        "--limit-mb",
        type=float,
        default=200.0,
        help="fail above this peak worker RSS (MB)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch database and files"
    )
    args = parser.parse_args()
    if not MENDER_ARTIFACT.exists():
        log("mender-artifact is not installed")
        return 2
    client = args.client
    if client == "mender-cli" and not MENDER_CLI.exists():
        log("mender-cli not installed: using the streaming client")
        client = "stream"

    work = Path(tempfile.mkdtemp(prefix="flotilla-bench-upload-"))
    media_root = work / "media"
    media_root.mkdir()
    (work / "tmp").mkdir()
    (work / "home" / ".cache").mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(media_root, port)
    process: subprocess.Popen[bytes] | None = None
    try:
        log(f"scratch database {DATABASE}, work dir {work}")
        create_database(DATABASE)
        manage(env, "migrate", "--noinput")
        token = create_user_and_token(env)

        started = time.monotonic()
        artifact = build_artifact(work, args.size_mib * MIB)
        artifact_size = artifact.stat().st_size
        log(
            f"built {artifact.name}: {artifact_size} bytes in {time.monotonic() - started:.1f} s"
        )

        process = start_server(env, url, work / "server.log")
        sampler = MemorySampler(master_pid=process.pid)
        sampler.start()
        log(
            "baseline RSS: "
            + ", ".join(
                f"pid {pid}: {kib / 1024:.1f} MiB"
                for pid, kib in sampler.baseline.items()
            )
        )

        started = time.monotonic()
        if client == "mender-cli":
            upload_with_mender_cli(url, artifact, work / "home")
        else:
            upload_with_stream(url, artifact, token)
        elapsed = time.monotonic() - started
        sampler.stop()
        log(
            f"upload via {client}: 201 in {elapsed:.1f} s ({artifact_size / MIB / elapsed:.0f} MiB/s)"
        )

        stored = [path for path in media_root.rglob("*") if path.is_file()]
        if len(stored) != 1 or stored[0].stat().st_size != artifact_size:
            raise RuntimeError(f"unexpected stored files: {stored}")
        if sha256_of(stored[0]) != sha256_of(artifact):
            raise RuntimeError("stored file differs from the uploaded artifact")
        log(f"stored file identical to the upload ({stored[0].name})")

        workers = {pid: kib for pid, kib in sampler.peaks.items() if pid != process.pid}
        for pid, kib in sorted(sampler.peaks.items()):
            role = "master" if pid == process.pid else "worker"
            base = sampler.baseline.get(pid)
            base_text = f" (baseline {base / 1024:.1f} MiB)" if base else ""
            log(f"peak RSS {role} pid {pid}: {kib / 1024:.1f} MiB{base_text}")
        peak_mb = max(workers.values()) * 1024 / 1e6 if workers else 0.0
        peak_mib = max(workers.values()) / 1024 if workers else 0.0
        verdict = "OK" if peak_mb < args.limit_mb else "OVER LIMIT"
        print(  # noqa: T201
            f"PEAK WORKER RSS: {peak_mib:.1f} MiB ({peak_mb:.1f} MB) while uploading "
            f"{artifact_size / MIB:.0f} MiB via {client} -- {verdict} (limit {args.limit_mb:.0f} MB)",
            flush=True,
        )
        return 0 if peak_mb < args.limit_mb else 1
    finally:
        if process is not None:
            stop_server(process)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            drop_database(DATABASE)


if __name__ == "__main__":
    sys.exit(main())
