"""Real Mender 3.4 daemons for end-to-end tests, each sandboxed in a private mount namespace.

Every client runs as::

    unshare --mount --propagation private -- sh -c '<bind mounts>; exec /usr/bin/mender ... daemon'

so the PID of ``unshare`` becomes the PID of ``mender`` and the namespace (with its mounts) dies
with the daemon.  Inside the namespace:

* ``/etc/mender`` is the client's own ``etc-mender`` directory (``mender.conf``, ``artifact_info``);
* ``/usr/share/mender`` is a read-only, fleet-wide ``share-mender`` directory holding only the
  probe identity script (``mac=$MENDER_PROBE_MAC``), the probe inventory scripts and the
  ``probe-sandbox`` update module (Debian's real modules are hidden);
* ``systemctl`` (and so reboot/shutdown/poweroff/halt, which link to it) is replaced by a stub
  that logs to ``<sandbox>/<client>/blocked-commands.log`` and exits 1; the same stubs and
  ``fw_setenv``/``fw_printenv`` come first on ``PATH``.

The ``probe-sandbox`` module "installs" by copying the payload files to
``<sandbox>/<client>/installed`` (the previous content is kept for ``ArtifactRollback``), answers
``SupportsRollback`` with ``Yes`` and ``NeedsArtifactReboot`` with ``No``, fails
``ArtifactInstall`` (after copying) when the payload holds a file named
``probe-fail-ArtifactInstall``, and logs every call to ``<sandbox>/<client>/module-calls.log``.

Nothing here touches the real ``/etc/mender`` or ``/usr/share/mender``, and nothing can reboot.
See docs/mender-client.md for what the real client does on the wire.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

MENDER = Path("/usr/bin/mender")
UNSHARE = Path("/usr/bin/unshare")
MENDER_CLI = Path("/usr/bin/mender-cli")
MENDER_ARTIFACT = Path("/usr/bin/mender-artifact")

# "generated": no key file, the client creates an RSA-3072 key itself (~1 s of CPU).
KEY_GENERATED = "generated"
KEY_TYPES = (KEY_GENERATED, "p256", "ed25519", "rsa2048", "rsa3072")

BLOCKED_COMMANDS = (
    "systemctl",
    "reboot",
    "shutdown",
    "poweroff",
    "halt",
    "fw_setenv",
    "fw_printenv",
)
_SYSTEM_BIN_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")
_SANDBOXED_TARGETS = ("/etc/mender", "/usr/share/mender")

T = TypeVar("T")

_mac_counter = itertools.count(random.randrange(1, 0xFFFF) << 8)


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.1,
    description: str = "condition",
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            details = f"\n{diagnostics()}" if diagnostics else ""
            raise AssertionError(
                f"timed out after {timeout:.1f} s waiting for {description}{details}"
            )
        time.sleep(interval)


def next_probe_mac() -> str:
    """A locally administered, session-unique MAC ``02:00:00:xx:xx:xx``."""
    n = next(_mac_counter) & 0xFFFFFF
    return f"02:00:00:{n >> 16:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"


def write_private_key(path: Path, key_type: str) -> None:
    """Write a device key in a format the 3.4 client accepts as ``mender-agent.pem``."""
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if key_type == "p256":
        # Same bytes as `openssl ecparam -name prime256v1 -genkey -noout` ("BEGIN EC PRIVATE KEY").
        key = ec.generate_private_key(ec.SECP256R1())
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    elif key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
        fmt = serialization.PrivateFormat.PKCS8
    elif key_type in ("rsa2048", "rsa3072"):
        key = rsa.generate_private_key(
            public_exponent=65537, key_size=int(key_type[3:])
        )
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    else:
        raise ValueError(f"cannot pre-generate a key of type {key_type!r}")
    pem = key.private_bytes(
        serialization.Encoding.PEM, fmt, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def public_key_pem_of(private_key_pem: bytes) -> str:
    """SubjectPublicKeyInfo PEM of a private key PEM (what the client sends as ``pubkey``)."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


