"""mender-cli 1.9 (Debian) against the real server process: login, artifacts upload/list/delete.

Skipped when /usr/bin/mender-cli or mender-artifact is missing, unless FLOTILLA_REQUIRE_E2E=1
(then it fails). mender-cli uploads with a chunked multipart body and decodes the artifact list
strictly (updates[].meta_data must be an array), so this is the compatibility check that counts.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MENDER_CLI = Path("/usr/bin/mender-cli")
MENDER_ARTIFACT = Path("/usr/bin/mender-artifact")
USERNAME = "cli-admin@example.com"
PASSWORD = "cli-secret-pass-123"


def _require(binary: Path) -> None:
    if os.access(binary, os.X_OK):
        return
    message = f"e2e prerequisite missing: {binary}"
    if os.environ.get("FLOTILLA_REQUIRE_E2E") == "1":
        pytest.fail(f"{message} (FLOTILLA_REQUIRE_E2E=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def cli_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".cache").mkdir(parents=True)
    return home


@pytest.fixture
def mender_cli(cli_home: Path, live_server_url: str) -> Any:
    """Run mender-cli against the live server with HOME and XDG_CACHE_HOME in a temporary directory."""
    _require(MENDER_CLI)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cli_home),
        "XDG_CACHE_HOME": str(cli_home / ".cache"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MENDER_CLI), "--server", live_server_url, *args],
            env=env,
            cwd=cli_home,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def cli_user(transactional_db: None) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(
        username=USERNAME, email=USERNAME, password=PASSWORD
    )


@pytest.fixture
def cli_artifact(tmp_path: Path) -> Path:
    """A module-image with two device types and meta-data, written by the real mender-artifact."""
    _require(MENDER_ARTIFACT)
    payload = tmp_path / "payload.txt"
    payload.write_bytes(b"hello from mender-cli\n" * 300)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"n": 2, "probe": "meta"}))
    output = tmp_path / "cli-release-1.mender"
    subprocess.run(
        [
            str(MENDER_ARTIFACT), "write", "module-image", "-T", "single-file", "-n", "cli-release-1",
            "-t", "cli-device", "-t", "other-device", "-f", str(payload), "--meta-data", str(meta),
            "-o", str(output),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return output


@pytest.fixture
def remove_stored_files(transactional_db: None) -> Iterator[None]:
    """The live server stores under the shared MEDIA_ROOT: remove what the test left there."""
    yield
    from deployments_app.models import Artifact
    from deployments_app.models.artifacts import artifact_storage

    for name in Artifact.objects.values_list("file", flat=True):
        artifact_storage().delete(name)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout + result.stderr


def test_mender_cli_login_upload_list_delete(
    mender_cli: Any,
    cli_user: None,
    cli_artifact: Path,
    cli_home: Path,
    remove_stored_files: None,
    live_server_access_log: Any,
) -> None:
    from deployments_app.models import Artifact
    from deployments_app.models.artifacts import artifact_storage

    # login: the token lands in $XDG_CACHE_HOME/mender/authtoken
    _ok(mender_cli("login", "--username", USERNAME, "--password", PASSWORD))
    token_file = cli_home / ".cache" / "mender" / "authtoken"
    assert token_file.read_text().count(".") == 2

    # upload: chunked multipart (size, description, artifact)
    _ok(
        mender_cli(
            "artifacts",
            "upload",
            "--description",
            "from mender-cli",
            "--no-progress",
            str(cli_artifact),
        )
    )
    artifact = Artifact.objects.get()
    assert artifact.name == "cli-release-1"
    assert artifact.description == "from mender-cli"
    assert artifact.device_types_compatible == ["cli-device", "other-device"]
    assert artifact.size == cli_artifact.stat().st_size
    with artifact_storage().open(artifact.file.name, "rb") as stored:
        assert stored.read() == cli_artifact.read_bytes()
    [upload] = live_server_access_log.matching(
        method="POST", path="/api/management/v1/deployments/artifacts"
    )
    assert upload.status == 201

    # list: mender-cli decodes the whole artifact JSON, meta_data included, at every detail level
    for detail in ("0", "3"):
        listing = _ok(mender_cli("artifacts", "list", "-d", detail))
        assert "cli-release-1" in listing
    assert str(artifact.id) in _ok(mender_cli("artifacts", "list", "-d", "1"))

    # delete: 204, row and stored file gone
    stored_name = artifact.file.name
    _ok(mender_cli("artifacts", "delete", str(artifact.id)))
    assert not Artifact.objects.exists()
    assert not artifact_storage().exists(stored_name)
    assert "cli-release-1" not in _ok(mender_cli("artifacts", "list"))


def test_mender_cli_upload_of_a_corrupt_file_fails_and_stores_nothing(
    mender_cli: Any,
    cli_user: None,
    cli_artifact: Path,
    tmp_path: Path,
    remove_stored_files: None,
) -> None:
    from deployments_app.models import Artifact

    broken = tmp_path / "broken.mender"
    content = cli_artifact.read_bytes()
    broken.write_bytes(content[: len(content) // 2])
    _ok(mender_cli("login", "--username", USERNAME, "--password", PASSWORD))

    result = mender_cli("artifacts", "upload", "--no-progress", str(broken))

    assert result.returncode != 0
    assert not Artifact.objects.exists()


def _personal_access_token(base_url: str, **body: Any) -> str:
    """Log in through the API and create a personal access token (the raw JWT, shown once)."""
    import requests

    session = requests.post(
        f"{base_url}/api/management/v1/useradm/auth/login",
        auth=(USERNAME, PASSWORD),
        timeout=10,
    )
    assert session.status_code == 200, session.text
    created = requests.post(
        f"{base_url}/api/management/v1/useradm/settings/tokens",
        json=body,
        headers={"Authorization": f"Bearer {session.text}"},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    return created.text


@pytest.mark.parametrize("expires_in", [3600, 0], ids=["expiring", "never-expiring"])
def test_mender_cli_works_with_a_personal_access_token_until_it_is_revoked(
    mender_cli: Any,
    cli_user: None,
    cli_artifact: Path,
    cli_home: Path,
    live_server_url: str,
    remove_stored_files: None,
    expires_in: int,
) -> None:
    from config.accounts.models import AccessToken
    from deployments_app.models import Artifact

    # given: a PAT, no login by mender-cli at all
    token = _personal_access_token(live_server_url, name="cli", expires_in=expires_in)
    token_file = cli_home / ".cache" / "mender" / "authtoken"

    # when: the token as a value (upload, list) and as the token file (list)
    _ok(
        mender_cli(
            "--token-value",
            token,
            "artifacts",
            "upload",
            "--no-progress",
            str(cli_artifact),
        )
    )
    listing = _ok(mender_cli("--token-value", token, "artifacts", "list"))
    # mender-cli 1.9 reads the token file only from its default place (it ignores --token
    # there), so a PAT saved where `mender-cli login` saves its token is the file form.
    token_file.parent.mkdir(parents=True)
    token_file.write_text(token)
    listed_from_file = _ok(mender_cli("artifacts", "list"))

    # then
    assert Artifact.objects.get().name == "cli-release-1"
    assert "cli-release-1" in listing
    assert "cli-release-1" in listed_from_file

    # and once revoked, mender-cli is refused
    AccessToken.objects.filter(name="cli").delete()
    for refused in (
        mender_cli("--token-value", token, "artifacts", "list"),
        mender_cli("artifacts", "list"),
    ):
        assert refused.returncode != 0
        assert "cli-release-1" not in refused.stdout
