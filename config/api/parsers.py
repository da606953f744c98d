"""The API's JSON parser: DRF's, with the input policy (depth, NUL, surrogates, number ranges)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from config.input_policy import UnacceptableInput, load_document


class PolicyJSONParser(JSONParser):
    """Every JSON body goes through ``config.input_policy.load_document`` (400 on any violation).

    The body's size is bounded before this runs, by InputPolicyMiddleware (413).
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            return load_document(raw)
        except UnacceptableInput as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
