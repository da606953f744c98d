"""OpenAPI description of the deviceauth and inventory endpoints (names and shapes after Mender's specs).

Each name below decorates one view class (``@schema.device_list``); the serializers here only
describe shapes the views build by hand, they validate nothing.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers

from config.api.schema import (
    EMPTY_OK,
    JWT_RESPONSE,
    LOCATION_HEADER,
    PAGE_HEADERS,
    array_of,
    bearer_jwt,
    creation,
    error,
    no_content,
    paged_list,
)
from devices_app.api.devauth_serializers import (
    DEVICE_STATUS_FILTERS,
    AuthSetOutputSerializer,
    AuthSetStatusInputSerializer,
    DeviceOutputSerializer,
    PreauthorizeInputSerializer,
)
from devices_app.api.inventory_serializers import (
    DeviceFilterOutputSerializer,
    DeviceSearchInputSerializer,
)
from devices_app.filtering import SCOPES
from devices_app.states import DeviceStatus

DEVICE_AUTH = "DeviceToken"


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "devices_app.api.authentication.DeviceTokenAuthentication"
    name = DEVICE_AUTH

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return bearer_jwt(
            "Device token from POST /api/devices/v1/authentication/auth_requests."
        )


class AuthSetSerializer(AuthSetOutputSerializer):
    class Meta(AuthSetOutputSerializer.Meta):
        ref_name = "AuthSet"


class DeviceSerializer(DeviceOutputSerializer):
    auth_sets = AuthSetSerializer(many=True, read_only=True)

    class Meta(DeviceOutputSerializer.Meta):
        ref_name = "Device"


# ---------------------------------------------------------------- deviceauth


class AuthRequestSerializer(serializers.Serializer):
    id_data = serializers.CharField(help_text="The identity attributes, JSON-encoded.")
    pubkey = serializers.CharField(help_text="The device's public key (PEM).")
    tenant_token = serializers.CharField(required=False, allow_blank=True)

    class Meta:
        ref_name = "AuthRequest"


class DevicePingSerializer(serializers.Serializer):
    id = serializers.UUIDField()

    class Meta:
        ref_name = "DevicePing"


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()

    class Meta:
        ref_name = "Count"


class StatusSerializer(serializers.Serializer):
    status = serializers.CharField()

    class Meta:
        ref_name = "Status"


class LimitSerializer(serializers.Serializer):
    limit = serializers.IntegerField()

    class Meta:
        ref_name = "Limit"


STATUS_PARAMETER = OpenApiParameter(
    "status", str, enum=list(DeviceStatus.values), description="Device status."
)
# devauth no longer lists decommissioned devices, so it refuses that status.
DEVAUTH_STATUS_PARAMETER = OpenApiParameter(
    "status", str, enum=DEVICE_STATUS_FILTERS, description="Device status."
)

auth_request = extend_schema_view(
    post=extend_schema(
        summary="Device authentication request",
        tags=["devauth"],
        request=AuthRequestSerializer,
        auth=[],
        parameters=[
            OpenApiParameter(
                "X-MEN-Signature",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Base64 signature of the body with the device key.",
            )
        ],
        responses={
            (200, "application/jwt"): JWT_RESPONSE,
            401: error("Unknown, pending or rejected device, or a bad signature."),
        },
    )
)
device_ping = extend_schema_view(
    get=extend_schema(
        summary="Flotilla: check a device token", responses=DevicePingSerializer
    ),
    post=extend_schema(
        summary="Flotilla: check a device token",
        request=None,
        responses=DevicePingSerializer,
    ),
)
device_list = extend_schema_view(
    get=paged_list(
        "List devices",
        DeviceSerializer(many=True),
        OpenApiParameter(
            "status",
            str,
            enum=DEVICE_STATUS_FILTERS,
            many=True,
            description="Device statuses (any of them).",
        ),
        OpenApiParameter("id", str, many=True, description="Device ids."),
    ),
    post=creation(
        "Preauthorize a device",
        PreauthorizeInputSerializer,
        "Device preauthorized.",
        {409: "The identity already exists."},
    ),
)


def _string_or_strings(
    description: str, enum: list[str] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string"} | ({"enum": enum} if enum else {})
    return {
        "oneOf": [item, {"type": "array", "items": item}],
        "description": description,
    }


def _repeated(description: str, enum: list[str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string"} | ({"enum": enum} if enum else {})
    return {"type": "array", "items": item, "description": description}


_STATUS_FILTER = "Device statuses (any of them)."
_ID_FILTER = "Device ids (any of them); one that is no UUID matches no device."
devauth_device_search = extend_schema_view(
    post=paged_list(
        "Search devices: the list's filters in the body",
        DeviceSerializer(many=True),
        request={
            "application/json": {
                "type": "object",
                "properties": {
                    "status": _string_or_strings(_STATUS_FILTER, DEVICE_STATUS_FILTERS),
                    "id": _string_or_strings(_ID_FILTER),
                },
            },
            "application/x-www-form-urlencoded": {
                "type": "object",
                "properties": {
                    "status": _repeated(_STATUS_FILTER, DEVICE_STATUS_FILTERS),
                    "id": _repeated(_ID_FILTER),
                },
            },
        },
    )
)
device_detail = extend_schema_view(
    get=extend_schema(summary="Get a device", responses=DeviceSerializer),
    delete=no_content("Decommission a device"),
)
device_count = extend_schema_view(
    get=extend_schema(
        summary="Count devices",
        parameters=[DEVAUTH_STATUS_PARAMETER],
        responses=CountSerializer,
    )
)
auth_set_status = extend_schema_view(
    get=extend_schema(summary="Get an auth set's status", responses=StatusSerializer),
    put=no_content(
        "Accept, reject or dismiss an auth set", AuthSetStatusInputSerializer
    ),
)
auth_set_detail = extend_schema_view(delete=no_content("Remove an auth set"))
token_detail = extend_schema_view(delete=no_content("Revoke a device token"))
device_limit = extend_schema_view(
    get=extend_schema(
        summary="Maximum number of accepted devices (0: no limit)",
        responses=LimitSerializer,
    )
)


# ---------------------------------------------------------------- inventory


class AttributeSerializer(serializers.Serializer):
    name = serializers.CharField()
    scope = serializers.ChoiceField(choices=SCOPES)
    value = serializers.JSONField(help_text="A string, a number or an array of them.")

    class Meta:
        ref_name = "Attribute"


class AttributeInputSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.JSONField()
    description = serializers.CharField(required=False)
    scope = serializers.CharField(required=False)

    class Meta:
        ref_name = "AttributeInput"


class DeviceInventorySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    attributes = AttributeSerializer(many=True)
    updated_ts = serializers.DateTimeField()

    class Meta:
        ref_name = "DeviceInventory"


class GroupSerializer(serializers.Serializer):
    group = serializers.CharField()

    class Meta:
        ref_name = "Group"


class DeviceGroupSerializer(serializers.Serializer):
    group = serializers.CharField(allow_null=True)

    class Meta:
        ref_name = "DeviceGroup"


class UpdatedCountSerializer(serializers.Serializer):
    updated_count = serializers.IntegerField()

    class Meta:
        ref_name = "UpdatedCount"


class GroupUpdateSerializer(serializers.Serializer):
    updated_count = serializers.IntegerField()
    matched_count = serializers.IntegerField()

    class Meta:
        ref_name = "GroupUpdate"


class FilterAttributeSerializer(serializers.Serializer):
    name = serializers.CharField()
    scope = serializers.ChoiceField(choices=SCOPES)
    count = serializers.IntegerField()

    class Meta:
        ref_name = "FilterAttribute"


class FilterTermSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=SCOPES)
    attribute = serializers.CharField()
    type = serializers.CharField(help_text="$eq, $ne, $in, $nin, $gt, …")
    value = serializers.JSONField(required=False)

    class Meta:
        ref_name = "FilterPredicate"


class FilterInputSerializer(serializers.Serializer):
    name = serializers.CharField()
    terms = FilterTermSerializer(many=True)

    class Meta:
        ref_name = "FilterDefinition"


class FilterSerializer(DeviceFilterOutputSerializer):
    class Meta(DeviceFilterOutputSerializer.Meta):
        ref_name = "Filter"


class FilterDetailSerializer(DeviceFilterOutputSerializer):
    member_count = serializers.IntegerField()
    evaluated_ts = serializers.DateTimeField(allow_null=True)

    class Meta(DeviceFilterOutputSerializer.Meta):
        fields = [
            *DeviceFilterOutputSerializer.Meta.fields,
            "member_count",
            "evaluated_ts",
        ]
        ref_name = "FilterDetail"


INVENTORY_SORT = OpenApiParameter(
    "sort", str, description="attribute[:asc|:desc], comma separated."
)
attributes_request = {"application/json": AttributeInputSerializer(many=True)}
device_ids_request = {"application/json": array_of("string", "uuid")}

device_inventory_attributes = extend_schema_view(
    put=extend_schema(
        summary="Replace the device's inventory",
        request=attributes_request,
        responses=EMPTY_OK,
    ),
    patch=extend_schema(
        summary="Update the device's inventory",
        request=attributes_request,
        responses=EMPTY_OK,
    ),
)
inventory_device_list = extend_schema_view(
    get=paged_list(
        "List devices' inventories",
        DeviceInventorySerializer(many=True),
        INVENTORY_SORT,
        OpenApiParameter("has_group", bool),
        OpenApiParameter("group", str),
        description="Any other query parameter `attr=value` (or `scope/attr=value`) filters by that attribute.",
    )
)
inventory_device_detail = extend_schema_view(
    get=extend_schema(
        summary="Get a device's inventory",
        parameters=[
            OpenApiParameter(
                "ETag",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description="Version of the device's tags (for If-Match).",
            )
        ],
        responses=DeviceInventorySerializer,
    ),
    delete=no_content("Remove a device's inventory"),
)
_tags_write: dict[str, Any] = {
    "request": attributes_request,
    "parameters": [
        OpenApiParameter(
            "If-Match", str, OpenApiParameter.HEADER, description="Expected ETag."
        )
    ],
    "responses": {
        **EMPTY_OK,
        412: error("If-Match does not match the tags' version."),
    },
}
device_tags = extend_schema_view(
    put=extend_schema(summary="Replace a device's tags", **_tags_write),
    patch=extend_schema(summary="Add or update a device's tags", **_tags_write),
)
device_group = extend_schema_view(
    get=extend_schema(summary="Get a device's group", responses=DeviceGroupSerializer),
    put=no_content("Put a device in a group", GroupSerializer),
)
device_group_membership = extend_schema_view(
    delete=no_content("Take a device out of its group")
)
group_list = extend_schema_view(
    get=extend_schema(
        summary="List static groups",
        parameters=[STATUS_PARAMETER],
        responses={200: array_of("string")},
    )
)
group_detail = extend_schema_view(
    delete=extend_schema(
        summary="Delete a group", responses={200: UpdatedCountSerializer}
    )
)
group_devices = extend_schema_view(
    get=paged_list("List the device ids of a group", {200: array_of("string", "uuid")}),
    patch=extend_schema(
        summary="Add devices to a group",
        request=device_ids_request,
        responses=GroupUpdateSerializer,
    ),
    delete=extend_schema(
        summary="Remove devices from a group",
        request=device_ids_request,
        responses={200: GroupUpdateSerializer},
    ),
)
filter_attributes = extend_schema_view(
    get=extend_schema(
        summary="Attributes known to the inventory, with device counts",
        responses=FilterAttributeSerializer(many=True),
    )
)


class InventorySearchSerializer(DeviceSearchInputSerializer):
    text = serializers.CharField(
        allow_blank=True,
        required=False,
        max_length=4096,
        help_text=(
            "Free text: keeps the devices holding any of its words (letters and digits) in "
            "their id, group or attribute values, best matches first (instead of `sort`)."
        ),
    )

    class Meta:
        ref_name = "InventorySearch"


# The query is in the body, so no Link header could carry it: the count only.
TOTAL_COUNT_HEADER = PAGE_HEADERS[0]
device_search = extend_schema_view(
    post=extend_schema(
        summary="Search devices' inventories",
        request=InventorySearchSerializer,
        parameters=[TOTAL_COUNT_HEADER],
        responses=DeviceInventorySerializer(many=True),
    )
)
device_filter_list = extend_schema_view(
    get=paged_list("List saved filters", FilterSerializer(many=True)),
    post=extend_schema(
        summary="Save a filter (dynamic group)",
        request=FilterInputSerializer,
        parameters=[LOCATION_HEADER],
        responses={201: FilterSerializer},
    ),
)
device_filter_detail = extend_schema_view(
    get=extend_schema(summary="Get a saved filter", responses=FilterDetailSerializer),
    delete=no_content("Delete a saved filter"),
)
device_filter_search = extend_schema_view(
    get=paged_list(
        "Devices a saved filter matches now", DeviceInventorySerializer(many=True)
    )
)
