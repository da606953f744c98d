"""Parameters for table tests of a state machine: every (current, to) pair and its verdict."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence

import pytest
from _pytest.mark import ParameterSet


def transition_table(
    statuses: Sequence[str], allowed: Collection[tuple[str, str]]
) -> list[ParameterSet]:
    """One ``(current, to, is_allowed)`` case per ordered pair of ``statuses``, self pairs too."""
    unknown = set(itertools.chain(*allowed)) - set(statuses)
    assert not unknown, f"allowed pairs name unknown statuses {unknown}"
    return [
        pytest.param(
            current,
            to,
            (current, to) in allowed,
            id=f"{current}->{to}:{'allowed' if (current, to) in allowed else 'refused'}",
        )
        for current, to in itertools.product(statuses, repeat=2)
    ]
