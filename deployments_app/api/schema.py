"""OpenAPI description of the deployments endpoints: artifacts, releases, deployments, device updates.

Each name below decorates one view class (``@schema.deployment_list``); the serializers here only
describe the shapes that the views and selectors build as dicts, they validate nothing.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers

from config.api.schema import (
    array_of,
    creation,
    no_content,
    paged_list,
)
from deployments_app.api.artifact_serializers import (
    ArtifactEditInputSerializer,
    ArtifactUploadInputSerializer,
    ReleaseNotesInputSerializer,
)
from deployments_app.api.deployment_serializers import (
    AbortInputSerializer,
    DeploymentCreateInputSerializer,
    DynamicDeploymentCreateInputSerializer,
    GroupDeploymentCreateInputSerializer,
    StatisticsListInputSerializer,
    StatusReportInputSerializer,
)
from deployments_app.downloads import (
    DOWNLOAD_PATH_TEMPLATE,
    EXPIRE_PARAM,
    SIGNATURE_PARAM,
)
from deployments_app.selectors.deployments import STATISTICS_KEYS
from deployments_app.services.artifacts import ARTIFACT_CONTENT_TYPE
from deployments_app.states import DeploymentStatus, DeviceDeploymentStatus

# ---------------------------------------------------------------- artifacts and releases


class ArtifactInfoSerializer(serializers.Serializer):
    format = serializers.CharField()
    version = serializers.IntegerField()

    class Meta:
        ref_name = "ArtifactInfo"


class UpdateTypeInfoSerializer(serializers.Serializer):
    type = serializers.CharField(allow_null=True)

    class Meta:
        ref_name = "ArtifactTypeInfo"


class UpdateSerializer(serializers.Serializer):
    type_info = UpdateTypeInfoSerializer()
    files = serializers.ListField(child=serializers.DictField())
    meta_data = serializers.ListField(child=serializers.JSONField())

    class Meta:
        ref_name = "Update"


class ArtifactSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    device_types_compatible = serializers.ListField(child=serializers.CharField())
    info = ArtifactInfoSerializer()
    signed = serializers.BooleanField()
    updates = UpdateSerializer(many=True)
    artifact_provides = serializers.DictField(child=serializers.CharField())
    artifact_depends = serializers.DictField(child=serializers.JSONField())
    clears_artifact_provides = serializers.ListField(child=serializers.CharField())
    size = serializers.IntegerField()
    modified = serializers.DateTimeField()

    class Meta:
        ref_name = "Artifact"


class ReleaseSerializer(serializers.Serializer):
    name = serializers.CharField()
    modified = serializers.DateTimeField()
    artifacts = ArtifactSerializer(many=True)
    artifacts_count = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())
    notes = serializers.CharField(allow_blank=True)

    class Meta:
        ref_name = "Release"


# The v1 release keys are capitalised (Mender's Go struct field names).
ReleaseV1Serializer = type(
    "ReleaseV1Serializer",
    (serializers.Serializer,),
    {
        "Name": serializers.CharField(),
        "Artifacts": ArtifactSerializer(many=True),
        "ArtifactsCount": serializers.IntegerField(),
        "Modified": serializers.DateTimeField(),
        "tags": serializers.ListField(child=serializers.CharField()),
        "notes": serializers.CharField(allow_blank=True),
        "Meta": type("Meta", (), {"ref_name": "ReleaseV1"}),
    },
)


class DownloadLinkSerializer(serializers.Serializer):
    uri = serializers.URLField()
    expire = serializers.DateTimeField()

    class Meta:
        ref_name = "DownloadLink"


class ArtifactUploadSerializer(ArtifactUploadInputSerializer):
    artifact = serializers.FileField(help_text="The Mender artifact file.")

    class Meta:
        ref_name = "ArtifactUpload"


ARTIFACT_FILTERS = [
    OpenApiParameter("name", str),
    OpenApiParameter("description", str),
    OpenApiParameter("device_type", str),
]
RELEASE_FILTERS = [
    *ARTIFACT_FILTERS,
    OpenApiParameter("update_type", str),
    OpenApiParameter("tag", str, many=True),
]
SORT = OpenApiParameter("sort", str, description="name|modified, :asc or :desc.")

artifact_list = extend_schema_view(
    get=extend_schema(
        summary="List artifacts",
        parameters=ARTIFACT_FILTERS,
        responses=ArtifactSerializer(many=True),
    ),
    post=creation(
        "Upload an artifact",
        {"multipart/form-data": ArtifactUploadSerializer},
        "Artifact stored.",
        {
            409: "An artifact with this name and a device type exists.",
            413: "The artifact is larger than the limit.",
        },
    ),
)
artifact_paged_list = extend_schema_view(
    get=paged_list(
        "List artifacts, paged",
        ArtifactSerializer(many=True),
        *ARTIFACT_FILTERS,
        SORT,
    )
)
artifact_detail = extend_schema_view(
    get=extend_schema(summary="Get an artifact", responses=ArtifactSerializer),
    put=no_content("Edit an artifact's description", ArtifactEditInputSerializer),
    delete=no_content(
        "Delete an artifact", errors={409: "An active deployment uses the artifact."}
    ),
)
artifact_download_link = extend_schema_view(
    get=extend_schema(
        summary="Get a download link for an artifact", responses=DownloadLinkSerializer
    )
)
release_list_v1 = extend_schema_view(
    get=extend_schema(
        summary="List releases (v1)",
        parameters=RELEASE_FILTERS,
        responses=ReleaseV1Serializer(many=True),
    )
)
release_paged_list_v1 = extend_schema_view(
    get=paged_list(
        "List releases, paged (v1)",
        ReleaseV1Serializer(many=True),
        *RELEASE_FILTERS,
        SORT,
    )
)
release_list_v2 = extend_schema_view(
    get=paged_list(
        "List releases, paged", ReleaseSerializer(many=True), *RELEASE_FILTERS, SORT
    ),
    delete=no_content(
        "Delete releases and their artifacts",
        errors={409: "An active deployment uses a release."},
        parameters=[OpenApiParameter("name", str, many=True, required=True)],
    ),
)
release_detail_v2 = extend_schema_view(
    get=extend_schema(summary="Get a release", responses=ReleaseSerializer),
    patch=no_content("Edit a release's notes", ReleaseNotesInputSerializer),
)
release_tags_v2 = extend_schema_view(
    put=no_content("Replace a release's tags", {"application/json": array_of("string")})
)
release_all_tags_v2 = extend_schema_view(
    get=extend_schema(
        summary="Every release tag in use", responses={200: array_of("string")}
    )
)
release_all_types_v2 = extend_schema_view(
    get=extend_schema(
        summary="Every update type in use", responses={200: array_of("string")}
    )
)


def add_artifact_download_operation(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the signed download is a plain Django view, not DRF."""
    error_content = {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
    }
    artifact = {
        ARTIFACT_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}
    }
    operation = {
        "operationId": "devices_deployments_download_artifact",
        "summary": "Download an artifact through a signed link",
        "description": "The link (from a device's `next` or the management download link) is the authorisation; no token.",
        "tags": ["deployments"],
        "security": [{}],
        "parameters": [
            {
                "name": "artifact_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
            },
            {
                "name": EXPIRE_PARAM,
                "in": "query",
                "required": True,
                "schema": {"type": "string", "format": "date-time"},
            },
            {
                "name": SIGNATURE_PARAM,
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
            },
            {"name": "Range", "in": "header", "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {"description": "The artifact.", "content": artifact},
            "206": {"description": "The requested byte range.", "content": artifact},
            "302": {"description": "Redirect to the object storage."},
            "403": {
                "description": "Expired or bad signature.",
                "content": error_content,
            },
            "404": {"description": "No such artifact.", "content": error_content},
            "416": {"description": "Range not satisfiable.", "content": error_content},
        },
    }
    path = DOWNLOAD_PATH_TEMPLATE.format(artifact_id="{artifact_id}")
    result["paths"][path] = {"get": operation}
    return result


# ---------------------------------------------------------------- deployments

DeploymentStatusCountsSerializer = type(
    "DeploymentStatusCountsSerializer",
    (serializers.Serializer,),
    {
        **{key: serializers.IntegerField() for key in STATISTICS_KEYS},
        "Meta": type("Meta", (), {"ref_name": "DeploymentStatusCounts"}),
    },
)


class DeploymentStatisticsSerializer(serializers.Serializer):
    status = DeploymentStatusCountsSerializer()
    total_size = serializers.IntegerField()

    class Meta:
        ref_name = "DeploymentStatistics"


class PhaseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    batch_size = serializers.IntegerField()
    start_ts = serializers.DateTimeField()
    device_count = serializers.IntegerField()

    class Meta:
        ref_name = "DeploymentPhase"


class FilterSnapshotSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    terms = serializers.ListField(child=serializers.DictField())

    class Meta:
        ref_name = "DeploymentFilter"


class DeploymentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    artifact_name = serializers.CharField()
    created = serializers.DateTimeField()
    finished = serializers.DateTimeField(required=False)
    status = serializers.ChoiceField(choices=DeploymentStatus.values)
    device_count = serializers.IntegerField()
    artifacts = serializers.ListField(child=serializers.UUIDField())
    groups = serializers.ListField(child=serializers.CharField())
    type = serializers.ChoiceField(choices=["software"])
    statistics = DeploymentStatisticsSerializer()
    retries = serializers.IntegerField()
    max_devices = serializers.IntegerField(required=False)
    force_installation = serializers.BooleanField(required=False)
    all_devices = serializers.BooleanField(required=False)
    dynamic = serializers.BooleanField(required=False)
    filter = FilterSnapshotSerializer(required=False)
    initial_device_count = serializers.IntegerField(required=False, allow_null=True)
    phases = PhaseSerializer(many=True, required=False)

    class Meta:
        ref_name = "Deployment"


class DeviceDeploymentSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The device id.")
    status = serializers.ChoiceField(choices=DeviceDeploymentStatus.values)
    substate = serializers.CharField(required=False)
    created = serializers.DateTimeField()
    started = serializers.DateTimeField(required=False)
    finished = serializers.DateTimeField(required=False)
    deleted = serializers.DateTimeField(required=False)
    log = serializers.BooleanField()
    attempts = serializers.IntegerField()
    retries = serializers.IntegerField()
    image = serializers.DictField(required=False)

    class Meta:
        ref_name = "DeviceWithImage"


class DeviceDeploymentHistorySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    deployment = DeploymentSerializer()
    device = DeviceDeploymentSerializer()

    class Meta:
        ref_name = "DeviceDeployment"


class InstructionsSourceSerializer(DownloadLinkSerializer):
    class Meta:
        ref_name = "ArtifactSource"


class InstructionsArtifactSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    artifact_name = serializers.CharField()
    # A declared field named like Field.source: DRF's serializer metaclass moves declared
    # fields off the class, which the stubs cannot express.
    source = InstructionsSourceSerializer()  # type: ignore[assignment]
    device_types_compatible = serializers.ListField(child=serializers.CharField())

    class Meta:
        ref_name = "DeploymentInstructionsArtifact"


class InstructionsSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    artifact = InstructionsArtifactSerializer()

    class Meta:
        ref_name = "DeploymentInstructions"


class NextDeploymentV2InputSerializer(serializers.Serializer):
    device_provides = serializers.DictField(
        help_text="artifact_name, device_type and every other provide of the device."
    )

    class Meta:
        ref_name = "DeviceProvidesV2"


class LogMessageSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    level = serializers.CharField()
    message = serializers.CharField()

    class Meta:
        ref_name = "LogMessage"


class DeploymentLogSerializer(serializers.Serializer):
    messages = LogMessageSerializer(many=True)

    class Meta:
        ref_name = "DeploymentLog"


NEXT_RESPONSES = {
    200: InstructionsSerializer,
    204: OpenApiResponse(description="Nothing to install."),
}


def _deployment_creation(summary: str, request: type[serializers.Serializer]) -> Any:
    return creation(
        summary,
        request,
        "Deployment created.",
        {
            409: "A conflicting deployment exists.",
            422: "No artifact matches the deployment.",
        },
    )


DEVICE_DEPLOYMENT_STATUS = OpenApiParameter(
    "status", str, description="A device deployment status, or pending/finished."
)

next_deployment_v2 = extend_schema_view(
    post=extend_schema(
        summary="Ask for the next deployment",
        request=NextDeploymentV2InputSerializer,
        responses=NEXT_RESPONSES,
    )
)
next_deployment_v1 = extend_schema_view(
    post=extend_schema(
        summary="Ask for the next deployment (v1, flat provides)",
        request={"application/json": OpenApiTypes.OBJECT},
        responses=NEXT_RESPONSES,
    ),
    get=extend_schema(
        summary="Ask for the next deployment (v1)",
        parameters=[
            OpenApiParameter("artifact_name", str, required=True),
            OpenApiParameter("device_type", str, required=True),
        ],
        responses=NEXT_RESPONSES,
    ),
)
device_deployment_status = extend_schema_view(
    put=no_content(
        "Report the status of a deployment",
        StatusReportInputSerializer,
        {409: "The deployment was aborted or has a final status."},
    )
)
device_deployment_log = extend_schema_view(
    put=no_content("Upload the deployment log", DeploymentLogSerializer)
)
deployment_list = extend_schema_view(
    get=paged_list(
        "List deployments",
        DeploymentSerializer(many=True),
        OpenApiParameter("status", str, enum=[*DeploymentStatus.values, "aborted"]),
        OpenApiParameter("search", str),
        OpenApiParameter("created_after", int, description="Unix time."),
        OpenApiParameter("created_before", int, description="Unix time."),
        OpenApiParameter("sort", str, enum=["asc", "desc"]),
    ),
    post=_deployment_creation("Create a deployment", DeploymentCreateInputSerializer),
)
group_deployment_create = extend_schema_view(
    post=_deployment_creation(
        "Create a deployment for a group", GroupDeploymentCreateInputSerializer
    )
)
dynamic_deployment_create = extend_schema_view(
    post=_deployment_creation(
        "Create a deployment for a saved filter", DynamicDeploymentCreateInputSerializer
    )
)
deployment_detail = extend_schema_view(
    get=extend_schema(summary="Get a deployment", responses=DeploymentSerializer)
)
deployment_status = extend_schema_view(
    put=no_content(
        "Abort a deployment",
        AbortInputSerializer,
        {422: "The deployment is already finished."},
    )
)
deployment_statistics = extend_schema_view(
    get=extend_schema(
        summary="Device counts of a deployment by status",
        responses=DeploymentStatusCountsSerializer,
    )
)
deployment_statistics_list = extend_schema_view(
    post=extend_schema(
        summary="Device counts by status of several deployments",
        request=StatisticsListInputSerializer,
        responses={
            200: OpenApiResponse(
                {
                    "oneOf": [
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string", "format": "uuid"},
                                    "stats": {
                                        "type": "object",
                                        "additionalProperties": {"type": "integer"},
                                    },
                                },
                                "required": ["id", "stats"],
                            },
                        },
                        {"type": "object", "maxProperties": 0},
                    ]
                },
                description="One entry per deployment found; {} when no id was given.",
            )
        },
    )
)
deployment_devices = extend_schema_view(
    get=extend_schema(
        summary="List the devices of a deployment",
        responses=DeviceDeploymentSerializer(many=True),
    )
)
deployment_devices_list = extend_schema_view(
    get=paged_list(
        "List the devices of a deployment, paged",
        DeviceDeploymentSerializer(many=True),
        DEVICE_DEPLOYMENT_STATUS,
    )
)
deployment_device_list = extend_schema_view(
    get=extend_schema(
        summary="The device ids a deployment targets",
        responses={200: array_of("string", "uuid")},
    )
)
device_deployment_log_management = extend_schema_view(
    get=extend_schema(
        summary="Get a device's deployment log",
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR)},
    )
)
device_deployment_history = extend_schema_view(
    get=paged_list(
        "List a device's deployments",
        DeviceDeploymentHistorySerializer(many=True),
        DEVICE_DEPLOYMENT_STATUS,
    ),
    delete=no_content("Abort a device's unfinished deployments"),
)
device_deployment_history_reset = extend_schema_view(
    delete=no_content("Forget a device's deployment history")
)
