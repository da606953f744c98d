"""The OpenAPI document of the whole API (drf-spectacular), and the pieces every app's schema uses.

``/api/schema/`` is public, as Mender publishes its own OpenAPI files: the document describes the
API's shape only and carries no data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import permissions, serializers
from rest_framework.fields import empty

from config.accounts.api.serializers import (
    TokenCreateInputSerializer,
    UserCreateInputSerializer,
    UserUpdateInputSerializer,
)

USER_AUTH = "UserToken"
BASIC_AUTH = "BasicAuth"


class ErrorSerializer(serializers.Serializer):
    """Every error body: ``{"error", "request_id"}`` (config.api.errors)."""

    error = serializers.CharField()
    request_id = serializers.CharField()
    metadata = serializers.DictField(required=False)

    class Meta:
        ref_name = "Error"


class FlotillaAutoSchema(AutoSchema):
    """Adds the JSON error responses every operation can give (400/401/404) to what views declare."""

    def _get_response_bodies(
        self, direction: Literal["request", "response"] = "response"
    ) -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        codes = []
        if self.method in ("POST", "PUT", "PATCH") or self._get_parameters():
            codes.append("400")
        if self._requires_authentication():
            codes.append("401")
        if "{" in self.path:
            codes.append("404")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    error("JSON error"), code, ["application/json"], direction
                )
        return responses

    def get_operation_id(self) -> str:
        # The whole path, version included: Mender's v1 and v2 of an operation share the rest.
        words = [
            word.strip("{}").replace("-", "_").replace(".", "_")
            for word in self.path.removeprefix("/api/").split("/")
            if word
        ]
        return "_".join([self.method.lower(), *words])

    def _requires_authentication(self) -> bool:
        return bool(self.view.get_authenticators()) and not any(
            isinstance(permission, permissions.AllowAny)
            for permission in self.view.get_permissions()
        )


def bearer_jwt(description: str) -> dict[str, Any]:
    """A security scheme: ``Authorization: Bearer <JWT>``."""
    return {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": description,
    }


def error(description: str) -> OpenApiResponse:
    """A documented error status: the JSON error body."""
    return OpenApiResponse(ErrorSerializer, description=description)


class UserTokenScheme(OpenApiAuthenticationExtension):
    target_class = "config.api.authentication.UserTokenAuthentication"
    name = USER_AUTH

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return bearer_jwt(
            "User token from POST /api/management/v1/useradm/auth/login, or a personal "
            "access token from POST /api/management/v1/useradm/settings/tokens."
        )


# Paged lists (config.api.pagination): page/per_page in, X-Total-Count and Link out.
PAGE_QUERY = [
    OpenApiParameter("page", int, description="Page number, from 1."),
    OpenApiParameter("per_page", int, description="Results per page."),
]
PAGE_HEADERS = [
    OpenApiParameter(
        "X-Total-Count",
        int,
        OpenApiParameter.HEADER,
        response=[200],
        description="Number of results on all pages.",
    ),
    OpenApiParameter(
        "Link",
        str,
        OpenApiParameter.HEADER,
        response=[200],
        description='RFC 8288 links to the first, previous and next pages (rel="first", "prev", "next").',
    ),
]
PAGE_PARAMETERS = [*PAGE_QUERY, *PAGE_HEADERS]
LOCATION_HEADER = OpenApiParameter(
    "Location",
    str,
    OpenApiParameter.HEADER,
    response=[201],
    description="Where the created resource is.",
)
JWT_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="A raw JWT.")
NO_CONTENT = OpenApiResponse(description="No content.")
EMPTY_OK = {200: OpenApiResponse(description="Empty body.")}


def array_of(item_type: str, item_format: str | None = None) -> dict[str, Any]:
    """A raw schema: a JSON array of strings (or of ``item_format`` strings)."""
    items = {"type": item_type} | ({"format": item_format} if item_format else {})
    return {"type": "array", "items": items}


def created(description: str = "Created.") -> dict[Any, Any]:
    return {201: OpenApiResponse(description=description)}


def _errors(errors: Mapping[int, str] | None) -> dict[int, OpenApiResponse]:
    return {code: error(text) for code, text in (errors or {}).items()}


def no_content(
    summary: str,
    request: Any = empty,
    errors: Mapping[int, str] | None = None,
    **kwargs: Any,
) -> Any:
    """An operation answering 204, or one of the ``errors`` (status: description)."""
    return extend_schema(
        summary=summary,
        request=request,
        responses={204: NO_CONTENT, **_errors(errors)},
        **kwargs,
    )


def paged_list(
    summary: str, responses: Any, *parameters: OpenApiParameter, **kwargs: Any
) -> Any:
    """A paged list (PAGE_PARAMETERS), with more ``parameters`` after the paging ones."""
    return extend_schema(
        summary=summary,
        parameters=[*PAGE_PARAMETERS, *parameters],
        responses=responses,
        **kwargs,
    )


def creation(
    summary: str,
    request: Any,
    created_text: str,
    errors: Mapping[int, str] | None = None,
) -> Any:
    """An operation answering 201 with a Location header, or one of the ``errors``."""
    return extend_schema(
        summary=summary,
        request=request,
        parameters=[LOCATION_HEADER],
        responses={**created(created_text), **_errors(errors)},
    )


# ---------------------------------------------------------------- useradm (config.accounts.api)


class UserSerializer(serializers.Serializer):
    id = serializers.CharField()
    email = serializers.CharField()
    created_ts = serializers.DateTimeField()
    updated_ts = serializers.DateTimeField()
    login_ts = serializers.DateTimeField(
        required=False, help_text="Last successful login; absent before the first."
    )

    class Meta:
        ref_name = "User"


class UserNewSerializer(UserCreateInputSerializer):
    class Meta:
        ref_name = "UserNew"


class UserUpdateSerializer(UserUpdateInputSerializer):
    class Meta:
        ref_name = "UserUpdate"


class PersonalAccessTokenRequestSerializer(TokenCreateInputSerializer):
    class Meta:
        ref_name = "PersonalAccessTokenRequest"


class PersonalAccessTokenSerializer(serializers.Serializer):
    """A token's metadata; the token itself is shown once, when it is created."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    created_ts = serializers.DateTimeField()
    expiration_date = serializers.DateTimeField(
        required=False, help_text="Absent for a token that never expires."
    )
    last_used = serializers.DateTimeField(
        required=False, help_text="Absent for a token never used."
    )

    class Meta:
        ref_name = "PersonalAccessToken"


