from __future__ import annotations

from typing import Any

import pytest

from deployments_app.artifact_format import (
    MAX_DEPENDS_COMBINATIONS,
    ArtifactError,
    depends_combinations,
)


@pytest.mark.parametrize(
    ("depends", "expected"),
    [
        pytest.param({}, [{}], id="empty-map-has-one-combination"),
        pytest.param(
            {"device_type": ["a"]}, [{"device_type": "a"}], id="single-value-list"
        ),
        pytest.param(
            {"device_type": ["a", "b"], "x": "1"},
            [{"device_type": "a", "x": "1"}, {"device_type": "b", "x": "1"}],
            id="spec-example",
        ),
        pytest.param(
            {"rootfs-image.checksum": "abc", "device_type": ["beaglebone"]},
            [{"device_type": "beaglebone", "rootfs-image.checksum": "abc"}],
            id="scalar-and-list",
        ),
        pytest.param(
            {"b": ["1", "2"], "a": ["x", "y"]},
            [
                {"a": "x", "b": "1"},
                {"a": "x", "b": "2"},
                {"a": "y", "b": "1"},
                {"a": "y", "b": "2"},
            ],
            id="cartesian-product-sorted-keys-last-varies-fastest",
        ),
        pytest.param(
            {"device_type": ["a", "b", "a"], "artifact_name": ("r1",)},
            [
                {"artifact_name": "r1", "device_type": "a"},
                {"artifact_name": "r1", "device_type": "b"},
            ],
            id="repeated-values-collapse-and-tuples-accepted",
        ),
    ],
)
def test_depends_combinations(
    depends: dict[str, Any], expected: list[dict[str, str]]
) -> None:
    assert depends_combinations(depends) == expected


def test_depends_combinations_allows_exactly_the_maximum() -> None:
    # given: 2**10 == 1024 combinations
    depends = {f"k{i:02d}": ["0", "1"] for i in range(10)}

    # when
    combinations = depends_combinations(depends)

    # then
    assert MAX_DEPENDS_COMBINATIONS == 1024
    assert len(combinations) == 1024
    assert combinations[0] == {f"k{i:02d}": "0" for i in range(10)}
    assert combinations[-1] == {f"k{i:02d}": "1" for i in range(10)}
    assert len({tuple(sorted(c.items())) for c in combinations}) == 1024


@pytest.mark.parametrize(
    ("depends", "message"),
    [
        pytest.param(
            {"device_type": [str(i) for i in range(1025)]},
            "depends expand to more than 1024 combinations",
            id="one-list-too-long",
        ),
        pytest.param(
            {"a": [str(i) for i in range(32)], "b": [str(i) for i in range(33)]},
            "depends expand to more than 1024 combinations",
            id="product-too-large",
        ),
        pytest.param(
            {"device_type": []},
            "depends 'device_type' must not be an empty list",
            id="empty-list",
        ),
        pytest.param(
            {"x": 1}, "depends 'x' must be a string or a list of strings", id="number"
        ),
        pytest.param(
            {"x": ["a", 1]},
            "depends 'x' must be a string or a list of strings",
            id="list-with-number",
        ),
        pytest.param(
            {"x": None}, "depends 'x' must be a string or a list of strings", id="null"
        ),
        pytest.param(
            {"x": {"y": "z"}},
            "depends 'x' must be a string or a list of strings",
            id="object",
        ),
    ],
)
def test_depends_combinations_rejects(depends: dict[str, Any], message: str) -> None:
    with pytest.raises(ArtifactError) as excinfo:
        depends_combinations(depends)

    assert str(excinfo.value) == message
