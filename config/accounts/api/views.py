"""Mender's useradm management API: login/logout, users, personal access tokens."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpResponse
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.accounts import selectors
from config.accounts.api.serializers import (
    TokenCreateInputSerializer,
    TokenOutputSerializer,
    UserCreateInputSerializer,
    UserOutputSerializer,
    UserUpdateInputSerializer,
)
from config.accounts.exceptions import LoginThrottled, UserNotFound
from config.accounts.services import logins, tokens, users
from config.api import schema
from config.api.errors import error_response
from config.errors import InvalidInput
from config.ratelimits import client_address

JWT_CONTENT_TYPE = "application/jwt"


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, sep, password = decoded.partition(":")
    if not sep:
        return None
    return login, password


def throttled(exc: LoginThrottled) -> exceptions.Throttled:
    """The DRF form of a refused login: 429 with ``Retry-After``."""
    return exceptions.Throttled(wait=exc.retry_after, detail=exc.message)


@schema.login
class LoginView(APIView):
    """``POST /auth/login``: HTTP Basic in, raw user JWT out; throttled per address, account and overall."""

    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request: Request) -> HttpResponse | Response:
        credentials = _basic_credentials(request.META.get("HTTP_AUTHORIZATION"))
        if credentials is None:
            return error_response(
                request, "missing or malformed Basic credentials", 401
            )
        login, password = credentials
        try:
            logins.check_login_allowed(login=login, address=client_address(request))
        except LoginThrottled as exc:
            raise throttled(exc) from None
        user = logins.authenticate_login(login=login, password=password)
        if user is None:
            logins.record_login_failure(login=login)
            return error_response(request, "unauthorized", 401)
        logins.record_login(user=user)
        token = tokens.issue_user_token(user=user)
        return HttpResponse(token, content_type=JWT_CONTENT_TYPE)


@schema.logout
class LogoutView(APIView):
    """``POST /auth/logout``: the token of this request is refused from now on (202)."""

    def post(self, request: Request) -> Response:
        tokens.revoke_token(token_id=request.auth.pk)
        return Response(status=status.HTTP_202_ACCEPTED)


def _acting_user(request: Request) -> AbstractBaseUser:
    """The authenticated user (IsManagementUser, the default permission, admits no other)."""
    user = request.user
    assert isinstance(user, AbstractBaseUser)
    return user


def _user_id(request: Request, raw: str) -> int | None:
    """``me`` or a numeric id; None for ids that cannot name a user."""
    if raw.lower() == "me":
        return request.user.pk
    if raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None


def _unix_time(params: Any, name: str) -> dt.datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return dt.datetime.fromtimestamp(int(raw), tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidInput(f"api: invalid form values: {name}") from None


@schema.user_list
class UserListView(APIView):
    """``GET /users`` (Mender's filters, not paged) and ``POST /users`` (201, ``Location``)."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        ids = [
            int(raw) for raw in params.getlist("id") if raw.isdigit() and len(raw) <= 18
        ]
        if params.getlist("id") and not ids:
            return Response([])
        found = selectors.list_users(
            ids=ids,
            emails=params.getlist("email"),
            created_after=_unix_time(params, "created_after"),
            created_before=_unix_time(params, "created_before"),
            updated_after=_unix_time(params, "updated_after"),
            updated_before=_unix_time(params, "updated_before"),
        )
        return Response(UserOutputSerializer(found, many=True).data)

    def post(self, request: Request) -> Response:
        data = UserCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = users.create_user(**data.validated_data)
        return Response(
            status=status.HTTP_201_CREATED, headers={"Location": f"users/{user.pk}"}
        )


@schema.user_detail
class UserDetailView(APIView):
    """``GET/PUT/DELETE /users/{id}``; ``me`` is the caller."""

    def get(self, request: Request, user_id: str) -> Response:
        pk = _user_id(request, user_id)
        user = None if pk is None else selectors.get_user(user_id=pk)
        if user is None:
            raise UserNotFound("user not found")
        return Response(UserOutputSerializer(user).data)

    def put(self, request: Request, user_id: str) -> Response:
        data = UserUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pk = _user_id(request, user_id)
        if pk is None:
            raise UserNotFound("user not found")
        users.update_user(
            user_id=pk,
            actor_id=_acting_user(request).pk,
            acting_token_id=request.auth.pk,
            **data.validated_data,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    def delete(self, request: Request, user_id: str) -> Response:
        pk = _user_id(request, user_id)
        if pk is not None:
            users.delete_user(user_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.token_list
class TokenListView(APIView):
    """``POST /settings/tokens`` (the token, once, as ``application/jwt``) and ``GET`` (metadata)."""

    def get(self, request: Request) -> Response:
        found = selectors.list_personal_access_tokens(user_id=_acting_user(request).pk)
        return Response(TokenOutputSerializer(found, many=True).data)

    def post(self, request: Request) -> HttpResponse:
        data = TokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = tokens.issue_personal_access_token(
            user=_acting_user(request), **data.validated_data
        )
        return HttpResponse(token, content_type=JWT_CONTENT_TYPE)


@schema.token_detail
class TokenDetailView(APIView):
    """``DELETE /settings/tokens/{id}``: revoked at once; unknown ids answer 204 as in Mender."""

    def delete(self, request: Request, token_id: str) -> Response:
        try:
            parsed = uuid.UUID(token_id)
        except ValueError:
            parsed = None
        if parsed is not None:
            tokens.revoke_personal_access_token(
                user_id=_acting_user(request).pk, token_id=parsed
            )
        return Response(status=status.HTTP_204_NO_CONTENT)
