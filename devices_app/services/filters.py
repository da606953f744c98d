"""Saved inventory filters (Mender's dynamic groups): create, change, delete.

Their membership is materialised by workers (``devices_app.services.memberships``): every write
here dispatches a set-based evaluation after commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction

from config.errors import InvalidInput
from devices_app import dispatch
from devices_app.exceptions import DeviceFilterNameTaken, DeviceFilterNotFound
from devices_app.filtering import check_patterns_in_database, parse_terms
from devices_app.locks import device_filter_qs_for_update
from devices_app.models import DeviceFilter
from devices_app.services.memberships import lock_memberships

MAX_FILTER_NAME_LENGTH = 1024


def _validate_name(name: Any) -> str:
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > MAX_FILTER_NAME_LENGTH
    ):
        raise InvalidInput(
            f"filter name must be a non-blank string of at most {MAX_FILTER_NAME_LENGTH} characters"
        )
    return name


def _validated_terms(terms: Any) -> list[dict[str, Any]]:
    parsed = parse_terms(terms)
    check_patterns_in_database(parsed)
    return [term.as_dict() for term in parsed]


def _dispatch_evaluation(device_filter: DeviceFilter) -> None:
    dispatch.evaluate_device_filter_on_commit(device_filter.pk)


def create_device_filter(*, name: str, terms: Any) -> DeviceFilter:
    """Store a saved filter (400 on bad terms, 409 on a taken name); its membership follows."""
    name = _validate_name(name)
    stored_terms = _validated_terms(terms)
    try:
        with transaction.atomic():
            device_filter = DeviceFilter.objects.create(name=name, terms=stored_terms)
            _dispatch_evaluation(device_filter)
    except IntegrityError:
        raise DeviceFilterNameTaken(f"a filter named {name!r} exists already") from None
    return device_filter


def update_device_filter(
    *, filter_id: uuid.UUID, name: str | None = None, terms: Any = None
) -> DeviceFilter:
    """Rename a saved filter and/or replace its terms; a changed filter is re-evaluated."""
    new_name = _validate_name(name) if name is not None else None
    new_terms = _validated_terms(terms) if terms is not None else None
    try:
        with transaction.atomic():
            device_filter = device_filter_qs_for_update().filter(pk=filter_id).first()
            if device_filter is None:
                raise DeviceFilterNotFound("filter not found")
            if new_name is not None:
                device_filter.name = new_name
            if new_terms is not None and new_terms != device_filter.terms:
                device_filter.terms = new_terms
                device_filter.evaluated_ts = None
                _dispatch_evaluation(device_filter)
            device_filter.save()
    except IntegrityError:
        raise DeviceFilterNameTaken(f"a filter named {name!r} exists already") from None
    return device_filter


@transaction.atomic
def delete_device_filter(*, filter_id: uuid.UUID) -> None:
    """Delete a saved filter and its stored membership."""
    # Exclusive: no single-device re-check may be adding rows for this filter meanwhile.
    lock_memberships(exclusive=True)
    device_filter = DeviceFilter.objects.filter(pk=filter_id).first()
    if device_filter is None:
        raise DeviceFilterNotFound("filter not found")
    device_filter.delete()
