from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.input_policy import PG_INTEGER_MAX
from config.timestamps import rfc3339
from deployments_app.models import Deployment, DeviceDeployment
from deployments_app.services.creation import PhaseRequest


class PhaseInputSerializer(serializers.Serializer):
    batch_size = serializers.IntegerField(required=False, allow_null=True)
    start_ts = serializers.DateTimeField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> PhaseRequest:
        values = super().to_internal_value(data)
        return PhaseRequest(
            batch_size=values.get("batch_size"), start_ts=values.get("start_ts")
        )


class _DeploymentCommonInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=4096)
    artifact_name = serializers.CharField(max_length=4096)
    force_installation = serializers.BooleanField(default=False)
    phases = PhaseInputSerializer(many=True, required=False)
    retries = serializers.IntegerField(min_value=0, max_value=100, default=0)


class DeploymentCreateInputSerializer(_DeploymentCommonInputSerializer):
    devices = serializers.ListField(
        child=serializers.CharField(allow_blank=True), required=False
    )
    all_devices = serializers.BooleanField(default=False)


class GroupDeploymentCreateInputSerializer(_DeploymentCommonInputSerializer):
    devices = serializers.ListField(
        child=serializers.CharField(allow_blank=True), required=False
    )
    all_devices = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.pop("devices", None) or attrs.pop("all_devices", False):
            raise serializers.ValidationError(
                "a group deployment takes neither devices nor all_devices"
            )
        return attrs


class DynamicDeploymentCreateInputSerializer(_DeploymentCommonInputSerializer):
    filter_id = serializers.UUIDField()
    max_devices = serializers.IntegerField(
        min_value=0, max_value=PG_INTEGER_MAX, required=False
    )


class AbortInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["aborted"])


class StatusReportInputSerializer(serializers.Serializer):
    status = serializers.CharField()
    substate = serializers.CharField(required=False, allow_blank=True, default="")


class StatisticsListInputSerializer(serializers.Serializer):
    deployment_ids = serializers.ListField(
        child=serializers.UUIDField(), max_length=100
    )


def deployment_output(
    deployment: Deployment, statistics: dict[str, Any]
) -> dict[str, Any]:
    """Mender's deployment JSON (OS fields plus the Enterprise rollout fields)."""
    data: dict[str, Any] = {
        "id": str(deployment.id),
        "name": deployment.name,
        "artifact_name": deployment.artifact_name,
        "created": rfc3339(deployment.created),
        "status": deployment.status,
        "device_count": deployment.device_count,
        "artifacts": [str(artifact_id) for artifact_id in deployment.artifacts],
        "groups": deployment.groups,
        "type": "software",
        "statistics": statistics,
        "retries": deployment.retries,
    }
    if deployment.finished:
        data["finished"] = rfc3339(deployment.finished)
    if deployment.max_devices:
        data["max_devices"] = deployment.max_devices
    if deployment.force_installation:
        data["force_installation"] = True
    if deployment.all_devices:
        data["all_devices"] = True
    if deployment.is_dynamic:
        data["dynamic"] = True
        data["filter"] = deployment.filter_snapshot
        data["initial_device_count"] = deployment.initial_device_count
    phases = list(deployment.phases.all())
    if phases:
        data["phases"] = [
            {
                "id": str(phase.id),
                "batch_size": phase.batch_size,
                "start_ts": rfc3339(phase.start_ts),
                "device_count": phase.device_count,
            }
            for phase in phases
        ]
    return data


def device_deployment_output(
    record: DeviceDeployment, *, retries: int
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(record.device_id),
        "status": record.status,
        "created": rfc3339(record.created),
        "log": record.has_log,
        "attempts": record.attempts,
        "retries": retries,
    }
    if record.substate:
        data["substate"] = record.substate
    for field in ("started", "finished", "deleted"):
        value = getattr(record, field)
        if value:
            data[field] = rfc3339(value)
    if record.image:
        data["image"] = record.image
    return data
