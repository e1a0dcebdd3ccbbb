"""A record's reading -> one plan, and the presentations the planner refused: shared by the CDS Hooks
service and the cohort screen (`myotomy-cds screen`), so that both assess a record the same way.
No web framework here: a Dask worker imports it without FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.plan import Plan
from models.presentation import Presentation
from rules.planner import InputError, assess
from service.fhir_input import FhirReading

MAX_PRESENTATIONS: int = next(
    m.max_length for m in Presentation.model_fields["conditions"].metadata if getattr(m, "max_length", None)
)


@dataclass(frozen=True)
class NotAssessed:
    """A presentation the record codes but the planner refused (e.g. the age it needs is unknown)."""

    presentation: str
    reasons: tuple[str, ...]


def assess_reading(reading: FhirReading, context: tuple[Any, Any], why_not: bool = True) -> tuple[Plan | None, list[NotAssessed]]:
    """Assess what the record maps to; a presentation the planner refuses is reported, not dropped.
    `why_not=False`: the plan's why_not is left empty (rules/planner.py `assess`).

    All presentations are tried together first: the input model validates each condition as it
    would alone, plus constraints across them, so when the whole passes, each alone passes too and
    one call gives the same plan as checking each first. Only when the whole is refused is each
    presentation tried alone, so that one refusal does not hide the others.
    """
    if reading.presentation is None:
        return None, []
    age = reading.presentation.get("age")
    conditions = reading.presentation["conditions"]
    if len(conditions) <= MAX_PRESENTATIONS:
        try:
            return assess(reading.presentation, context=context, why_not=why_not), []
        except InputError:
            pass
    accepted, refused = [], []
    for condition in conditions:
        one = {**({"age": age} if age else {}), "conditions": [condition]}
        try:
            assess(one, context=context, why_not=False)  # only whether the planner accepts it alone
        except InputError as error:
            refused.append(NotAssessed(condition["presentation"], tuple(msg for _, msg in error.errors)))
            continue
        if len(accepted) < MAX_PRESENTATIONS:
            accepted.append(condition)
        else:
            refused.append(
                NotAssessed(condition["presentation"], (f"more than {MAX_PRESENTATIONS} presentations at once",))
            )
    if not accepted:
        return None, refused
    presentation = {**({"age": age} if age else {}), "conditions": accepted}
    return assess(presentation, context=context, why_not=why_not), refused
