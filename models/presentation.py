"""The input contract: a patient presentation as a clinician would describe it.

The patient-level part (age) is fixed here. What each presentation takes is knowledge: its details
are declared in `data/presentations/<id>/presentation.yaml`, and `input_model()` builds the pydantic
model of a condition from those declarations, so that the form, the JSON Schema, the benchmark
inputs and the property tests all read one source. Every detail is optional (None means "not
recorded"): an honest answer names what is missing instead of guessing.
"""

from __future__ import annotations

from typing import Annotated, Any, Iterable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from models.knowledge import Detail

AgeUnit = Literal["days", "weeks", "months", "years"]
_DAYS_PER_UNIT: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25}
MAX_AGE_YEARS = 120

Outcome = Literal["failed", "partial_response", "good_response", "not_tolerated"]
OUTCOME_WORDS: dict[str, str] = {
    "failed": "failed",
    "partial_response": "partial response",
    "good_response": "good response",
    "not_tolerated": "not tolerated",
}


class Strict(BaseModel):
    """Base for every input model: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Age(Strict):
    """Age with its unit, so that infants can be described in weeks."""

    value: float = Field(ge=0, description="Age in the given unit; not negative.")
    unit: AgeUnit = "years"

    @model_validator(mode="after")
    def _plausible(self) -> "Age":
        if self.years > MAX_AGE_YEARS:
            raise ValueError(f"age of {self.value:g} {self.unit} is over {MAX_AGE_YEARS} years")
        return self

    @property
    def days(self) -> float:
        return self.value * _DAYS_PER_UNIT[self.unit]

    @property
    def weeks(self) -> float:
        return self.days / 7.0

    @property
    def months(self) -> float:
        return self.days / _DAYS_PER_UNIT["months"]

    @property
    def years(self) -> float:
        return self.days / 365.25


class PriorTreatment(Strict):
    """A treatment already given for this presentation, and how it went."""

    treatment: str = Field(description="An option id from the vocabulary.")
    outcome: Outcome


class Condition(Strict):
    """One presentation with its details; the model of each presentation subclasses this."""

    presentation: str = Field(description="Presentation id from the controlled vocabulary.")

    def recorded_details(self) -> dict[str, object]:
        """The details that were given, without the presentation id and the empty defaults."""
        return {
            name: value
            for name, value in self.model_dump(exclude={"presentation"}).items()
            if value is not None and value not in ([], ())
        }

    def treatments_given(self) -> tuple[PriorTreatment, ...]:
        return tuple(getattr(self, "prior_treatments", ()) or ())


class Presentation(Strict):
    """The whole input: the patient's age and one or more presentations."""

    age: Age | None = Field(None, description="Age; required where a rule depends on it.")
    conditions: tuple[Condition, ...] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _distinct(self) -> "Presentation":
        ids = [c.presentation for c in self.conditions]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"presentation {duplicated[0]!r} is listed more than once")
        return self


def _field(detail: Detail, treatment_ids: tuple[str, ...]) -> tuple[Any, Any]:
    """The pydantic type and default of one declared detail."""
    info = {"title": detail.label, "description": detail.help}
    if detail.type == "yes_no":
        return bool | None, Field(None, **info)
    if detail.type == "choice":
        return Literal[tuple(c.id for c in detail.choices)] | None, Field(None, **info)  # type: ignore[misc]
    if detail.type in ("number", "integer"):
        kind = int if detail.type == "integer" else float
        return kind | None, Field(None, ge=detail.min, le=detail.max, **info)
    treatment = create_model(
        "PriorTreatment",
        __base__=PriorTreatment,
        treatment=(Literal[treatment_ids], Field(description="An option id from the vocabulary.")),  # type: ignore[valid-type]
    )
    return tuple[treatment, ...], Field((), **info)  # type: ignore[valid-type]


def _no_repeats(self: Condition) -> Condition:
    seen: set[str] = set()
    for prior in self.treatments_given():
        if prior.treatment in seen:
            raise ValueError(f"prior treatment {prior.treatment!r} is listed twice")
        seen.add(prior.treatment)
    return self


def condition_model(presentation: str, details: Iterable[Detail], treatment_ids: tuple[str, ...]) -> type[Condition]:
    """The input model of one presentation, built from its declared details."""
    fields: dict[str, Any] = {"presentation": (Literal[presentation], Field(description="Presentation id."))}  # type: ignore[valid-type]
    for detail in details:
        fields[detail.id] = _field(detail, treatment_ids)
    name = "Condition_" + presentation
    return create_model(  # type: ignore[call-overload, no-any-return]
        name,
        __base__=Condition,
        __validators__={"_no_repeats": model_validator(mode="after")(_no_repeats)},
        **fields,
    )


def input_model(models: Iterable[type[Condition]]) -> type[Presentation]:
    """The whole input for one knowledge base: a presentation is one of its condition models."""
    union = Annotated[Union[tuple(models)], Field(discriminator="presentation")]  # type: ignore[valid-type]
    return create_model(  # type: ignore[call-overload, no-any-return]
        "PresentationInput",
        __base__=Presentation,
        conditions=(tuple[union, ...], Field(min_length=1, max_length=8)),
    )
