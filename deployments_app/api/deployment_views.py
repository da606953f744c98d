"""Deployments: the device-facing update API and the deployments management API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpResponse
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.pagination import page_slice, paging_headers, parse_page
from config.errors import InvalidInput
from config.timestamps import rfc3339
from deployments_app.api import schema
from deployments_app.api.deployment_serializers import (
    AbortInputSerializer,
    DeploymentCreateInputSerializer,
    DynamicDeploymentCreateInputSerializer,
    GroupDeploymentCreateInputSerializer,
    StatisticsListInputSerializer,
    StatusReportInputSerializer,
    deployment_output,
    device_deployment_output,
)
from deployments_app.api.links import public_base_url
from deployments_app.exceptions import DeploymentNotFound
from deployments_app.models import Deployment
from deployments_app.selectors import deployments as selectors
from deployments_app.selectors.deployments import deployment_statistics
from deployments_app.services import (
    assignment,
    creation,
    device_lifecycle,
    logs,
    transitions,
)
from deployments_app.services.artifacts import artifact_download_link
from deployments_app.states import DeploymentStatus, statuses_for_filter
from devices_app.api.authentication import DeviceAPIView, device_id_of

# ---------------------------------------------------------------- device-facing


def _instructions_response(
    request: Request, instructions: assignment.Instructions | None
) -> Response:
    if instructions is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    artifact = instructions.artifact
    uri, expire = artifact_download_link(
        artifact=artifact, base_url=public_base_url(request)
    )
    return Response(
        {
            "id": instructions.deployment_id,
            "artifact": {
                "id": str(artifact.id),
                "artifact_name": artifact.name,
                "source": {
                    "uri": uri,
                    "expire": rfc3339(expire),
                },
                "device_types_compatible": artifact.device_types_compatible,
            },
        }
    )


def _json_object(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise ParseError("request body must be a JSON object")
    return data


def _poll_response(request: Request, provides: Any) -> Response:
    """Answer a device poll from its provides map (artifact_name and device_type included)."""
    if not isinstance(provides, dict):
        raise InvalidInput("device provides must be an object")
    poll = assignment.build_poll_request(
        artifact_name=provides.get("artifact_name"),
        device_type=provides.get("device_type"),
        provides=provides,
    )
    instructions = assignment.assign_next_deployment(
        device_id=device_id_of(request), request=poll
    )
    return _instructions_response(request, instructions)


@schema.next_deployment_v2
class NextDeploymentV2View(DeviceAPIView):
    """``POST /api/devices/v2/deployments/device/deployments/next`` with ``device_provides``."""

    def post(self, request: Request) -> Response:
        return _poll_response(request, _json_object(request).get("device_provides"))


@schema.next_deployment_v1
class NextDeploymentV1View(DeviceAPIView):
    """``POST`` (flat provides) and ``GET ?artifact_name=&device_type=`` on v1 ``.../next``."""

    def post(self, request: Request) -> Response:
        return _poll_response(request, _json_object(request))

    def get(self, request: Request) -> Response:
        params = request.query_params
        return _poll_response(
            request,
            {
                "artifact_name": params.get("artifact_name"),
                "device_type": params.get("device_type"),
            },
        )


@schema.device_deployment_status
class DeviceDeploymentStatusView(DeviceAPIView):
    """``PUT /api/devices/v1/deployments/device/deployments/{id}/status`` → exactly 204."""

    def put(self, request: Request, deployment_id: Any) -> Response:
        payload = StatusReportInputSerializer(data=_json_object(request))
        payload.is_valid(raise_exception=True)
        transitions.report_device_deployment_status(
            device_id=device_id_of(request),
            deployment_id=deployment_id,
            status=payload.validated_data["status"],
            substate=payload.validated_data["substate"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.device_deployment_log
class DeviceDeploymentLogView(DeviceAPIView):
    """``PUT /api/devices/v1/deployments/device/deployments/{id}/log`` → 204."""

    def put(self, request: Request, deployment_id: Any) -> Response:
        logs.save_device_deployment_log(
            device_id=device_id_of(request),
            deployment_id=deployment_id,
            messages=_json_object(request).get("messages"),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- management


def _created_response(deployment: Deployment, version: str) -> Response:
    return Response(
        status=status.HTTP_201_CREATED,
        headers={
            "Location": f"./management/{version}/deployments/deployments/{deployment.id}"
        },
    )


@schema.deployment_list
class DeploymentListView(APIView):
    """``GET``/``POST /api/management/v1/deployments/deployments``."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        page = parse_page(params)
        deployments = selectors.list_deployments(
            statuses=_deployment_status_filter(params.get("status")),
            search=params.get("search") or None,
            created_after=_unix_time(params.get("created_after"), "created_after"),
            created_before=_unix_time(params.get("created_before"), "created_before"),
            newest_first=_is_newest_first(params.get("sort")),
        ).prefetch_related("phases")
        if _deployment_type(params.get("type")) == "configuration":
            deployments = deployments.none()  # Flotilla has software deployments only
        total = deployments.count()
        items = list(page_slice(deployments, page))
        stats = deployment_statistics(deployment_ids=[d.pk for d in items])
        data = [deployment_output(d, stats[str(d.pk)]) for d in items]
        return Response(data, headers=paging_headers(request, page, total))

    def post(self, request: Request) -> Response:
        payload = DeploymentCreateInputSerializer(data=_json_object(request))
        payload.is_valid(raise_exception=True)
        deployment = creation.create_deployment(
            **payload.validated_data, created_by=request.user
        )
        return _created_response(deployment, "v1")