def same_public_key(pem_a: str, pem_b: str) -> bool:
    """Compare two public key PEMs by their DER encoding (whitespace/line breaks aside)."""

    def der(pem: str) -> bytes:
        return serialization.load_pem_public_key(pem.encode()).public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )

    return der(pem_a) == der(pem_b)


def mount_namespaces_available() -> bool:
    """True when ``unshare --mount`` with bind mounts works here (root or CAP_SYS_ADMIN)."""
    if not UNSHARE.exists():
        return False
    probe = subprocess.run(
        [
            str(UNSHARE),
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            "mount --bind /etc/mender /etc/mender",
        ],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return probe.returncode == 0


def _proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), None when the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _proc_exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


_IDENTITY_SCRIPT = """\
#!/bin/sh
# Probe identity: one unique MAC per client, taken from the daemon's environment.
if [ -z "${MENDER_PROBE_MAC:-}" ]; then
    echo "MENDER_PROBE_MAC is not set" >&2
    exit 1
fi
echo "mac=$MENDER_PROBE_MAC"
"""

_INVENTORY_SCRIPT = """\
#!/bin/sh
echo "probe_client=${MENDER_PROBE_CLIENT:-unknown}"
echo "hostname=probe-${MENDER_PROBE_CLIENT:-unknown}"
echo "kernel=$(uname -r)"
# A repeated key becomes a list value in the inventory.
echo "probe_list=a"
echo "probe_list=b"
"""

# Like Debian's example mender-inventory-provides, but with this client's config and data dir.
_PROVIDES_SCRIPT = """\
#!/bin/sh
/usr/bin/mender --config /etc/mender/mender.conf --data "${MENDER_PROBE_DATA:?}" \\
    --no-syslog --log-level error show-provides 2>/dev/null || true
"""

_MODULE_SCRIPT = """\
#!/bin/sh
# probe-sandbox update module: installs into $MENDER_PROBE_SANDBOX/<client>/installed only.
set -u
state="$1"
tree="${2:-}"
base="${MENDER_PROBE_SANDBOX:?}/${MENDER_PROBE_CLIENT:?}"
mkdir -p "$base"
echo "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ) $state $tree" >> "$base/module-calls.log"
case "$state" in
    SupportsRollback)
        echo "Yes"
        ;;
    NeedsArtifactReboot)
        echo "No"
        ;;
    ArtifactInstall)
        rm -rf "$base/rollback"
        mkdir -p "$base/rollback"
        if [ -d "$base/installed" ]; then
            mv "$base/installed" "$base/rollback/installed"
        fi
        mkdir -p "$base/installed"
        cp -a "$tree/files/." "$base/installed/"
        cp "$tree/header/artifact_name" "$base/installed/.artifact_name" 2>/dev/null || true
        if [ -e "$tree/files/probe-fail-ArtifactInstall" ]; then
            echo "probe-sandbox: ArtifactInstall fails on request" >&2
            exit 1
        fi
        ;;
    ArtifactRollback)
        if [ -d "$base/rollback" ]; then
            rm -rf "$base/installed"
            if [ -d "$base/rollback/installed" ]; then
                mv "$base/rollback/installed" "$base/installed"
            fi
            rm -rf "$base/rollback"
        fi
        ;;
    ArtifactCommit|Cleanup)
        rm -rf "$base/rollback"
        ;;
esac
exit 0
"""

_STUB_SCRIPT = """\
#!/bin/sh
# probe harness stub: never reboot, never touch systemd or the bootloader.
log="${{MENDER_PROBE_SANDBOX:-{sandbox}}}/${{MENDER_PROBE_CLIENT:-unknown}}/blocked-commands.log"
mkdir -p "$(dirname "$log")" 2>/dev/null
echo "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ) $(basename "$0") $*" >> "$log" 2>/dev/null
echo "probe harness: $(basename "$0") is blocked" >&2
exit 1
"""


def _write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def _stub_mount_targets() -> list[str]:
    """Real files behind the blocked command names (reboot etc. are symlinks to systemctl here)."""
    targets: list[str] = []
    for name in BLOCKED_COMMANDS:
        for directory in _SYSTEM_BIN_DIRS:
            candidate = Path(directory) / name
            if candidate.exists():
                real = str(candidate.resolve())
                if real not in targets:
                    targets.append(real)
    return targets


