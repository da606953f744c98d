"""The API's endpoints, enumerated from the URL conf, and a fingerprint of every project table.

Used by the input-policy tests and the fuzz test: a new endpoint is covered as soon as it is
routed, and "nothing was stored" is checked over every table, not a hand-picked few.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.parsers import JSONParser
from rest_framework.views import APIView

PROJECT_APPS = ("devices_app", "deployments_app", "auth")
_CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")
_BODY_METHODS = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Endpoint:
    """One routed API path (Django route syntax) and the view behind it."""

    route: str
    view: Any

    @property
    def is_device(self) -> bool:
        return self.route.startswith("/api/devices/")

    @property
    def methods(self) -> list[str]:
        if isinstance(self.view, type) and issubclass(self.view, APIView):
            return [
                method
                for method in ("get", "post", "put", "patch", "delete")
                if hasattr(self.view, method)
            ]
        return ["get"]

    @property
    def json_methods(self) -> list[str]:
        """The methods whose body DRF parses as JSON."""
        if not (isinstance(self.view, type) and issubclass(self.view, APIView)):
            return []
        parsers = self.view().parser_classes
        if not any(issubclass(parser, JSONParser) for parser in parsers):
            return []
        return [m for m in self.methods if m in _BODY_METHODS]

    @property
    def parameters(self) -> list[tuple[str, str]]:
        """(converter, name) of each path parameter, in order."""
        return [
            (match["kind"] or "str", match["name"])
            for match in _CONVERTER.finditer(self.route)
        ]

    def path(self, values: dict[str, str]) -> str:
        return _CONVERTER.sub(lambda m: values[m["name"]], self.route)


def api_endpoints() -> list[Endpoint]:
    """Every route under /api/, from the root URL conf."""
    found: list[Endpoint] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                callback = pattern.callback
                view = getattr(callback, "view_class", None) or getattr(
                    callback, "cls", callback
                )
                found.append(Endpoint(route="/" + route, view=view))

    walk(get_resolver().url_patterns, "")
    return [e for e in found if e.route.startswith("/api/")]


def table_fingerprint() -> dict[str, tuple[int, str]]:
    """(row count, md5 over the sorted row texts) of every table of the project's apps."""
    tables = sorted(
        {
            model._meta.db_table
            for model in apps.get_models(include_auto_created=True)
            if model._meta.app_label in PROJECT_APPS and model._meta.managed
        }
    )
    selects = " UNION ALL ".join(
        f"SELECT '{table}', count(*), "
        f"coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') "
        f'FROM "{table}" t'
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(selects)
        return {name: (count, digest) for name, count, digest in cursor.fetchall()}