@schema.group_deployment_create
class GroupDeploymentCreateView(APIView):
    """``POST /api/management/v1/deployments/deployments/group/{name}``."""

    def post(self, request: Request, group_name: str) -> Response:
        payload = GroupDeploymentCreateInputSerializer(data=_json_object(request))
        payload.is_valid(raise_exception=True)
        deployment = creation.create_deployment(
            **payload.validated_data, group=group_name, created_by=request.user
        )
        return _created_response(deployment, "v1")


@schema.dynamic_deployment_create
class DynamicDeploymentCreateView(APIView):
    """``POST /api/management/v2/deployments/deployments`` with a saved filter."""

    def post(self, request: Request) -> Response:
        payload = DynamicDeploymentCreateInputSerializer(data=_json_object(request))
        payload.is_valid(raise_exception=True)
        deployment = creation.create_deployment(
            **payload.validated_data, created_by=request.user
        )
        return _created_response(deployment, "v2")


def _deployment_status_filter(value: str | None) -> list[str] | None:
    if not value:
        return None
    if value == "aborted":
        return [DeploymentStatus.FINISHED]
    if value not in DeploymentStatus.values:
        raise InvalidInput(f"invalid status filter: {value}")
    return [value]


def _is_newest_first(value: str | None) -> bool:
    """Mender's ``sort``: ``asc`` or ``desc`` (the default), any case; anything else is a 400."""
    direction = (value or "desc").lower()
    if direction not in ("asc", "desc"):
        raise InvalidInput('invalid form value: must be one of "asc" or "desc"')
    return direction == "desc"


def _deployment_type(value: str | None) -> str | None:
    """Mender's ``type`` filter: ``software`` or ``configuration`` (None: both)."""
    if not value:
        return None
    if value not in ("software", "configuration"):
        raise InvalidInput(f"unknown deployment type {value}")
    return value


def _unix_time(value: str | None, name: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"Can't parse param {name}") from None


@schema.deployment_detail
class DeploymentDetailView(APIView):
    def get(self, request: Request, deployment_id: Any) -> Response:
        deployment = selectors.get_deployment(deployment_id=deployment_id)
        stats = deployment_statistics(deployment_ids=[deployment.pk])[
            str(deployment.pk)
        ]
        return Response(deployment_output(deployment, stats))


