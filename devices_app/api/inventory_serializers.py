"""Inventory API shapes: device attributes out, groups / saved filters / searches in."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.timestamps import rfc3339
from devices_app.filtering import SCOPES, device_document
from devices_app.models import Device, DeviceFilter

SCOPE_ORDER = ("identity", "inventory", "system", "tags")


def device_attribute_list(
    device: Device, *, only: set[tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    """Mender's ``[{name, scope, value}]`` for every attribute (or only the requested ones)."""
    document = device_document(device)
    return [
        {"name": name, "scope": scope, "value": document[scope][name]}
        for scope in SCOPE_ORDER
        for name in sorted(document[scope])
        if only is None or (scope, name) in only
    ]


class InventoryDeviceOutputSerializer(serializers.BaseSerializer):
    """``{id, attributes: [{name, scope, value}], updated_ts}``."""

    def to_representation(self, device: Device) -> dict[str, Any]:
        only = self.context.get("only")
        return {
            "id": str(device.id),
            "attributes": device_attribute_list(device, only=only),
            "updated_ts": rfc3339(device.updated_ts),
        }


class GroupInputSerializer(serializers.Serializer):
    # Not CharField: it would turn 5 into "5"; the service requires a real string name.
    group = serializers.JSONField()


class DeviceFilterInputSerializer(serializers.Serializer):
    name = serializers.JSONField()
    # Shape and semantics of the terms are checked by devices_app.filtering (precise 400s).
    terms = serializers.JSONField()


class DeviceFilterOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeviceFilter
        fields = ["id", "name", "terms"]


class SortInputSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=SCOPES)
    attribute = serializers.CharField(max_length=1024)
    order = serializers.ChoiceField(choices=["asc", "desc"], default="asc")


class AttributeSelectionInputSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=SCOPES)
    attribute = serializers.CharField(max_length=1024)


class DeviceSearchInputSerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=500, default=20)
    filters = serializers.JSONField(default=list)  # type: ignore[arg-type]  # the stubs allow only mapping defaults
    sort = SortInputSerializer(many=True, required=False, default=list)
    attributes = AttributeSelectionInputSerializer(many=True, required=False)
    text = serializers.CharField(allow_blank=True, required=False, max_length=4096)