@dataclass(frozen=True)
class ClientConfig:
    """mender.conf values and initial state shared by the clients of a fleet (seconds)."""

    update_poll: int = 2
    inventory_poll: int = 5
    retry_poll: int = 1
    module_timeout: int = 600
    device_type: str = "probe-device"
    artifact_name: str = "original"
    log_level: str = "debug"


@dataclass
class MenderClient:
    """One real ``mender`` daemon with its own config, data dir, key, identity and sandbox."""

    name: str
    root: Path
    sandbox_root: Path
    share_dir: Path
    stub_dir: Path
    server_url: str
    config: ClientConfig
    key_type: str
    mac: str
    artifact_name: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    start_time: int | None = None
    started_at: float | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def etc_dir(self) -> Path:
        return self.root / "etc-mender"

    @property
    def sandbox(self) -> Path:
        return self.sandbox_root / self.name

    @property
    def key_path(self) -> Path:
        return self.data_dir / "mender-agent.pem"

    @property
    def log_path(self) -> Path:
        return self.root / "mender.log"

    @property
    def output_path(self) -> Path:
        return self.root / "output.log"

    @property
    def identity(self) -> dict[str, str]:
        return {"mac": self.mac}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def prepare(self) -> None:
        """Write config, artifact_info, device_type and (unless client-generated) the key."""
        for directory in (self.data_dir, self.etc_dir, self.sandbox, self.root / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        conf = {
            "ServerURL": self.server_url,
            "UpdatePollIntervalSeconds": self.config.update_poll,
            "InventoryPollIntervalSeconds": self.config.inventory_poll,
            "RetryPollIntervalSeconds": self.config.retry_poll,
            "DeviceTypeFile": str(self.data_dir / "device_type"),
            "DBus": {"Enabled": False},
            "ModuleTimeoutSeconds": self.config.module_timeout,
        }
        (self.etc_dir / "mender.conf").write_text(json.dumps(conf, indent=2) + "\n")
        (self.etc_dir / "artifact_info").write_text(
            f"artifact_name={self.artifact_name}\n"
        )
        (self.data_dir / "device_type").write_text(
            f"device_type={self.config.device_type}\n"
        )
        if self.key_type != KEY_GENERATED and not self.key_path.exists():
            write_private_key(self.key_path, self.key_type)

    def _command(self) -> list[str]:
        mounts = [
            f"mount --bind {shlex.quote(str(self.etc_dir))} /etc/mender",
            f"mount --bind {shlex.quote(str(self.share_dir))} /usr/share/mender",
            "mount -o remount,bind,ro /usr/share/mender",
        ]
        stub = shlex.quote(str(self.stub_dir / "systemctl"))
        mounts += [
            f"mount --bind {stub} {shlex.quote(t)}" for t in _stub_mount_targets()
        ]
        mender = [
            str(MENDER),
            "--config",
            "/etc/mender/mender.conf",
            "--fallback-config",
            str(self.data_dir / "mender.conf.fallback"),
            "--data",
            str(self.data_dir),
            "--no-syslog",
            "--log-file",
            str(self.log_path),
            "--log-level",
            self.config.log_level,
            "daemon",
        ]
        script = "set -e; " + "; ".join(mounts) + "; exec " + shlex.join(mender)
        return [
            str(UNSHARE),
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
        ]

    def _env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.stub_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.root),
            "TMPDIR": str(self.root / "tmp"),
            "LANG": "C.UTF-8",
            "MENDER_PROBE_MAC": self.mac,
            "MENDER_PROBE_SANDBOX": str(self.sandbox_root),
            "MENDER_PROBE_CLIENT": self.name,
            "MENDER_PROBE_DATA": str(self.data_dir),
        }

    def start(self) -> None:
        """Start the daemon (config must be prepared); returns once the process exists."""
        if self.is_running():
            raise RuntimeError(f"{self.name} is already running")
        self.prepare()
        with self.output_path.open("ab") as output:
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.root,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.start_time = _proc_start_time(self.process.pid)
        (self.root / "info.json").write_text(
            json.dumps(
                {
                    "pid": self.process.pid,
                    "start_time": self.start_time,
                    "mac": self.mac,
                    "key_type": self.key_type,
                    "server_url": self.server_url,
                }
            )
            + "\n"
        )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _owns_pid(self) -> bool:
        # poll() has not reaped it, so the pid cannot have been reused; the start time guards
        # against anything that bypassed this object.
        return (
            self.is_running()
            and self.process is not None
            and _proc_start_time(self.process.pid) == self.start_time
        )

    def wait_until_exec(self, timeout: float = 10.0) -> None:
        """Wait until the sandbox shell has exec'd ``mender`` (signals before that would kill sh)."""
        wait_for(
            lambda: self.pid is not None and _proc_exe(self.pid) == str(MENDER),
            timeout,
            interval=0.02,
            description=f"{self.name} to exec {MENDER}",
            diagnostics=self.diagnostics,
        )

    def _signal(self, signum: signal.Signals) -> None:
        self.wait_until_exec()
        if not self._owns_pid():
            raise RuntimeError(f"{self.name} is not running")
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def send_sigusr1(self) -> None:
        """Make the daemon check for an update now (what ``mender check-update`` does under systemd)."""
        self._signal(signal.SIGUSR1)

    def send_sigusr2(self) -> None:
        """Make the daemon send its inventory now (``mender send-inventory``)."""
        self._signal(signal.SIGUSR2)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; return the exit code (None if never started)."""
        if self.process is None:
            return None
        if self._owns_pid():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        else:
            self.process.poll()
        # Inventory scripts or a module the daemon started may outlive it; they are in our session.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode

    def log_text(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )

    def output_text(self) -> str:
        """stdout/stderr of the sandbox (mount errors end up here)."""
        if not self.output_path.exists():
            return ""
        return self.output_path.read_text(errors="replace")

    def installed_files(self) -> dict[str, bytes]:
        """Payload files the probe module has installed (relative path -> content)."""
        installed = self.sandbox / "installed"
        if not installed.is_dir():
            return {}
        return {
            str(path.relative_to(installed)): path.read_bytes()
            for path in sorted(installed.rglob("*"))
            if path.is_file() and path.name != ".artifact_name"
        }

    def installed_artifact_name(self) -> str | None:
        marker = self.sandbox / "installed" / ".artifact_name"
        return marker.read_text().strip() if marker.exists() else None

    def module_calls(self) -> list[str]:
        """The update-module states called so far, in order (``Download``, ``ArtifactInstall`` ...)."""
        log = self.sandbox / "module-calls.log"
        if not log.exists():
            return []
        return [
            line.split()[1] for line in log.read_text().splitlines() if line.strip()
        ]

    def blocked_commands(self) -> list[str]:
        """Lines logged by the systemctl/reboot/fw_* stubs (should stay empty)."""
        log = self.sandbox / "blocked-commands.log"
        return log.read_text().splitlines() if log.exists() else []

    def public_key_pem(self, timeout: float = 15.0) -> str:
        """The device's public key (SubjectPublicKeyInfo PEM); waits for a client-generated key."""
        wait_for(
            lambda: self.key_path.exists() and self.key_path.stat().st_size > 0,
            timeout,
            description=f"{self.key_path}",
            diagnostics=self.diagnostics,
        )
        # The client may still be writing a freshly generated key.
        return wait_for(
            self._try_public_key,
            2.0,
            interval=0.05,
            description=f"a complete key in {self.key_path}",
        )

    def _try_public_key(self) -> str | None:
        try:
            return public_key_pem_of(self.key_path.read_bytes())
        except ValueError:
            return None

    def diagnostics(self, tail: int = 40) -> str:
        state = (
            "running"
            if self.is_running()
            else f"exited with {self.process.returncode if self.process else None}"
        )
        log_tail = "\n".join(self.log_text().splitlines()[-tail:])
        return (
            f"--- {self.name} (mac {self.mac}, key {self.key_type}, pid {self.pid}, {state})\n"
            f"--- output:\n{self.output_text()}\n--- mender.log (last {tail} lines):\n{log_tail}"
        )


