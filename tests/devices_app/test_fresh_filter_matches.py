"""Filter matches computed from the inventory itself, not from the worker-maintained membership."""

from __future__ import annotations

import pytest

from devices_app.filtering import parse_terms
from devices_app.models import DeviceFilter, FilterMembership
from devices_app.selectors import (
    count_devices_matching_terms,
    unevaluated_filters_matching_device,
)
from devices_app.services.memberships import evaluate_device_filter
from tests.devices_app.test_filtering import make_device

pytestmark = pytest.mark.django_db

RPI = [
    {"scope": "inventory", "attribute": "device_type", "type": "$eq", "value": "rpi"}
]
BIG = [{"scope": "inventory", "attribute": "ram", "type": "$gte", "value": 4}]


def test_count_devices_matching_terms_counts_accepted_matches_whatever_the_membership() -> (
    None
):
    # given: 2 accepted rpi devices, a pending and a decommissioned one, an x86; no membership
    make_device(inventory={"device_type": "rpi"})
    make_device(inventory={"device_type": ["rpi", "arm"]})
    make_device(status="pending", inventory={"device_type": "rpi"})
    make_device(status="decommissioned", inventory={"device_type": "rpi"})
    make_device(inventory={"device_type": "x86"})

    # when / then
    assert count_devices_matching_terms(terms=parse_terms(RPI)) == 2
    assert count_devices_matching_terms(terms=[]) == 3
    assert not FilterMembership.objects.exists()


def test_unevaluated_filters_matching_device_evaluates_only_unknown_memberships() -> (
    None
):
    # given: the device matches both filters, only one of which has been evaluated
    device = make_device(inventory={"device_type": "rpi", "ram": 8})
    other = make_device(inventory={"device_type": "x86", "ram": 8})
    fresh = DeviceFilter.objects.create(name="fresh", terms=RPI)
    big = DeviceFilter.objects.create(name="big", terms=BIG)
    evaluated = DeviceFilter.objects.create(name="evaluated", terms=RPI)
    evaluate_device_filter(filter_id=evaluated.id)
    all_ids = [fresh.id, big.id, evaluated.id]

    # when / then
    assert sorted(
        unevaluated_filters_matching_device(device_id=device.id, filter_ids=all_ids)
    ) == sorted([fresh.id, big.id])
    assert unevaluated_filters_matching_device(
        device_id=other.id, filter_ids=all_ids
    ) == [big.id]
    assert (
        unevaluated_filters_matching_device(
            device_id=device.id, filter_ids=[evaluated.id]
        )
        == []
    )
    assert unevaluated_filters_matching_device(device_id=device.id, filter_ids=[]) == []


def test_unevaluated_filters_matching_device_ignores_devices_that_are_not_accepted() -> (
    None
):
    pending = make_device(status="pending", inventory={"device_type": "rpi"})
    fresh = DeviceFilter.objects.create(name="fresh", terms=RPI)

    assert (
        unevaluated_filters_matching_device(device_id=pending.id, filter_ids=[fresh.id])
        == []
    )
