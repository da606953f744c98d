"""One input policy for everything a client sends: JSON shape, text PostgreSQL can store, numbers in range.

The API parser, the request middleware and the few places that decode JSON themselves (the
signed auth request, artifact headers) all apply these rules, so a value that PostgreSQL or
Python would choke on is refused at the edge with a 400 instead of failing deep inside with
a 500. Per-field rules (a column's length, a field's integer range) stay in the serializers,
which use the bounds below.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from typing import Any

from django.conf import settings

# PostgreSQL column ranges (https://www.postgresql.org/docs/current/datatype-numeric.html).
PG_INTEGER_MAX = 2**31 - 1
PG_BIGINT_MAX = 2**63 - 1

# NUL cannot be stored in PostgreSQL text or jsonb; a lone surrogate cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_large_upload(
    content_type: str, path: str, upload_paths: Collection[str] | None
) -> bool:
    """A multipart body to an upload path (``None``: any path), the one kind of body allowed past
    FLOTILLA_MAX_JSON_BODY, up to FLOTILLA_MAX_REQUEST_BODY."""
    return content_type.startswith("multipart/") and (
        upload_paths is None or path in upload_paths
    )


class UnacceptableInput(ValueError):
    """The input breaks the policy; the message is safe to show to the caller."""


def check_text(value: str, *, what: str) -> None:
    """Refuse text that PostgreSQL cannot store (NUL) or UTF-8 cannot encode (lone surrogates)."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return
    kind = "NUL character" if found.group() == "\x00" else "lone surrogate"
    raise UnacceptableInput(f"{what} contains a {kind} (U+{ord(found.group()):04X})")


def check_document(document: Any, *, what: str = "request body") -> None:
    """Walk a decoded JSON document (iteratively): depth, strings, keys and numbers.

    Integers must fit in 64 bits and floats must be finite: that is what Mender's Go services
    accept, and what PostgreSQL's bigint and jsonb comparisons can take.
    """
    max_depth = settings.FLOTILLA_MAX_JSON_DEPTH
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list) and depth > max_depth:
            raise UnacceptableInput(f"{what} is nested deeper than {max_depth} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                check_text(key, what=f"{what}: a key")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            check_text(value, what=f"{what}: a string")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -PG_BIGINT_MAX - 1 <= value <= PG_BIGINT_MAX:
                raise UnacceptableInput(f"{what}: integer {value} is out of range")
        elif isinstance(value, float) and not math.isfinite(value):
            raise UnacceptableInput(f"{what}: number out of range")


def _reject_constant(name: str) -> Any:
    raise UnacceptableInput(f"{name} is not valid JSON")


def load_document(text: str | bytes, *, what: str = "request body") -> Any:
    """Decode JSON text and apply ``check_document``; every failure is UnacceptableInput."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise UnacceptableInput(
            f"{what} is nested deeper than {settings.FLOTILLA_MAX_JSON_DEPTH} levels"
        ) from None
    except UnicodeDecodeError:
        raise UnacceptableInput(f"{what} is not valid UTF-8") from None
    except UnacceptableInput:
        raise
    except ValueError as exc:
        raise UnacceptableInput(f"{what} is not valid JSON: {exc}") from None
    check_document(document, what=what)
    return document


def check_json_size(text: str, *, limit: int, what: str) -> None:
    """Refuse a JSON text (an embedded document such as id_data) longer than ``limit`` bytes."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limit:
        raise UnacceptableInput(f"{what} is {size} bytes, over the limit of {limit}")