class MenderFleet:
    """N sandboxed real Mender clients talking to one server; stop() always in teardown."""

    def __init__(
        self, root: Path, server_url: str, config: ClientConfig | None = None
    ) -> None:
        self.root = root
        self.server_url = server_url
        self.config = config or ClientConfig()
        self.clients: list[MenderClient] = []
        self.share_dir = root / "share-mender"
        self.stub_dir = root / "stub-bin"
        self.sandbox_root = root / "sandbox"
        self._prepare_shared()

    def _prepare_shared(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sandbox_root.mkdir(exist_ok=True)
        _write_executable(
            self.share_dir / "identity" / "mender-device-identity", _IDENTITY_SCRIPT
        )
        _write_executable(
            self.share_dir / "inventory" / "mender-inventory-probe", _INVENTORY_SCRIPT
        )
        _write_executable(
            self.share_dir / "inventory" / "mender-inventory-provides",
            _PROVIDES_SCRIPT,
        )
        _write_executable(
            self.share_dir / "modules" / "v3" / "probe-sandbox", _MODULE_SCRIPT
        )
        stub = _STUB_SCRIPT.format(sandbox=self.sandbox_root)
        for name in BLOCKED_COMMANDS:
            _write_executable(self.stub_dir / name, stub)

    def add_client(
        self,
        *,
        key_type: str = "p256",
        artifact_name: str | None = None,
        mac: str | None = None,
    ) -> MenderClient:
        """Define (not start) one more client."""
        if key_type not in KEY_TYPES:
            raise ValueError(f"key_type must be one of {KEY_TYPES}, not {key_type!r}")
        name = f"client-{len(self.clients) + 1:03d}"
        client = MenderClient(
            name=name,
            root=self.root / name,
            sandbox_root=self.sandbox_root,
            share_dir=self.share_dir,
            stub_dir=self.stub_dir,
            server_url=self.server_url,
            config=self.config,
            key_type=key_type,
            mac=mac or next_probe_mac(),
            artifact_name=artifact_name or self.config.artifact_name,
        )
        client.prepare()
        self.clients.append(client)
        return client

    def start(self) -> None:
        """Start every client that is not running yet."""
        for client in self.clients:
            if not client.is_running():
                client.start()

    def stop(self) -> None:
        """Stop every client (SIGTERM, then SIGKILL); safe to call more than once."""
        errors = []
        for client in self.clients:
            try:
                client.stop()
            except Exception as exc:  # stop the others regardless
                errors.append(f"{client.name}: {exc!r}")
        if errors:
            raise RuntimeError("failed to stop clients: " + "; ".join(errors))

    def by_mac(self, mac: str) -> MenderClient:
        return next(client for client in self.clients if client.mac == mac)

    def leaked_mounts(self) -> list[str]:
        """Mounts in this (the test's) namespace over the sandboxed paths or from the fleet dir."""
        targets = {*_SANDBOXED_TARGETS, *_stub_mount_targets()}
        leaked = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            root, mount_point = fields[3], fields[4]
            if mount_point in targets or str(self.root) in root:
                leaked.append(line)
        return leaked

    def diagnostics(self) -> str:
        return "\n".join(client.diagnostics() for client in self.clients)

    def __enter__(self) -> MenderFleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def client_binaries_missing() -> list[str]:
    """What the harness needs but this machine lacks (empty when real clients can run)."""
    missing = [str(path) for path in (MENDER, UNSHARE) if not path.exists()]
    missing += [target for target in _SANDBOXED_TARGETS if not Path(target).is_dir()]
    if not missing and not mount_namespaces_available():
        missing.append("private mount namespaces (unshare --mount; needs root)")
    return missing


__all__ = [
    "KEY_GENERATED",
    "KEY_TYPES",
    "MENDER",
    "MENDER_ARTIFACT",
    "MENDER_CLI",
    "ClientConfig",
    "MenderClient",
    "MenderFleet",
    "client_binaries_missing",
    "next_probe_mac",
    "public_key_pem_of",
    "same_public_key",
    "wait_for",
    "write_private_key",
]
