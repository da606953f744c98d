"""Property-based fuzzing of every API endpoint (issue 12): never a 5xx, and a 4xx changes nothing.

The endpoints come from the URL conf (tests.api_surface), so a new endpoint is fuzzed as soon as
it is routed. Each one gets bodies and query strings built from the values that used to break
the server (NUL, lone surrogates, integers past PostgreSQL's ranges, deep nesting, NaN, over-long
strings), generic JSON, and, where a valid body is known, that body with one value replaced.
Requests carry a real device token (device API) or user token (management API) and real ids in
paths, so they get past authentication and lookups.

Each example runs in a savepoint that is rolled back afterwards, so examples are independent
and a fixed seed per endpoint reproduces a run exactly. Sizes: FUZZ_EXAMPLES per endpoint and
method (env FLOTILLA_FUZZ_EXAMPLES), about a minute on a loaded CI machine.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import uuid
import zlib
from collections import Counter
from typing import Any, cast
from urllib.parse import quote, urlencode

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from tests import factories
from tests.api_surface import Endpoint, api_endpoints, table_fingerprint
from tests.deployments_app.engine_helpers import create_deployment, poll
from tests.device_keys import make_key

pytestmark = pytest.mark.django_db

FUZZ_EXAMPLES = int(os.environ.get("FLOTILLA_FUZZ_EXAMPLES", "10"))
# Refusals that write by design: unauthenticated endpoints record the attempt (a pending auth
# set, a failed login), and a poll stores the reported inventory and, like Mender, fails the
# device's deployment when the request conflicts with the one it was assigned with (409).
_NEXT = "/api/devices/{}/deployments/device/deployments/next"
MAY_WRITE_ON_REFUSAL = {
    ("post", "/api/devices/v1/authentication/auth_requests"): {401, 429},
    ("post", "/api/management/v1/useradm/auth/login"): {401, 429},
    ("get", _NEXT.format("v1")): {409},
    ("post", _NEXT.format("v1")): {409},
    ("post", _NEXT.format("v2")): {409},
}

NASTY_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ufeff",
    "💥",
    "名前",
    "%00",
    "x" * 1025,
    "y" * 4097,
    "' OR 1=1 --",
    "../../etc/passwd",
    "$eq",
    "null",
    "true",
    "1e400",
    "9223372036854775808",
    "2024-01-01T00:00:00Z",
    "inventory",
    "aborted",
    "accepted",
]
NASTY_INTEGERS = [
    0,
    -1,
    1,
    100,
    101,
    2**15,
    2**31 - 1,
    2**31,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**40,
]
FIELD_NAMES = [
    "name",
    "artifact_name",
    "device_type",
    "devices",
    "all_devices",
    "phases",
    "batch_size",
    "start_ts",
    "max_devices",
    "filter_id",
    "retries",
    "status",
    "substate",
    "messages",
    "message",
    "level",
    "timestamp",
    "group",
    "terms",
    "filters",
    "scope",
    "attribute",
    "type",
    "value",
    "sort",
    "order",
    "page",
    "per_page",
    "attributes",
    "identity_data",
    "pubkey",
    "id_data",
    "deployment_ids",
    "description",
    "notes",
    "device_provides",
]
QUERY_KEYS = [
    "page",
    "per_page",
    "sort",
    "status",
    "search",
    "name",
    "group",
    "has_group",
    "id",
    "created_after",
    "created_before",
    "device_type",
    "description",
    "artifact_name",
    "kernel",
    "inventory/kernel",
    "identity/mac",
    "x-amz-date",
    "x-men-signature",
]
# Bodies no JSON encoder writes but a client can send.
RAW_BODIES = [
    b"",
    b"{",
    b"\xff\xfe",
    b"NaN",
    b"[1e400]",
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 40 + b"1" + b"}" * 40,
    b'"\\u0000"',
    b"1" + b"0" * 5000,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NASTY_INTEGERS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELD_NAMES), st.sampled_from(NASTY_STRINGS)),
            children,
            max_size=4,
        ),
    ),
    max_leaves=10,
)
query_values = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from([str(n) for n in NASTY_INTEGERS]),
    st.text(max_size=10),
)


def _valid_bodies(ids: dict[str, str], pubkey: str) -> dict[tuple[str, str], Any]:
    """Bodies the endpoints accept, keyed by (method, route); the fuzzer mutates one value."""
    term = {"scope": "inventory", "attribute": "kernel", "type": "$eq", "value": "6.1"}
    devices = "/api/devices/v1"
    device_deployments = f"{devices}/deployments/device/deployments"
    management = "/api/management"
    deployments = f"{management}/v1/deployments/deployments"
    releases = f"{management}/v2/deployments/deployments/releases/<str:release_name>"
    inventory = f"{management}/v1/inventory"
    provides = {"artifact_name": "release-0", "device_type": "probe-device"}
    return {
        ("post", f"{devices}/deployments/device/deployments/next"): provides,
        ("post", "/api/devices/v2/deployments/device/deployments/next"): {
            "device_provides": provides,
            "update_control_map": True,
        },
        ("put", f"{device_deployments}/<uuid:deployment_id>/status"): {
            "status": "downloading",
            "substate": "fetching",
        },
        ("put", f"{device_deployments}/<uuid:deployment_id>/log"): {
            "messages": [
                {"timestamp": "2024-01-01T00:00:00Z", "level": "info", "message": "m"}
            ]
        },
        ("put", f"{devices}/inventory/device/attributes"): [
            {"name": "kernel", "value": "6.1"}
        ],
        ("patch", f"{devices}/inventory/device/attributes"): [
            {"name": "cpu", "value": ["a", "b"]}
        ],
        ("post", deployments): {
            "name": "d",
            "artifact_name": "release-1",
            "devices": [ids["device_id"]],
        },
        ("post", f"{deployments}/group/<str:group_name>"): {
            "name": "d",
            "artifact_name": "release-1",
            "phases": [{"batch_size": 50}, {"start_ts": "2030-01-01T00:00:00Z"}],
        },
        ("post", f"{management}/v2/deployments/deployments"): {
            "name": "d",
            "artifact_name": "release-1",
            "filter_id": ids["filter_id"],
            "max_devices": 10,
        },
        ("put", f"{deployments}/<uuid:deployment_id>/status"): {"status": "aborted"},
        ("post", f"{deployments}/statistics/list"): {
            "deployment_ids": [ids["deployment_id"]]
        },
        ("post", f"{management}/v2/devauth/devices"): {
            "identity_data": {"mac": "02:00:00:00:00:99"},
            "pubkey": pubkey,
        },
        (
            "put",
            f"{management}/v2/devauth/devices/<uuid:device_id>/auth/<uuid:auth_set_id>/status",
        ): {"status": "rejected"},
        ("put", f"{inventory}/devices/<uuid:device_id>/tags"): [
            {"name": "t", "value": "v"}
        ],
        ("patch", f"{inventory}/devices/<uuid:device_id>/tags"): [
            {"name": "t", "value": "v", "description": "d"}
        ],
        ("put", f"{inventory}/devices/<uuid:device_id>/group"): {"group": "g2"},
        ("patch", f"{inventory}/groups/<str:group_name>/devices"): [ids["device_id"]],
        ("delete", f"{inventory}/groups/<str:group_name>/devices"): [ids["device_id"]],
        ("post", f"{management}/v2/inventory/filters"): {"name": "f2", "terms": [term]},
        ("post", f"{management}/v2/inventory/filters/search"): {
            "filters": [term],
            "sort": [{"scope": "inventory", "attribute": "kernel", "order": "desc"}],
            "attributes": [{"scope": "identity", "attribute": "mac"}],
            "page": 1,
            "per_page": 20,
        },
        ("put", f"{management}/v1/deployments/artifacts/<str:artifact_id>"): {
            "description": "d"
        },
        ("patch", releases): {"notes": "n"},
        ("put", f"{releases}/tags"): ["a", "b"],
    }


@st.composite
def mutated(draw: Any, template: Any) -> Any:
    """``template`` with one value (at any depth) replaced, one key added, or unchanged."""
    if isinstance(template, dict) and template:
        key = draw(st.sampled_from(sorted(template)))
        action = draw(st.sampled_from(["replace", "descend", "add"]))
        result = dict(template)
        if action == "replace":
            result[key] = draw(json_values)
        elif action == "descend":
            result[key] = draw(mutated(template[key]))
        else:
            result[draw(st.sampled_from(FIELD_NAMES))] = draw(json_values)
        return result
    if isinstance(template, list) and template:
        index = draw(st.integers(0, len(template) - 1))
        result_list = list(template)
        result_list[index] = draw(mutated(template[index]))
        return result_list
    return draw(json_values)


def _body_strategy(template: Any) -> st.SearchStrategy[bytes]:
    # ensure_ascii writes lone surrogates as \\udXXX escapes, the way an attacker would send them
    as_json = st.builds(lambda value: json.dumps(value).encode(), json_values)
    choices = [as_json, st.sampled_from(RAW_BODIES)]
    if template is not None:
        choices.append(
            st.builds(lambda value: json.dumps(value).encode(), mutated(template))
        )
        choices.append(st.just(json.dumps(template).encode()))
    return st.one_of(*choices)


def _path_values(
    endpoint: Endpoint, ids: dict[str, str], method: str
) -> st.SearchStrategy[dict[str, str]]:
    strategies = {}
    for kind, name in endpoint.parameters:
        real = [ids[name]] if name in ids else []
        if kind == "uuid":
            options = st.sampled_from([*real, str(uuid.uuid4())])
        else:
            options = st.one_of(
                st.sampled_from([*real, "g1", "release-1"]),
                st.sampled_from(NASTY_STRINGS).filter(bool),
                st.text(min_size=1, max_size=10),
            ).map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe=""))
        strategies[name] = options
    return st.fixed_dictionaries(strategies)


def _query_string(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass")


@pytest.fixture
def fuzz_world(
    user_token: str, django_capture_on_commit_callbacks: Any
) -> dict[str, Any]:
    """A device (accepted, grouped, inventoried, polled into a deployment), a filter and an artifact."""
    device, device_token = factories.accepted_device("02:00:00:00:fe:01")
    management = APIClient()
    management.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token}")
    artifact = factories.artifact("release-1", ["probe-device"])
    with django_capture_on_commit_callbacks(execute=True):
        deployment_id = create_deployment(
            management,
            name="rollout",
            artifact_name="release-1",
            devices=[str(device.id)],
        )
        assert poll(APIClient(), device_token, "release-0").status_code == 200
        response = management.put(
            f"/api/management/v1/inventory/devices/{device.id}/group",
            {"group": "g1"},
            format="json",
        )
        assert response.status_code == 204
        response = management.post(
            "/api/management/v2/inventory/filters",
            {
                "name": "f1",
                "terms": [
                    {
                        "scope": "identity",
                        "attribute": "mac",
                        "type": "$exists",
                        "value": True,
                    }
                ],
            },
            format="json",
        )
        assert response.status_code == 201, response.content
    device_token_row = device.tokens.first()
    assert device_token_row is not None  # the accepted device has authenticated
    ids = {
        "device_id": str(device.id),
        "auth_set_id": str(device.auth_sets.get().id),
        "token_id": str(device_token_row.id),
        "deployment_id": deployment_id,
        "filter_id": response.json()["id"],
        "artifact_id": str(artifact.id),
        "group_name": "g1",
        "release_name": "release-1",
    }
    return {"ids": ids, "device_token": device_token, "user_token": user_token}


# Every endpoint also gets these, whatever the generator draws: each value that once broke it.
EXPLICIT_TEXTS = ["a\x00b", "\ud800", "y" * 4097]
# (Django decodes a query's invalid UTF-8 to U+FFFD, so no surrogate can arrive there.)
EXPLICIT_QUERY_VALUES = ["a\x00b", "y" * 4097, str(2**63), str(10**40)]
EXPLICIT_LEAVES: list[Any] = [
    *EXPLICIT_TEXTS,
    2**31,
    10**40,
    # 40 nested lists around "deep" (the accumulator changes type: annotated Any)
    functools.reduce(lambda inner, _: [inner], range(40), cast(Any, "deep")),
]


def _with_every_leaf(template: Any, leaf: Any) -> Any:
    if isinstance(template, dict):
        return {key: _with_every_leaf(value, leaf) for key, value in template.items()}
    if isinstance(template, list):
        return [_with_every_leaf(value, leaf) for value in template]
    return leaf


def _explicit_examples(
    endpoint: Endpoint, method: str, template: Any, ids: dict[str, str]
) -> list[dict[str, Any]]:
    """Deterministic requests for one endpoint and method: nasty paths, queries and bodies."""
    real_path = {
        name: ids.get(name, "g1" if kind == "str" else str(uuid.UUID(int=1)))
        for kind, name in endpoint.parameters
    }
    base: dict[str, Any] = {
        "path_values": real_path,
        "query": [],
        "body": b"",
        "signature": None,
    }
    found = [
        {**base, "query": [(key, value) for key in QUERY_KEYS]}
        for value in EXPLICIT_QUERY_VALUES
    ]
    if any(kind == "str" for kind, _ in endpoint.parameters):
        for text in EXPLICIT_TEXTS:
            nasty = quote(text.encode("utf-8", "surrogatepass"), safe="")
            path = {
                name: nasty if kind == "str" else real_path[name]
                for kind, name in endpoint.parameters
            }
            found.append({**base, "path_values": path})
    if method in endpoint.json_methods:
        found.extend({**base, "body": raw} for raw in RAW_BODIES)
        if template is not None:
            found.extend(
                {**base, "body": json.dumps(_with_every_leaf(template, leaf)).encode()}
                for leaf in EXPLICIT_LEAVES
            )
    return found


def _fuzz_runner(
    *,
    endpoint: Endpoint,
    method: str,
    client: APIClient,
    template: Any,
    ids: dict[str, str],
    statuses: Counter[int],
    baseline: dict[str, tuple[int, str]],
) -> Any:
    """A hypothesis test that sends FUZZ_EXAMPLES requests to one endpoint and method.

    ``baseline`` is the fingerprint every example starts from (each one is rolled back).
    """
    allowed_writes = MAY_WRITE_ON_REFUSAL.get((method, endpoint.route), set())

    @seed(zlib.crc32(f"{method} {endpoint.route}".encode()))
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        path_values=_path_values(endpoint, ids, method),
        query=st.lists(
            st.tuples(st.sampled_from(QUERY_KEYS), query_values), max_size=3
        ),
        body=_body_strategy(template),
        signature=st.sampled_from([None, "c2lnbmF0dXJl", "\x00", "ü"]),
    )
    def one_request(
        path_values: dict[str, str],
        query: list[tuple[str, str]],
        body: bytes,
        signature: str | None,
    ) -> None:
        url = endpoint.path(path_values)
        if query:
            url = f"{url}?{_query_string(query)}"
        extra: dict[str, Any] = (
            {} if signature is None else {"HTTP_X_MEN_SIGNATURE": signature}
        )
        where = f"{method.upper()} {url[:200]} body={body[:200]!r}"
        # every example starts from the same database: they are independent and reproducible
        savepoint = transaction.savepoint()
        try:
            if method == "get":
                response = client.get(url, **extra)
            else:
                response = client.generic(
                    method.upper(),
                    url,
                    # DRF's stub says str; generic() hands data to Django's, which takes bytes.
                    body,  # type: ignore[arg-type]
                    content_type="application/json",
                    **extra,
                )
            status = response.status_code
            statuses[status] += 1
            assert status < 500, f"{where} -> {status} {response.content[:300]!r}"
            if 400 <= status < 500 and status not in allowed_writes:
                assert table_fingerprint() == baseline, f"{where} -> {status} wrote"
                assert "error" in response.json(), where
        finally:
            transaction.savepoint_rollback(savepoint)

    for explicit in _explicit_examples(endpoint, method, template, ids):
        one_request = example(**explicit)(one_request)
    return one_request


def _first_lines(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [line for inner in exc.exceptions for line in _first_lines(inner)]
    return [str(exc).splitlines()[0]]


def test_fuzz_every_endpoint(fuzz_world: dict[str, Any], capsys: Any) -> None:
    ids = fuzz_world["ids"]
    templates = _valid_bodies(ids, make_key("p256").public_pem)
    endpoints = api_endpoints()
    clients = {}
    for role, token in (
        ("device", fuzz_world["device_token"]),
        ("user", fuzz_world["user_token"]),
        ("anonymous", None),
    ):
        clients[role] = APIClient(raise_request_exception=False)
        if token:
            clients[role].credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    covered = 0
    baseline = table_fingerprint()

    for endpoint in endpoints:
        role = "device" if endpoint.is_device else "user"
        if endpoint.route.endswith(("/auth_requests", "/auth/login")):
            role = "anonymous"
        for method in endpoint.methods:
            covered += 1
            runner = _fuzz_runner(
                endpoint=endpoint,
                method=method,
                client=clients[role],
                template=templates.get((method, endpoint.route)),
                ids=ids,
                statuses=statuses,
                baseline=baseline,
            )
            try:
                runner()
            except Exception as exc:  # collect every endpoint's failure, then assert
                failures.extend(_first_lines(exc))

    requests = sum(statuses.values())
    with capsys.disabled():
        sys.stdout.write(
            f"\nfuzz: {requests} requests, {covered} endpoint-methods on "
            f"{len(endpoints)} endpoints, statuses {dict(sorted(statuses.items()))}\n"
        )
    assert failures == [], "\n".join(failures)
    assert table_fingerprint() == baseline  # the savepoints did undo every example
    assert len(endpoints) >= 40
    assert covered >= 60
    assert requests >= covered * FUZZ_EXAMPLES // 2
