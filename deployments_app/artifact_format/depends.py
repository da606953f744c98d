"""Expansion of an artifact's depends map into the combinations the uniqueness index is built on."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from deployments_app.artifact_format.errors import ArtifactError

# Same ceiling as the Mender server, so an artifact it would refuse is refused here too.
MAX_DEPENDS_COMBINATIONS = 1024


def depends_combinations(
    depends: Mapping[str, str | Sequence[str]],
) -> list[dict[str, str]]:
    """Expand list values into every combination (cartesian product) of the depends map.

    `{"device_type": ["a", "b"], "x": "1"}` ->
    `[{"device_type": "a", "x": "1"}, {"device_type": "b", "x": "1"}]`.
    Keys are visited in sorted order, the last key varying fastest; repeated list values are
    collapsed so no combination appears twice. An empty map has exactly one (empty) combination.
    """
    keys = sorted(depends)
    choices: list[list[str]] = []
    total = 1
    for key in keys:
        value = depends[key]
        if isinstance(value, str):
            choices.append([value])
            continue
        if not isinstance(value, Sequence) or not all(
            isinstance(item, str) for item in value
        ):
            raise ArtifactError(
                f"depends {key!r} must be a string or a list of strings"
            )
        options = list(dict.fromkeys(value))
        if not options:
            raise ArtifactError(f"depends {key!r} must not be an empty list")
        total *= len(options)
        if total > MAX_DEPENDS_COMBINATIONS:
            raise ArtifactError(
                f"depends expand to more than {MAX_DEPENDS_COMBINATIONS} combinations"
            )
        choices.append(options)
    return [
        dict(zip(keys, combination, strict=True))
        for combination in itertools.product(*choices)
    ]
