"""The one inventory filter compiler: filter terms → a SQL condition, and the same semantics in Python.

A term is ``{"scope", "attribute", "type", "value"}`` (Mender's saved-filter and search shape);
terms are AND-ed. Semantics are MongoDB's, as Mender's inventory has them (spec §1.4):

* comparisons are type-sensitive: the string ``"1"`` never equals the number ``1``; ``$gt``… compare
  numbers with numbers and strings with strings (lexicographically, by code point), never across;
* an attribute whose value is a list matches when any element matches (``$eq $in $gt``… ``$regex``);
* ``$ne`` and ``$nin`` are the negations of ``$eq`` and ``$in``, so they also match devices that lack
  the attribute;
* ``$exists`` (true/false) tests presence; ``$regex`` searches string values (unanchored).

A device is seen as four scopes of attributes (``device_document``): ``identity`` (the identity
data plus the reserved ``status``), ``inventory`` (device-reported), ``tags`` (operator-set) and
``system`` (``group``, ``status``, ``created_ts``, ``updated_ts``; timestamps are fixed-width RFC 3339
UTC strings, so lexicographic order is chronological).

``compile_terms`` is the set-based path (one SQL condition over a device table alias, GIN-indexable
for equality and presence on the JSONB scopes); ``matches`` evaluates the same terms against one
device's document in Python. ``tests/devices_app/test_filtering.py`` holds both to the same table.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DataError, connection, transaction

from config.timestamps import rfc3339_fixed_width
from devices_app.exceptions import InvalidFilter

SCOPES = ("identity", "inventory", "system", "tags")
OPERATORS = (
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$regex",
)
RANGE_OPERATORS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
SYSTEM_ATTRIBUTES = ("group", "status", "created_ts", "updated_ts")

MAX_TERMS = 64
MAX_ATTRIBUTE_NAME_LENGTH = 1024
MAX_STRING_VALUE_LENGTH = 4096
MAX_IN_VALUES = 1000
MAX_PATTERN_LENGTH = 1024
# PostgreSQL's regex dialect (ARE) reads \b as backspace, Python's as a word boundary.
_UNPORTABLE_ESCAPES = re.compile(r"\\[bB]")

TIMESTAMP_FORMAT_SQL = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


@dataclass(frozen=True)
class Term:
    scope: str
    attribute: str
    operator: str
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "attribute": self.attribute,
            "type": self.operator,
            "value": self.value,
        }


# --- validation ---------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return "other"


def _check_scalar(value: Any, where: str) -> None:
    kind = _kind(value)
    if kind == "other":
        raise InvalidFilter(f"{where}: value must be a string or a number")
    if kind == "number" and not math.isfinite(value):
        raise InvalidFilter(f"{where}: value must be a finite number")
    if kind == "string":
        if len(value) > MAX_STRING_VALUE_LENGTH:
            raise InvalidFilter(
                f"{where}: value longer than {MAX_STRING_VALUE_LENGTH} characters"
            )
        if "\x00" in value:
            raise InvalidFilter(f"{where}: value contains a NUL character")


def _check_pattern(pattern: Any, where: str) -> None:
    if not isinstance(pattern, str) or not pattern:
        raise InvalidFilter(f"{where}: $regex needs a non-empty string pattern")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidFilter(
            f"{where}: pattern longer than {MAX_PATTERN_LENGTH} characters"
        )
    if "\x00" in pattern:
        raise InvalidFilter(f"{where}: pattern contains a NUL character")
    if _UNPORTABLE_ESCAPES.search(pattern.replace("\\\\", "")):
        raise InvalidFilter(f"{where}: \\b and \\B are not supported in $regex")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InvalidFilter(f"{where}: invalid regular expression: {exc}") from None


def parse_term(raw: Any, index: int = 0) -> Term:
    """Validate one ``{scope, attribute, type, value}`` term."""
    where = f"filter term {index}"
    if not isinstance(raw, Mapping):
        raise InvalidFilter(f"{where}: must be an object")
    unknown = set(raw) - {"scope", "attribute", "type", "value"}
    if unknown:
        raise InvalidFilter(f"{where}: unknown keys {sorted(unknown)}")
    scope, attribute, operator = (
        raw.get("scope"),
        raw.get("attribute"),
        raw.get("type"),
    )
    if scope not in SCOPES:
        raise InvalidFilter(f"{where}: unknown scope {scope!r}")
    if (
        not isinstance(attribute, str)
        or not attribute
        or len(attribute) > MAX_ATTRIBUTE_NAME_LENGTH
        or "\x00" in attribute
    ):
        raise InvalidFilter(
            f"{where}: attribute must be a string of 1..{MAX_ATTRIBUTE_NAME_LENGTH} characters"
        )
    if scope == "system" and attribute not in SYSTEM_ATTRIBUTES:
        raise InvalidFilter(f"{where}: unknown system attribute {attribute!r}")
    if operator not in OPERATORS:
        raise InvalidFilter(f"{where}: unknown operator {operator!r}")
    if "value" not in raw:
        raise InvalidFilter(f"{where}: value is required")
    value = raw["value"]
    if operator in ("$in", "$nin"):
        if not isinstance(value, list):
            raise InvalidFilter(f"{where}: {operator} needs a list value")
        if len(value) > MAX_IN_VALUES:
            raise InvalidFilter(f"{where}: more than {MAX_IN_VALUES} values")
        for item in value:
            _check_scalar(item, where)
    elif operator == "$exists":
        if not isinstance(value, bool):
            raise InvalidFilter(f"{where}: $exists needs true or false")
    elif operator == "$regex":
        _check_pattern(value, where)
    else:
        _check_scalar(value, where)
    return Term(scope=scope, attribute=attribute, operator=operator, value=value)


def parse_terms(raw: Any, *, allow_empty: bool = False) -> list[Term]:
    """Validate a list of terms; raise InvalidFilter (400) on anything malformed or oversize."""
    if not isinstance(raw, list):
        raise InvalidFilter("filter terms must be a list")
    if not raw and not allow_empty:
        raise InvalidFilter("a filter needs at least one term")
    if len(raw) > MAX_TERMS:
        raise InvalidFilter(f"a filter has at most {MAX_TERMS} terms")
    return [parse_term(item, index) for index, item in enumerate(raw)]


def check_patterns_in_database(terms: Sequence[Term]) -> None:
    """Reject $regex patterns PostgreSQL cannot compile (Python accepted them in ``parse_term``)."""
    for index, term in enumerate(terms):
        if term.operator != "$regex":
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT '' ~ %s", [term.value])
        except DataError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise InvalidFilter(f"filter term {index}: {reason}") from None


# --- the document view of one device -------------------------------------------------------


def device_document(device: Any) -> dict[str, dict[str, Any]]:
    """The attribute scopes of one device, as filters see them."""
    system: dict[str, Any] = {
        "status": device.status,
        "created_ts": rfc3339_fixed_width(device.created_ts),
        "updated_ts": rfc3339_fixed_width(device.updated_ts),
    }
    if device.group_name is not None:
        system["group"] = device.group_name
    return {
        "identity": {**(device.identity_data or {}), "status": device.status},
        "inventory": dict(device.inventory or {}),
        "system": system,
        "tags": dict(device.tags or {}),
    }


# --- Python evaluation (one device) ----------------------------------------------------------

_MISSING = object()
_NEGATIONS = {"$ne": "$eq", "$nin": "$in"}


def _elements(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _equal(element: Any, value: Any) -> bool:
    kind = _kind(element)
    return kind != "other" and kind == _kind(value) and element == value


def _compare(element: Any, operator: str, value: Any) -> bool:
    kind = _kind(element)
    if kind == "other" or kind != _kind(value):
        return False
    if operator == "$gt":
        return element > value
    if operator == "$gte":
        return element >= value
    if operator == "$lt":
        return element < value
    return element <= value


def term_matches(term: Term, document: Mapping[str, Mapping[str, Any]]) -> bool:
    """Does one device document satisfy one term (MongoDB semantics, see module docstring)?"""
    current = document.get(term.scope, {}).get(term.attribute, _MISSING)
    operator, value = term.operator, term.value
    if operator == "$exists":
        return (current is not _MISSING) is value
    if operator in _NEGATIONS:
        positive = Term(term.scope, term.attribute, _NEGATIONS[operator], value)
        return not term_matches(positive, document)
    if current is _MISSING:
        return False
    elements = _elements(current)
    if operator == "$eq":
        return any(_equal(element, value) for element in elements)
    if operator == "$in":
        return any(_equal(element, item) for element in elements for item in value)
    if operator == "$regex":
        pattern = re.compile(value)
        return any(
            isinstance(element, str) and pattern.search(element) is not None
            for element in elements
        )
    return any(_compare(element, operator, value) for element in elements)


def matches(terms: Sequence[Term], document: Mapping[str, Mapping[str, Any]]) -> bool:
    """All terms hold for this device document."""
    return all(term_matches(term, document) for term in terms)


# --- SQL compilation (set-based) ---------------------------------------------------------------

_JSONB_COLUMNS = {"identity": "identity_data", "inventory": "inventory", "tags": "tags"}


def _text_expression(term: Term, table: str) -> str | None:
    """Scalar text columns (never lists) of the identity/system scopes; None for JSONB attributes."""
    if term.attribute == "status" and term.scope in ("identity", "system"):
        return f"{table}.status::text"
    if term.scope != "system":
        return None
    if term.attribute == "group":
        return f"{table}.group_name::text"
    column = "created_ts" if term.attribute == "created_ts" else "updated_ts"
    return f"to_char({table}.{column} AT TIME ZONE 'UTC', '{TIMESTAMP_FORMAT_SQL}')"


def _compile_text(term: Term, expr: str) -> tuple[str, list[Any]]:
    operator, value = term.operator, term.value
    if operator == "$exists":
        return f"({expr} IS NOT NULL)" if value else f"({expr} IS NULL)", []
    if operator in ("$eq", "$ne"):
        if not isinstance(value, str):
            return ("FALSE", []) if operator == "$eq" else ("TRUE", [])
        sql = f"COALESCE({expr} = %s, FALSE)"
        return (sql if operator == "$eq" else f"NOT {sql}"), [value]
    if operator in ("$in", "$nin"):
        strings = [item for item in value if isinstance(item, str)]
        sql = f"COALESCE({expr} = ANY(%s::text[]), FALSE)"
        return (sql if operator == "$in" else f"NOT {sql}"), [strings]
    if operator == "$regex":
        return f"COALESCE({expr} ~ %s, FALSE)", [value]
    if not isinstance(value, str):
        return "FALSE", []
    return f'COALESCE(({expr}) COLLATE "C" {RANGE_OPERATORS[operator]} %s, FALSE)', [
        value
    ]


def _containment_params(attribute: str, values: Sequence[Any]) -> list[str]:
    # {"a": v} matches a scalar v; {"a": [v]} matches a list holding v. Both use the GIN index.
    params: list[str] = []
    for value in values:
        params.append(json.dumps({attribute: value}))
        params.append(json.dumps({attribute: [value]}))
    return params


def _compile_jsonb(term: Term, column: str) -> tuple[str, list[Any]]:
    operator, value, attribute = term.operator, term.value, term.attribute
    if operator == "$exists":
        sql = f"({column} ? %s)"
        return (sql if value else f"NOT {sql}"), [attribute]
    if operator in ("$eq", "$ne", "$in", "$nin"):
        values = value if operator in ("$in", "$nin") else [value]
        if not values:
            return ("FALSE", []) if operator == "$in" else ("TRUE", [])
        params = _containment_params(attribute, values)
        placeholders = ", ".join(["%s::jsonb"] * len(params))
        sql = f"({column} @> ANY(ARRAY[{placeholders}]))"
        return (sql if operator in ("$eq", "$in") else f"NOT {sql}"), params
    if operator == "$regex":
        kind, scalar, element, params = "string", "%s ~ %s", "%s ~ %s", [value]
    elif _kind(value) == "string":
        kind, params = "string", [value]
        scalar = element = f'%s COLLATE "C" {RANGE_OPERATORS[operator]} %s'
    else:
        kind, params = "number", [json.dumps(value)]
        scalar = element = f"%s::numeric {RANGE_OPERATORS[operator]} %s::numeric"
    scalar_sql = scalar % (f"({column} ->> %s)", "%s")
    element_sql = element % ("(e.value #>> '{}')", "%s")
    sql = (
        f"(CASE jsonb_typeof({column} -> %s)"
        f" WHEN '{kind}' THEN {scalar_sql}"
        f" WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({column} -> %s) e"
        f" WHERE jsonb_typeof(e.value) = '{kind}' AND {element_sql})"
        " ELSE FALSE END)"
    )
    return sql, [attribute, attribute, *params, attribute, *params]


def compile_term(term: Term, *, table: str = "d") -> tuple[str, list[Any]]:
    """One term as a SQL boolean expression over the device table alias ``table`` (never NULL)."""
    text_expr = _text_expression(term, table)
    if text_expr is not None:
        return _compile_text(term, text_expr)
    return _compile_jsonb(term, f"{table}.{_JSONB_COLUMNS[term.scope]}")


def compile_terms(terms: Sequence[Term], *, table: str = "d") -> tuple[str, list[Any]]:
    """The AND of all terms as one SQL condition with its parameters (``TRUE`` for no terms)."""
    if not terms:
        return "TRUE", []
    parts, params = [], []
    for term in terms:
        sql, term_params = compile_term(term, table=table)
        parts.append(sql)
        params.extend(term_params)
    return "(" + " AND ".join(parts) + ")", params


def sort_expression(
    scope: str, attribute: str, *, table: str = "d"
) -> tuple[str, list[Any]]:
    """SQL expression to order devices by one attribute (InvalidFilter for unknown scopes)."""
    if scope not in SCOPES:
        raise InvalidFilter(f"sort: unknown scope {scope!r}")
    if scope == "system" and attribute not in SYSTEM_ATTRIBUTES:
        raise InvalidFilter(f"sort: unknown system attribute {attribute!r}")
    if not isinstance(attribute, str) or not attribute:
        raise InvalidFilter("sort: attribute must be a non-empty string")
    probe = Term(scope=scope, attribute=attribute, operator="$exists", value=True)
    text_expr = _text_expression(probe, table)
    if text_expr is not None:
        return f'({text_expr}) COLLATE "C"', []
    return f"({table}.{_JSONB_COLUMNS[scope]} -> %s)", [attribute]


# --- free-text search (Mender's search ``text``) -------------------------------------------------

_TEXT_SCOPES = ("identity_data", "inventory", "tags")


def text_keywords(text: str) -> list[str]:
    """Mender's keyword split: runs of letters and digits; everything else separates words."""
    return "".join(ch if ch.isalnum() else " " for ch in text).split()


def compile_text_search(
    keywords: Sequence[str], *, table: str = "d"
) -> tuple[str, str, list[Any]]:
    """(condition, rank expression, params) matching devices holding any of the keywords.

    As Mender's full-text index: a device's words are its id, its static group and the string
    values of its identity, inventory and tags attributes, split as ``text_keywords`` does;
    whole words, any case, ranked by how well they match. Both expressions take ``params``.
    """
    values = " , ".join(
        f"(SELECT string_agg(e.value #>> '{{}}', ' ') FROM jsonb_each({table}.{column}) e "
        "WHERE jsonb_typeof(e.value) = 'string')"
        for column in _TEXT_SCOPES
    )
    document = (
        "to_tsvector('simple', regexp_replace(concat_ws(' ', "
        f"{table}.id::text, {table}.group_name, {values}), '[^[:alnum:]]+', ' ', 'g'))"
    )
    query = "to_tsquery('simple', %s)"
    params = [" | ".join(keywords)]
    return f"({document} @@ {query})", f"ts_rank({document}, {query})", params
