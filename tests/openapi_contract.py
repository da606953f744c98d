"""Check real HTTP responses against the OpenAPI document the server publishes at /api/schema/.

``OpenApiContract(document).check(response)`` finds the operation of the request (method + path
template), then checks that the status code is declared, the content type is one the operation
declares, the body validates against the declared schema (openapi-schema-validator, OpenAPI 3.0
semantics: ``nullable``, ``readOnly``, formats), and declared headers have the declared type.

Objects are checked strictly: a property the schema does not declare is an error (unless the
schema allows extra properties), so the document cannot drift from what the views really return.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def strict(schema: Any) -> Any:
    """A copy of ``schema`` where every object with ``properties`` refuses other properties."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def path_template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    pattern = "".join(
        "[^/]+" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{pattern}$")


@dataclass
class OpenApiContract:
    document: dict[str, Any]
    checked: set[tuple[str, str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._components = strict(self.document.get("components", {}))
        # Literal segments win over parameters (".../artifacts/list" before ".../artifacts/{id}").
        self._templates = sorted(
            self.document["paths"], key=lambda t: (t.count("{"), -len(t))
        )

    def operations(self) -> set[tuple[str, str]]:
        return {
            (method.upper(), path)
            for path, item in self.document["paths"].items()
            for method in item
            if method in HTTP_METHODS
        }

    def template_for(self, path: str) -> str:
        for template in self._templates:
            if path_template_regex(template).match(path):
                return template
        raise AssertionError(f"no path of the document matches {path}")

    def check(self, response: requests.Response) -> requests.Response:
        """Assert that ``response`` is what the document says its operation answers; return it."""
        request = response.request
        # a sent request has both
        assert request.method is not None
        assert request.url is not None
        method = request.method.lower()
        path = urlparse(request.url).path
        template = self.template_for(path)
        operation = self.document["paths"][template].get(method)
        assert operation is not None, f"{method.upper()} {template} is not documented"
        where = f"{method.upper()} {template} -> {response.status_code}"
        declared = operation["responses"].get(str(response.status_code))
        if declared is None:
            declared = operation["responses"].get("default")
        assert declared is not None, (
            f"{where}: status not documented (body: {response.text[:300]})"
        )
        self._check_headers(where, declared.get("headers", {}), response)
        self._check_body(where, declared.get("content"), response)
        self.checked.add((method.upper(), template, response.status_code))
        return response

    def _check_headers(
        self, where: str, headers: dict[str, Any], response: requests.Response
    ) -> None:
        for name, header in headers.items():
            value = response.headers.get(name)
            if value is None:
                assert not header.get("required"), f"{where}: header {name} missing"
                continue
            if header.get("schema", {}).get("type") == "integer":
                assert re.fullmatch(r"\d+", value), f"{where}: {name}={value!r}"

    def _check_body(
        self, where: str, content: dict[str, Any] | None, response: requests.Response
    ) -> None:
        if not content:
            assert response.content == b"", (
                f"{where}: documented without a body, got {response.content[:200]!r}"
            )
            return
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        assert media_type in content, (
            f"{where}: content type {media_type!r} not in {sorted(content)}"
        )
        schema = content[media_type].get("schema")
        if schema is None or schema.get("format") == "binary":
            return
        if media_type.endswith("json"):
            body: Any = json.loads(response.content)
        else:
            body = response.content.decode()
        self.validate(where, schema, body)

    def validate(self, where: str, schema: dict[str, Any], instance: Any) -> None:
        wrapper = {"allOf": [strict(copy.deepcopy(schema))]}
        wrapper["components"] = self._components
        validator = OAS30ReadValidator(wrapper, format_checker=oas30_format_checker)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, f"{where}: body does not match the schema:\n" + "\n".join(
            f"  at {list(error.path)}: {error.message}" for error in errors[:10]
        )