@schema.deployment_status
class DeploymentStatusView(APIView):
    """``PUT .../deployments/{id}/status`` ``{"status": "aborted"}`` → 204."""

    def put(self, request: Request, deployment_id: Any) -> Response:
        payload = AbortInputSerializer(data=_json_object(request))
        payload.is_valid(raise_exception=True)
        transitions.abort_deployment(deployment_id=deployment_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.deployment_statistics
class DeploymentStatisticsView(APIView):
    def get(self, request: Request, deployment_id: Any) -> Response:
        deployment = selectors.get_deployment(deployment_id=deployment_id)
        return Response(
            deployment_statistics(deployment_ids=[deployment.pk])[str(deployment.pk)][
                "status"
            ]
        )


@schema.deployment_statistics_list
class DeploymentStatisticsListView(APIView):
    def post(self, request: Request) -> Response:
        payload = StatisticsListInputSerializer(data=_json_object(request))
        payload.is_valid(raise_exception=True)
        ids = payload.validated_data["deployment_ids"]
        if not ids:
            return Response({})
        found = list(Deployment.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if not found:
            raise DeploymentNotFound("deployments not found")
        stats = deployment_statistics(deployment_ids=found)
        return Response(
            [{"id": str(pk), "stats": stats[str(pk)]["status"]} for pk in found]
        )


def _device_status_filter(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    statuses = statuses_for_filter(value)
    if statuses is None:
        raise InvalidInput(f"invalid status filter: {value}")
    return statuses


@schema.deployment_devices
class DeploymentDevicesView(APIView):
    """``GET .../deployments/{id}/devices`` (unpaged, deprecated in Mender)."""

    def get(self, request: Request, deployment_id: Any) -> Response:
        deployment = selectors.get_deployment(deployment_id=deployment_id)
        records = selectors.list_deployment_devices(deployment_id=deployment.pk)
        return Response(
            [device_deployment_output(r, retries=deployment.retries) for r in records]
        )


@schema.deployment_devices_list
class DeploymentDevicesListView(APIView):
    """``GET .../deployments/{id}/devices/list`` (paged, status filter)."""

    def get(self, request: Request, deployment_id: Any) -> Response:
        deployment = selectors.get_deployment(deployment_id=deployment_id)
        page = parse_page(request.query_params)
        records = selectors.list_deployment_devices(
            deployment_id=deployment.pk,
            statuses=_device_status_filter(request.query_params.get("status")),
        )
        total = records.count()
        data = [
            device_deployment_output(r, retries=deployment.retries)
            for r in page_slice(records, page)
        ]
        return Response(data, headers=paging_headers(request, page, total))


@schema.deployment_device_list
class DeploymentDeviceListView(APIView):
    """``GET .../deployments/{id}/device_list``: the static target list."""

    def get(self, request: Request, deployment_id: Any) -> Response:
        deployment = selectors.get_deployment(deployment_id=deployment_id)
        return Response(selectors.deployment_target_ids(deployment=deployment))


@schema.device_deployment_log_management
class DeviceDeploymentLogManagementView(APIView):
    """``GET .../deployments/{id}/devices/{device_id}/log`` as text."""

    def get(self, request: Request, deployment_id: Any, device_id: Any) -> HttpResponse:
        messages = selectors.get_device_deployment_log(
            deployment_id=deployment_id, device_id=device_id
        )
        return HttpResponse(
            logs.format_log(messages), content_type="text/plain; charset=utf-8"
        )


@schema.device_deployment_history
class DeviceDeploymentHistoryView(APIView):
    """``GET .../deployments/devices/{device_id}``: a device's deployments, newest first."""

    def get(self, request: Request, device_id: Any) -> Response:
        page = parse_page(request.query_params, max_per_page=20)
        records = selectors.device_deployment_history(
            device_id=device_id,
            statuses=_device_status_filter(request.query_params.get("status")),
        )
        total = records.count()
        items = list(page_slice(records, page))
        stats = deployment_statistics(deployment_ids={r.deployment_id for r in items})
        data = [
            {
                "id": str(r.id),
                "deployment": deployment_output(
                    r.deployment, stats[str(r.deployment_id)]
                ),
                "device": device_deployment_output(r, retries=r.deployment.retries),
            }
            for r in items
        ]
        return Response(data, headers=paging_headers(request, page, total))

    def delete(self, request: Request, device_id: Any) -> Response:
        """``DELETE .../deployments/devices/{device_id}``: abort the device's unfinished deployments."""
        device_lifecycle.abort_device_deployments(device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.device_deployment_history_reset
class DeviceDeploymentHistoryResetView(APIView):
    """``DELETE .../deployments/devices/{device_id}/history``: make the device eligible again."""

    def delete(self, request: Request, device_id: Any) -> Response:
        device_lifecycle.reset_device_deployment_history(device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
