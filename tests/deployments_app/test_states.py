"""Every allowed and every refused transition of the deployment state machines (states.py).

The tables here are written out by hand from Mender's semantics, not derived from states.py,
so that a change to either machine has to be made twice, on purpose.
"""

from __future__ import annotations

import itertools

import pytest

from deployments_app.states import (
    ACTIVE_DEPLOYMENT_STATUSES,
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    DeploymentStatus,
    DeviceDeploymentStatus,
    can_transition_deployment,
    can_transition_device_deployment,
)
from tests.state_tables import transition_table

# --------------------------------------------------------------------------- deployments

DEPLOYMENT = ["scheduled", "pending", "inprogress", "finished"]
DEPLOYMENT_ALLOWED = {
    ("scheduled", "pending"),
    ("scheduled", "inprogress"),
    ("scheduled", "finished"),  # aborted, or every device done, before the first phase
    ("pending", "inprogress"),
    ("pending", "finished"),
    ("inprogress", "finished"),
}


def test_the_deployment_table_covers_the_whole_vocabulary() -> None:
    assert sorted(DeploymentStatus.values) == sorted(DEPLOYMENT)
    assert len(transition_table(DEPLOYMENT, DEPLOYMENT_ALLOWED)) == 16
    assert len(DEPLOYMENT_ALLOWED) == 6


@pytest.mark.parametrize(
    ("current", "to", "allowed"), transition_table(DEPLOYMENT, DEPLOYMENT_ALLOWED)
)
def test_deployment_transition(current: str, to: str, allowed: bool) -> None:
    assert can_transition_deployment(current, to) is allowed


def test_only_finished_ends_a_deployment_and_every_other_status_reaches_it() -> None:
    terminal = {
        s
        for s in DEPLOYMENT
        if not any(can_transition_deployment(s, t) for t in DEPLOYMENT)
    }
    assert terminal == {"finished"}
    assert set(ACTIVE_DEPLOYMENT_STATUSES) == {"scheduled", "pending", "inprogress"}
    for status in ACTIVE_DEPLOYMENT_STATUSES:
        assert can_transition_deployment(status, "finished")


# --------------------------------------------------------------------------- device deployments

DEVICE_ACTIVE = [
    "pending",
    "downloading",
    "installing",
    "rebooting",
    "pause_before_installing",
    "pause_before_committing",
    "pause_before_rebooting",
]
DEVICE_FINAL = [
    "success",
    "failure",
    "noartifact",
    "already-installed",
    "aborted",
    "decommissioned",
]
DEVICE = DEVICE_ACTIVE + DEVICE_FINAL
# The client repeats and reorders its reports: any active status may follow any other active
# or final one; a final status is never left (a retry re-opens a record in the service, not
# through this table); a status never "moves" to itself (the service treats it as a no-op).
DEVICE_ALLOWED = {(a, b) for a in DEVICE_ACTIVE for b in DEVICE if a != b}


def test_the_device_deployment_table_covers_the_whole_vocabulary() -> None:
    assert sorted(DeviceDeploymentStatus.values) == sorted(DEVICE)
    assert set(ACTIVE_STATUSES) == set(DEVICE_ACTIVE)
    assert set(FINAL_STATUSES) == set(DEVICE_FINAL)
    assert len(transition_table(DEVICE, DEVICE_ALLOWED)) == 169
    assert len(DEVICE_ALLOWED) == 84


@pytest.mark.parametrize(
    ("current", "to", "allowed"), transition_table(DEVICE, DEVICE_ALLOWED)
)
def test_device_deployment_transition(current: str, to: str, allowed: bool) -> None:
    assert can_transition_device_deployment(current, to) is allowed


def test_every_active_device_deployment_status_can_end_in_every_final_one() -> None:
    for status, final in itertools.product(DEVICE_ACTIVE, DEVICE_FINAL):
        assert can_transition_device_deployment(status, final)
    for final, other in itertools.product(DEVICE_FINAL, DEVICE):
        assert not can_transition_device_deployment(final, other)
