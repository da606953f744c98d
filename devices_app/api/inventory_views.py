"""Inventory API: the device's attribute upload, and management of inventory, groups and saved filters."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.pagination import page_slice, paging_headers, parse_page
from config.errors import InvalidInput
from config.timestamps import rfc3339
from devices_app import selectors
from devices_app.api import schema
from devices_app.api.authentication import DeviceAPIView, device_id_of
from devices_app.api.inventory_serializers import (
    DeviceFilterInputSerializer,
    DeviceFilterOutputSerializer,
    DeviceSearchInputSerializer,
    GroupInputSerializer,
    InventoryDeviceOutputSerializer,
)
from devices_app.filtering import (
    SCOPES,
    Term,
    check_patterns_in_database,
    parse_term,
    parse_terms,
    sort_expression,
)
from devices_app.services import filters as filter_services
from devices_app.services import groups as group_services
from devices_app.services import inventory as inventory_services
from devices_app.states import DeviceStatus

# --- device-facing -------------------------------------------------------------------------------


@schema.device_inventory_attributes
class DeviceInventoryAttributesView(DeviceAPIView):
    """``PUT|PATCH /api/devices/v1/inventory/device/attributes``: exactly 200 with an empty body."""

    def put(self, request: Request) -> HttpResponse:
        attributes = inventory_services.parse_attribute_list(
            request.data, scope="inventory"
        )
        inventory_services.replace_device_inventory(
            device_id=device_id_of(request), attributes=attributes
        )
        return HttpResponse(status=status.HTTP_200_OK)

    def patch(self, request: Request) -> HttpResponse:
        attributes = inventory_services.parse_attribute_list(
            request.data, scope="inventory"
        )
        inventory_services.merge_device_inventory(
            device_id=device_id_of(request), attributes=attributes
        )
        return HttpResponse(status=status.HTTP_200_OK)


# --- management v1 -------------------------------------------------------------------------------

V1_RESERVED_PARAMS = {"page", "per_page", "sort", "has_group", "group"}


def _scoped_name(key: str, default_scope: str = "inventory") -> tuple[str, str]:
    scope, _, attribute = key.partition("/")
    if attribute and scope in SCOPES:
        return scope, attribute
    return default_scope, key


def _v1_sort(raw: str | None) -> list[tuple[str, str, bool]]:
    sort = []
    for item in (raw or "").split(","):
        if not item:
            continue
        name, _, direction = item.rpartition(":")
        if not name or direction not in ("asc", "desc"):
            name, direction = item, "asc"
        scope, attribute = _scoped_name(name)
        sort_expression(scope, attribute)  # validates scope/attribute (400)
        sort.append((scope, attribute, direction == "desc"))
    return sort


def _v1_has_group(raw: str | None) -> bool | None:
    if raw is None or raw == "":
        return None
    if raw.lower() not in ("true", "false"):
        raise InvalidInput("has_group must be true or false")
    return raw.lower() == "true"


@schema.inventory_device_list
class InventoryDeviceListView(APIView):
    """``GET /api/management/v1/inventory/devices``: ``attr=value`` (or ``scope/attr=value``) filters."""

    def get(self, request: Request) -> Response:
        page = parse_page(request.query_params)
        terms = [
            parse_term(
                {
                    "scope": _scoped_name(key)[0],
                    "attribute": _scoped_name(key)[1],
                    "type": "$eq",
                    "value": value,
                },
                index,
            )
            for index, (key, value) in enumerate(request.query_params.items())
            if key not in V1_RESERVED_PARAMS
        ]
        group = request.query_params.get("group") or None
        devices = selectors.search_inventory_devices(
            terms=terms,
            sort=_v1_sort(request.query_params.get("sort")),
            group=group,
            has_group=_v1_has_group(request.query_params.get("has_group")),
        )
        total = devices.count()
        data = InventoryDeviceOutputSerializer(
            page_slice(devices, page), many=True
        ).data
        return Response(data, headers=paging_headers(request, page, total))


@schema.inventory_device_detail
class InventoryDeviceDetailView(APIView):
    """``GET|DELETE /api/management/v1/inventory/devices/{id}`` (GET carries the tags ``ETag``)."""

    def get(self, request: Request, device_id: Any) -> Response:
        device = selectors.get_inventory_device(device_id=device_id)
        headers = {"ETag": str(device.tags_etag)} if device.tags_etag else {}
        return Response(InventoryDeviceOutputSerializer(device).data, headers=headers)

    def delete(self, request: Request, device_id: Any) -> Response:
        inventory_services.clear_device_inventory(device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.device_tags
class DeviceTagsView(APIView):
    """``PUT`` (replace) / ``PATCH`` (merge) ``/api/management/v1/inventory/devices/{id}/tags``."""

    def _write(self, request: Request, device_id: Any, *, replace: bool) -> Response:
        tags = inventory_services.parse_attribute_list(
            request.data, scope="tags", strings_only=True
        )
        write = (
            inventory_services.replace_device_tags
            if replace
            else inventory_services.merge_device_tags
        )
        write(device_id=device_id, tags=tags, if_match=request.headers.get("If-Match"))
        return Response(status=status.HTTP_200_OK)

    def put(self, request: Request, device_id: Any) -> Response:
        return self._write(request, device_id, replace=True)

    def patch(self, request: Request, device_id: Any) -> Response:
        return self._write(request, device_id, replace=False)


@schema.device_group
class DeviceGroupView(APIView):
    """``GET|PUT /api/management/v1/inventory/devices/{id}/group``."""

    def get(self, request: Request, device_id: Any) -> Response:
        return Response({"group": selectors.get_device_group(device_id=device_id)})

    def put(self, request: Request, device_id: Any) -> Response:
        payload = GroupInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        group_services.set_device_group(
            device_id=device_id, group_name=payload.validated_data["group"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.device_group_membership
class DeviceGroupMembershipView(APIView):
    """``DELETE /api/management/v1/inventory/devices/{id}/group/{name}``."""

    def delete(self, request: Request, device_id: Any, group_name: str) -> Response:
        group_services.clear_device_group(device_id=device_id, group_name=group_name)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _status_param(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in DeviceStatus.values:
        raise InvalidInput(f"invalid status filter: {raw}")
    return raw


@schema.group_list
class GroupListView(APIView):
    """``GET /api/management/v1/inventory/groups`` → ``["g1", …]``."""

    def get(self, request: Request) -> Response:
        status_filter = _status_param(request.query_params.get("status"))
        return Response(selectors.list_groups(status=status_filter))


@schema.group_detail
class GroupDetailView(APIView):
    """``DELETE /api/management/v1/inventory/groups/{name}`` → ``{"updated_count": n}``."""

    def delete(self, request: Request, group_name: str) -> Response:
        updated = group_services.delete_group(group_name=group_name)
        return Response({"updated_count": updated})


@schema.group_devices
class GroupDevicesView(APIView):
    """``GET`` (paged ids) / ``PATCH`` (add) / ``DELETE`` (remove) ``…/groups/{name}/devices``."""

    def get(self, request: Request, group_name: str) -> Response:
        page = parse_page(request.query_params)
        group_services.validate_group_name(group_name)
        members = selectors.list_group_device_ids(group_name=group_name)
        total = members.count()
        ids = [str(pk) for pk in page_slice(members.values_list("id", flat=True), page)]
        return Response(ids, headers=paging_headers(request, page, total))

    def patch(self, request: Request, group_name: str) -> Response:
        result = group_services.add_devices_to_group(
            group_name=group_name,
            device_ids=group_services.parse_device_ids(request.data),
        )
        return Response(
            {
                "updated_count": result.updated_count,
                "matched_count": result.matched_count,
            }
        )

    def delete(self, request: Request, group_name: str) -> Response:
        result = group_services.remove_devices_from_group(
            group_name=group_name,
            device_ids=group_services.parse_device_ids(request.data),
        )
        return Response(
            {
                "updated_count": result.updated_count,
                "matched_count": result.matched_count,
            }
        )


# --- management v2 -------------------------------------------------------------------------------


@schema.filter_attributes
class FilterAttributesView(APIView):
    """``GET /api/management/v2/inventory/filters/attributes`` → ``[{name, scope, count}]``."""

    def get(self, request: Request) -> Response:
        return Response(selectors.list_filter_attributes())


@schema.device_search
class DeviceSearchView(APIView):
    """``POST /api/management/v2/inventory/filters/search``: devices matching terms, sorted, paged."""

    def post(self, request: Request) -> Response:
        payload = DeviceSearchInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        terms: list[Term] = parse_terms(data["filters"], allow_empty=True)
        check_patterns_in_database(terms)
        sort = []
        for item in data["sort"]:
            sort_expression(item["scope"], item["attribute"])
            sort.append((item["scope"], item["attribute"], item["order"] == "desc"))
        only = None
        if data.get("attributes"):
            only = {(a["scope"], a["attribute"]) for a in data["attributes"]}
        page = parse_page({"page": data["page"], "per_page": data["per_page"]})
        devices = selectors.search_inventory_devices(
            terms=terms, sort=sort, text=data.get("text", "")
        )
        total = devices.count()
        body = InventoryDeviceOutputSerializer(
            page_slice(devices, page), many=True, context={"only": only}
        ).data
        # The query is in the body, so links could not carry it: Mender sends the count only.
        return Response(body, headers={"X-Total-Count": str(total)})


@schema.device_filter_search
class DeviceFilterSearchView(APIView):
    """``GET /api/management/v2/inventory/filters/{id}/search``: run a saved filter, paged."""

    def get(self, request: Request, filter_id: Any) -> Response:
        page = parse_page(request.query_params)
        device_filter = selectors.get_device_filter(filter_id=filter_id)
        # Evaluated now from the inventory, like a search: right even before the worker ran.
        devices = selectors.search_inventory_devices(
            terms=parse_terms(device_filter.terms)
        )
        total = devices.count()
        body = InventoryDeviceOutputSerializer(
            page_slice(devices, page), many=True
        ).data
        return Response(body, headers=paging_headers(request, page, total))


def _filter_detail(device_filter: Any) -> dict[str, Any]:
    body = dict(DeviceFilterOutputSerializer(device_filter).data)
    body["member_count"] = selectors.filter_member_count(filter_id=device_filter.id)
    body["evaluated_ts"] = (
        rfc3339(device_filter.evaluated_ts) if device_filter.evaluated_ts else None
    )
    return body


@schema.device_filter_list
class DeviceFilterListView(APIView):
    """``GET|POST /api/management/v2/inventory/filters`` (saved filters = dynamic groups)."""

    def get(self, request: Request) -> Response:
        page = parse_page(request.query_params)
        filters = selectors.list_device_filters()
        total = filters.count()
        data = DeviceFilterOutputSerializer(page_slice(filters, page), many=True).data
        return Response(data, headers=paging_headers(request, page, total))

    def post(self, request: Request) -> Response:
        payload = DeviceFilterInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        device_filter = filter_services.create_device_filter(**payload.validated_data)
        return Response(
            DeviceFilterOutputSerializer(device_filter).data,
            status=status.HTTP_201_CREATED,
            headers={
                "Location": f"./management/v2/inventory/filters/{device_filter.id}"
            },
        )


@schema.device_filter_detail
class DeviceFilterDetailView(APIView):
    """``GET|DELETE /api/management/v2/inventory/filters/{id}`` (GET adds ``member_count``)."""

    def get(self, request: Request, filter_id: Any) -> Response:
        device_filter = selectors.get_device_filter(filter_id=filter_id)
        return Response(_filter_detail(device_filter))

    def delete(self, request: Request, filter_id: Any) -> Response:
        filter_services.delete_device_filter(filter_id=filter_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
