"""Filter semantics: the SQL compiler and the Python single-device check agree with one table."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import pytest
from django.db import connection

from devices_app.filtering import (
    InvalidFilter,
    check_patterns_in_database,
    compile_terms,
    device_document,
    matches,
    parse_terms,
)
from devices_app.models import Device

pytestmark = pytest.mark.django_db

_serial = itertools.count(1)


def make_device(
    *,
    status: str = "accepted",
    identity: dict[str, Any] | None = None,
    inventory: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    group_name: str | None = None,
) -> Device:
    """A device row as devauth/inventory would leave it (no HTTP, no services)."""
    identity = identity or {"mac": f"02:00:00:00:{next(_serial):04x}"}
    return Device.objects.create(
        identity_data=identity,
        identity_hash=hashlib.sha256(
            repr(sorted(identity.items())).encode()
        ).hexdigest(),
        status=status,
        inventory=inventory or {},
        tags=tags or {},
        group_name=group_name,
    )


# The fleet every case runs against: scalars, lists, missing attributes, numbers vs numeric strings.
FLEET: dict[str, dict[str, Any]] = {
    "str1": {
        "identity": {"mac": "aa", "sku": ["s1", "s2"]},
        "inventory": {"ver": "1", "name": "alpha", "list": ["a", "b"], "num": 5},
        "tags": {"env": "prod"},
        "group_name": "g1",
    },
    "num1": {
        "identity": {"mac": "bb"},
        "inventory": {"ver": 1, "name": "beta", "list": ["c"], "num": 10.5},
        "tags": {"env": "dev"},
        "group_name": "g2",
    },
    "list_str": {
        "identity": {"mac": "cc"},
        "inventory": {"ver": ["1", "2"], "name": ["gamma", "Alpha"], "nums": [1, 20]},
    },
    "list_num": {
        "identity": {"mac": "dd"},
        "inventory": {"ver": [1, 3], "num": [2, 7]},
    },
    "empty": {"identity": {"mac": "ee"}, "status": "pending"},
    "float1": {"identity": {"mac": "ff"}, "inventory": {"ver": 1.0, "x": "1.0"}},
}
ALL = set(FLEET)


def t(scope: str, attribute: str, operator: str, value: Any) -> dict[str, Any]:
    return {"scope": scope, "attribute": attribute, "type": operator, "value": value}


def inv(attribute: str, operator: str, value: Any) -> dict[str, Any]:
    return t("inventory", attribute, operator, value)


CASES: list[tuple[str, list[dict[str, Any]], set[str]]] = [
    # $eq: type-sensitive, any list element
    ("eq string", [inv("ver", "$eq", "1")], {"str1", "list_str"}),
    ("eq number", [inv("ver", "$eq", 1)], {"num1", "list_num", "float1"}),
    ("eq float equals int", [inv("ver", "$eq", 1.0)], {"num1", "list_num", "float1"}),
    ("eq list element", [inv("list", "$eq", "b")], {"str1"}),
    ("eq numeric string is not a number", [inv("x", "$eq", 1)], set()),
    ("eq missing attribute", [inv("nope", "$eq", "1")], set()),
    # $ne: negation, so devices without the attribute match
    ("ne string", [inv("ver", "$ne", "1")], {"num1", "list_num", "empty", "float1"}),
    ("ne number", [inv("ver", "$ne", 1)], {"str1", "list_str", "empty"}),
    ("ne list element", [inv("list", "$ne", "a")], ALL - {"str1"}),
    ("ne missing attribute", [inv("nope", "$ne", "x")], ALL),
    # $in / $nin
    ("in mixed types", [inv("ver", "$in", ["2", 3])], {"list_str", "list_num"}),
    ("in empty list", [inv("ver", "$in", [])], set()),
    ("in list elements", [inv("list", "$in", ["c", "z"])], {"num1"}),
    (
        "nin string",
        [inv("ver", "$nin", ["1"])],
        {"num1", "list_num", "empty", "float1"},
    ),
    ("nin list", [inv("list", "$nin", ["a", "c"])], ALL - {"str1", "num1"}),
    ("nin empty list", [inv("ver", "$nin", [])], ALL),
    # ranges: numbers with numbers, strings with strings (lexicographic), any element
    ("gt number", [inv("num", "$gt", 5)], {"num1", "list_num"}),
    ("gte number", [inv("num", "$gte", 5)], {"str1", "num1", "list_num"}),
    ("lt number", [inv("num", "$lt", 5)], {"list_num"}),
    ("lte number", [inv("num", "$lte", 2)], {"list_num"}),
    (
        "gt number ignores strings",
        [inv("ver", "$gt", 0)],
        {"num1", "list_num", "float1"},
    ),
    ("gt string ignores numbers", [inv("ver", "$gt", "1")], {"list_str"}),
    ("gte numeric string", [inv("ver", "$gte", "0")], {"str1", "list_str"}),
    ("lt string lexicographic", [inv("name", "$lt", "b")], {"str1", "list_str"}),
    (
        "gt string is case-sensitive",
        [inv("name", "$gt", "B")],
        {"str1", "num1", "list_str"},
    ),
    ("lte string", [inv("name", "$lte", "Alpha")], {"list_str"}),
    ("gt missing attribute", [inv("nope", "$gt", 0)], set()),
    ("gt list of numbers", [inv("nums", "$gt", 10)], {"list_str"}),
    # $exists
    ("exists true", [inv("name", "$exists", True)], {"str1", "num1", "list_str"}),
    ("exists false", [inv("name", "$exists", False)], {"list_num", "empty", "float1"}),
    # $regex: strings only (numbers never match), any element, unanchored
    ("regex prefix", [inv("name", "$regex", "^al")], {"str1"}),
    (
        "regex suffix any element",
        [inv("name", "$regex", "a$")],
        {"str1", "num1", "list_str"},
    ),
    ("regex class", [inv("name", "$regex", "^[A-Z]")], {"list_str"}),
    (
        "regex digits skips numbers",
        [inv("ver", "$regex", r"^\d+$")],
        {"str1", "list_str"},
    ),
    ("regex alternation", [inv("name", "$regex", "(eta|amm)")], {"num1", "list_str"}),
    ("regex missing attribute", [inv("nope", "$regex", ".")], set()),
    # other scopes
    ("identity eq", [t("identity", "mac", "$eq", "bb")], {"num1"}),
    ("identity list element", [t("identity", "sku", "$eq", "s2")], {"str1"}),
    ("identity status", [t("identity", "status", "$eq", "pending")], {"empty"}),
    (
        "identity status ne",
        [t("identity", "status", "$ne", "pending")],
        ALL - {"empty"},
    ),
    ("tags eq", [t("tags", "env", "$eq", "prod")], {"str1"}),
    ("tags ne", [t("tags", "env", "$ne", "prod")], ALL - {"str1"}),
    ("tags exists", [t("tags", "env", "$exists", True)], {"str1", "num1"}),
    ("system group eq", [t("system", "group", "$eq", "g1")], {"str1"}),
    ("system group number never matches", [t("system", "group", "$eq", 1)], set()),
    ("system group ne", [t("system", "group", "$ne", "g1")], ALL - {"str1"}),
    ("system group in", [t("system", "group", "$in", ["g2", "g9"])], {"num1"}),
    ("system group nin", [t("system", "group", "$nin", ["g2"])], ALL - {"num1"}),
    ("system group gt", [t("system", "group", "$gt", "g1")], {"num1"}),
    ("system group regex", [t("system", "group", "$regex", "^g")], {"str1", "num1"}),
    (
        "system group exists false",
        [t("system", "group", "$exists", False)],
        ALL - {"str1", "num1"},
    ),
    ("system status", [t("system", "status", "$eq", "accepted")], ALL - {"empty"}),
    ("system created after", [t("system", "created_ts", "$gt", "2000-01-01")], ALL),
    ("system created before", [t("system", "created_ts", "$lt", "2000-01-01")], set()),
    ("system created regex", [t("system", "created_ts", "$regex", r"^\d{4}-")], ALL),
    # AND
    (
        "and",
        [inv("ver", "$eq", 1), inv("num", "$gt", 5)],
        {"num1", "list_num"},
    ),
    ("and contradiction", [inv("ver", "$eq", "1"), inv("ver", "$ne", "1")], set()),
]


@pytest.fixture
def fleet() -> dict[str, Device]:
    return {
        name: make_device(
            status=spec.get("status", "accepted"),
            identity=spec["identity"],
            inventory=spec.get("inventory"),
            tags=spec.get("tags"),
            group_name=spec.get("group_name"),
        )
        for name, spec in FLEET.items()
    }


@pytest.mark.parametrize(
    ("terms", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_operator_semantics_same_through_sql_and_python(
    fleet: dict[str, Device], terms: list[dict[str, Any]], expected: set[str]
) -> None:
    # given
    parsed = parse_terms(terms)
    check_patterns_in_database(parsed)
    names_by_id = {device.id: name for name, device in fleet.items()}

    # when: the set-based path (what the workers run) ...
    condition, params = compile_terms(parsed, table="d")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT d.id FROM devices_app_device d WHERE d.id = ANY(%s) AND {condition}",
            [list(names_by_id), *params],
        )
        through_sql = {names_by_id[row[0]] for row in cursor.fetchall()}
    # ... and the single-device check on each device as stored
    through_python = {
        name
        for name, device in fleet.items()
        if matches(parsed, device_document(Device.objects.get(pk=device.pk)))
    }

    # then
    assert through_sql == expected
    assert through_python == expected


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ("not a list", "must be a list"),
        ([], "at least one term"),
        (["x"], "must be an object"),
        ([inv("a", "$like", "x")], "unknown operator"),
        ([t("hardware", "a", "$eq", "x")], "unknown scope"),
        ([t("system", "colour", "$eq", "x")], "unknown system attribute"),
        ([inv("", "$eq", "x")], "attribute must be"),
        ([inv("a" * 1025, "$eq", "x")], "attribute must be"),
        ([inv("a", "$eq", "x" * 4097)], "longer than 4096"),
        ([inv("a", "$eq", None)], "string or a number"),
        ([inv("a", "$eq", True)], "string or a number"),
        ([inv("a", "$eq", ["x"])], "string or a number"),
        ([inv("a", "$eq", {"x": 1})], "string or a number"),
        ([inv("a", "$in", "x")], "needs a list"),
        ([inv("a", "$in", list(range(1001)))], "more than 1000"),
        ([inv("a", "$in", [["x"]])], "string or a number"),
        ([inv("a", "$exists", "yes")], "true or false"),
        ([inv("a", "$regex", "(")], "invalid regular expression"),
        ([inv("a", "$regex", 5)], "non-empty string pattern"),
        ([inv("a", "$regex", r"\bword")], r"\b and \B"),
        (
            [{"scope": "inventory", "attribute": "a", "type": "$eq"}],
            "value is required",
        ),
        ([{**inv("a", "$eq", 1), "extra": 1}], "unknown keys"),
        ([inv("a", "$eq", 1)] * 65, "at most 64 terms"),
    ],
)
def test_malformed_terms_are_rejected(terms: Any, message: str) -> None:
    with pytest.raises(InvalidFilter) as error:
        parse_terms(terms)
    assert message in error.value.message


def test_pattern_python_accepts_but_postgresql_rejects_is_invalid() -> None:
    # given: a named group is fine for Python's re but not for PostgreSQL's ARE
    terms = parse_terms([inv("a", "$regex", "(?P<n>x)")])

    # when / then
    with pytest.raises(InvalidFilter, match="filter term 0"):
        check_patterns_in_database(terms)