RETRY_AFTER_HEADER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before trying again.",
)
USER_ID_PARAMETER = OpenApiParameter(
    "user_id",
    str,
    OpenApiParameter.PATH,
    description="A user id, or `me` for the user of the token.",
)


def _unix_time_filter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, int, description=f"{description} (UNIX time).")


login = extend_schema_view(
    post=extend_schema(
        summary="Log in: HTTP Basic credentials in, a user token out",
        request=None,
        # drf-spectacular annotates auth as Sequence[str], but get_auth() returns it as the
        # operation's security requirement objects (dicts), as its own get_auth() builds them.
        auth=[{BASIC_AUTH: []}],  # type: ignore[list-item]
        parameters=[RETRY_AFTER_HEADER],
        responses={
            (200, "application/jwt"): JWT_RESPONSE,
            401: error("Missing or wrong credentials."),
            429: error(
                "Too many attempts from this address, for this account or overall."
            ),
        },
    )
)
logout = extend_schema_view(
    post=extend_schema(
        summary="Log out: the token of the request is refused from now on",
        request=None,
        responses={202: OpenApiResponse(description="Token revoked.")},
    )
)
user_list = extend_schema_view(
    get=extend_schema(
        summary="List users (not paged)",
        parameters=[
            OpenApiParameter("id", str, many=True, description="User ids."),
            OpenApiParameter("email", str, many=True, description="User emails."),
            _unix_time_filter("created_after", "Created after"),
            _unix_time_filter("created_before", "Created before"),
            _unix_time_filter("updated_after", "Updated after"),
            _unix_time_filter("updated_before", "Updated before"),
        ],
        responses=UserSerializer(many=True),
    ),
    post=creation(
        "Create a user",
        UserNewSerializer,
        "User created.",
        {422: "The email is taken or the password too short."},
    ),
)
user_detail = extend_schema_view(
    get=extend_schema(
        summary="Get a user",
        parameters=[USER_ID_PARAMETER],
        responses=UserSerializer,
    ),
    put=no_content(
        "Update a user's email or password",
        UserUpdateSerializer,
        {
            422: "The email is taken, the password too short, the current password "
            "wrong, or another user's password."
        },
        description=(
            "Only users change their own password; changing one's own password or email "
            "needs `current_password`. A change revokes the user's other tokens."
        ),
        parameters=[USER_ID_PARAMETER],
    ),
    delete=no_content(
        "Remove a user and their tokens (unknown ids too: 204)",
        parameters=[USER_ID_PARAMETER],
    ),
)
token_list = extend_schema_view(
    get=extend_schema(
        summary="List the user's personal access tokens",
        responses=PersonalAccessTokenSerializer(many=True),
    ),
    post=extend_schema(
        summary="Create a personal access token (shown only in this answer)",
        request=PersonalAccessTokenRequestSerializer,
        responses={
            (200, "application/jwt"): JWT_RESPONSE,
            409: error("The user has a token of that name."),
            422: error("The user has as many tokens as allowed."),
        },
    ),
)
token_detail = extend_schema_view(
    delete=no_content("Revoke a personal access token (unknown ids too: 204)")
)
