"""The sequence templates of get_sequences and the filters of §5.1 (an invented, flagged shape)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Final

from .._spec.contract import SEQUENCE_FILTER_DEFAULT, SEQUENCE_FILTERS
from .._spec.validation import sequence_filter

__all__ = ["SEQUENCES", "filter_sequences"]

#: The four filters, their allowed values and their defaults (§5.1): one copy, in the contract.
FILTERS: Final = SEQUENCE_FILTERS

_STEPS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "short": {
        "brand_awareness": ("first_follow_up", "share_material"),
        "event_attendance": ("first_follow_up",),
        "meeting": ("first_follow_up", "stage_ambition"),
    },
    "medium": {
        "brand_awareness": ("first_follow_up", "share_material", "stage_ambition"),
        "event_attendance": ("first_follow_up", "share_material", "hiring_activity"),
        "meeting": ("first_follow_up", "stage_ambition", "share_material"),
    },
    "long": {
        "brand_awareness": (
            "first_follow_up",
            "share_material",
            "stage_ambition",
            "hiring_activity",
        ),
        "event_attendance": (
            "first_follow_up",
            "share_material",
            "hiring_activity",
            "stage_ambition",
        ),
        "meeting": (
            "first_follow_up",
            "stage_ambition",
            "share_material",
            "hiring_activity",
            "share_material",
        ),
    },
}
_WAIT_DAYS: Final = {"rapid": 2, "normal": 5, "long_term": 14}


def _build() -> list[dict[str, Any]]:
    sequences: list[dict[str, Any]] = []
    for length, objective, cadence, saturated in itertools.product(
        *(values for values, _ in FILTERS.values())
    ):
        kinds = _STEPS[length][objective]
        if saturated == "true":
            # A saturated-market sequence opens with a connection note (§5.1), same length.
            kinds = ("connection_request", *kinds[: max(len(kinds) - 1, 1)])
        sequences.append(
            {
                "id": f"seq_{length}_{objective}_{cadence}_{saturated}",
                "name": (
                    f"{length.title()} {objective.replace('_', ' ')} sequence, "
                    f"{cadence.replace('_', ' ')} cadence"
                    f"{', saturated markets' if saturated == 'true' else ''}"
                ),
                "sequence_length": length,
                "campaign_objective": objective,
                "cadence_profile": cadence,
                "saturated_markets": saturated == "true",
                "steps": [
                    {
                        "step": n,
                        "messageType": kind,
                        "wait_days": 0 if n == 1 else _WAIT_DAYS[cadence] * (n - 1),
                    }
                    for n, kind in enumerate(kinds, 1)
                ],
            }
        )
    return sequences


SEQUENCES: Final = _build()


def filter_sequences(query: Mapping[str, str]) -> list[dict[str, Any]] | str:
    """The sequences for a query, or the 422 message for a bad value.

    No filter parameter: everything. Any filter parameter: all four apply, the omitted ones (and
    the literal ``default``) at their defaults.
    """
    given = {name: query[name] for name in FILTERS if name in query}
    if not given:
        return SEQUENCES
    wanted: dict[str, str] = {}
    for name, (_, default) in FILTERS.items():
        value, problem = sequence_filter(name, given.get(name, SEQUENCE_FILTER_DEFAULT))
        if problem is not None:
            return problem
        wanted[name] = default if value == SEQUENCE_FILTER_DEFAULT else value
    return [
        seq
        for seq in SEQUENCES
        if seq["sequence_length"] == wanted["sequence_length"]
        and seq["campaign_objective"] == wanted["campaign_objective"]
        and seq["cadence_profile"] == wanted["cadence_profile"]
        and str(seq["saturated_markets"]).lower() == wanted["saturated_markets"]
    ]
