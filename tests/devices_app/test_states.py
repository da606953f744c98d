"""Every allowed and every refused transition of the auth-set state machine, and the device
status every combination of auth sets gives (states.py).

The tables are written out by hand from Mender's deviceauth semantics, not derived from
states.py, so that a change to either has to be made twice, on purpose.
"""

from __future__ import annotations

import itertools

import pytest

from devices_app.states import (
    AuthSetStatus,
    DeviceStatus,
    can_transition_auth_set,
    device_status_from_auth_sets,
)
from tests.state_tables import transition_table

AUTH_SET = ["pending", "accepted", "rejected", "preauthorized"]
AUTH_SET_ALLOWED = {
    ("pending", "accepted"),
    ("pending", "rejected"),
    ("accepted", "rejected"),
    ("accepted", "pending"),  # dismissed back to pending by an operator
    ("rejected", "accepted"),
    ("rejected", "pending"),
    ("preauthorized", "accepted"),  # the device's first authentication with the set
    ("preauthorized", "rejected"),
}


def test_the_auth_set_table_covers_the_whole_vocabulary() -> None:
    assert sorted(AuthSetStatus.values) == sorted(AUTH_SET)
    assert len(transition_table(AUTH_SET, AUTH_SET_ALLOWED)) == 16
    assert len(AUTH_SET_ALLOWED) == 8


@pytest.mark.parametrize(
    ("current", "to", "allowed"), transition_table(AUTH_SET, AUTH_SET_ALLOWED)
)
def test_auth_set_transition(current: str, to: str, allowed: bool) -> None:
    # Nothing becomes preauthorized (only created so), preauthorized never goes back to
    # pending, and no status moves to itself.
    assert can_transition_auth_set(current, to) is allowed


# Every combination of a device's auth-set statuses: accepted wins, then preauthorized, then
# pending, then rejected; no auth set at all is noauth.
DEVICE_STATUS_OF_AUTH_SETS = [
    (set(), "noauth"),
    ({"pending"}, "pending"),
    ({"accepted"}, "accepted"),
    ({"rejected"}, "rejected"),
    ({"preauthorized"}, "preauthorized"),
    ({"pending", "accepted"}, "accepted"),
    ({"pending", "rejected"}, "pending"),
    ({"pending", "preauthorized"}, "preauthorized"),
    ({"accepted", "rejected"}, "accepted"),
    ({"accepted", "preauthorized"}, "accepted"),
    ({"rejected", "preauthorized"}, "preauthorized"),
    ({"pending", "accepted", "rejected"}, "accepted"),
    ({"pending", "accepted", "preauthorized"}, "accepted"),
    ({"pending", "rejected", "preauthorized"}, "preauthorized"),
    ({"accepted", "rejected", "preauthorized"}, "accepted"),
    ({"pending", "accepted", "rejected", "preauthorized"}, "accepted"),
]


def test_the_device_status_table_covers_every_combination() -> None:
    combinations = {
        frozenset(c) for n in range(5) for c in itertools.combinations(AUTH_SET, n)
    }
    assert {frozenset(s) for s, _ in DEVICE_STATUS_OF_AUTH_SETS} == combinations
    assert len(DEVICE_STATUS_OF_AUTH_SETS) == 16
    # decommissioned is set by decommissioning, never derived from auth sets
    derived = {expected for _, expected in DEVICE_STATUS_OF_AUTH_SETS}
    assert set(DeviceStatus.values) - derived == {"decommissioned"}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    DEVICE_STATUS_OF_AUTH_SETS,
    ids=lambda value: (
        "+".join(sorted(value)) or "none" if isinstance(value, set) else value
    ),
)
def test_device_status_from_auth_sets(statuses: set[str], expected: str) -> None:
    assert device_status_from_auth_sets(set(statuses)) == expected
