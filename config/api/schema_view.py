"""``GET /api/schema/``: the OpenAPI document, public as Mender publishes its own specs.

Apart from config.api.schema because DRF imports that module while drf_spectacular.views is
being imported (DEFAULT_SCHEMA_CLASS).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 document of this API: YAML, or JSON with ``?format=json`` or ``Accept: application/json``."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Flotilla: this OpenAPI document",
        tags=["flotilla"],
        parameters=[
            OpenApiParameter("format", str, enum=["json", "yaml"]),
            OpenApiParameter("lang", exclude=True),
        ],
        responses={
            (200, "application/vnd.oai.openapi"): OpenApiTypes.STR,
            (200, "application/vnd.oai.openapi+json"): OpenApiTypes.OBJECT,
            (200, "application/json"): OpenApiTypes.OBJECT,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
