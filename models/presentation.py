"""The input contract: a patient presentation as a clinician would describe it.

Every detail is optional (None means "not recorded"), because an honest answer names what is
missing instead of guessing. Which details apply to which presentation is knowledge, so it lives
in `data/presentations/` and is checked by the knowledge base, not here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AgeUnit = Literal["days", "weeks", "months", "years"]
_DAYS_PER_UNIT: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25}
MAX_AGE_YEARS = 120

Outcome = Literal["failed", "partial_response", "good_response", "not_tolerated"]


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

    treatment: str = Field(description="A procedure or treatment id from the vocabulary.")
    outcome: Outcome


class Condition(Strict):
    """One presentation with the details a specialist would use to decide.

    Only the details listed for the presentation in the knowledge base may be given.
    """

    presentation: str = Field(description="Presentation id from the controlled vocabulary.")
    subtype: str | None = Field(None, description="Subtype id, e.g. achalasia type_iii.")

    # Course so far
    symptomatic: bool | None = None
    diagnosis_confirmed: bool | None = Field(
        None, description="The objective test that establishes the indication confirms it."
    )
    malignancy_excluded: bool | None = Field(
        None, description="Endoscopy or the relevant imaging has excluded a tumour."
    )
    conservative_care: Literal["not_tried", "ongoing", "failed", "succeeded"] | None = Field(
        None, description="Outcome of the first-line, non-surgical treatment."
    )
    prior_treatments: tuple[PriorTreatment, ...] = ()
    operative_risk: Literal["standard", "high"] | None = Field(
        None, description="'high' when unfit for general anaesthesia or surgery."
    )
    severity: Literal["mild", "moderate", "severe"] | None = None
    symptom_duration_months: float | None = Field(None, ge=0, le=1200)

    # Oesophagus and stomach
    rapid_weight_loss: bool | None = None
    difficult_gej_passage: bool | None = None
    opioid_use: bool | None = None
    sigmoid_esophagus: bool | None = None
    pouch_size_cm: float | None = Field(None, gt=0, le=20)
    bilious_vomiting: bool | None = None
    electrolytes_corrected: bool | None = None

    # Eye
    amblyopia: Literal["none", "treated", "untreated"] | None = None
    deviation_stable: bool | None = None
    neurological_signs: bool | None = None

    # Tone, contracture, hip
    contracture_type: Literal["dynamic", "fixed"] | None = None
    gmfcs_level: int | None = Field(None, ge=1, le=5)
    hip_migration_percentage: float | None = Field(None, ge=0, le=100)
    gait_analysis_done: bool | None = None
    acute_compartment_syndrome: bool | None = None

    # Dystonia and voice
    botulinum_response: Literal["good", "secondary_nonresponse", "primary_nonresponse"] | None = None
    widespread_dystonia: bool | None = None
    head_tremor: bool | None = None
    vocal_tremor: bool | None = None

    # Heart
    lvot_gradient_mmhg: float | None = Field(None, ge=0, le=300)
    concomitant_cardiac_surgical_disease: bool | None = None

    # Anal fissure
    incontinence_risk: bool | None = None
    fissure_duration_weeks: float | None = Field(None, ge=0, le=1000)

    # Cosmetic requests
    cosmetic_goal: Literal["glabellar_frown_lines", "platysmal_bands", "fat_removal", "posture"] | None = None
    neck_extension_limited: bool | None = Field(
        None, description="Zenker: neck extension impossible or limited (rigid stapling needs it)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "Condition":
        seen: set[str] = set()
        for prior in self.prior_treatments:
            if prior.treatment in seen:
                raise ValueError(f"prior treatment {prior.treatment!r} is listed twice")
            seen.add(prior.treatment)
        if self.conservative_care == "not_tried" and self.botulinum_response is not None:
            raise ValueError(
                "conservative_care is 'not_tried' but a botulinum_response is recorded"
            )
        return self

    def recorded_details(self) -> dict[str, object]:
        """The details that were given, without the presentation id and the empty defaults."""
        return {
            name: value
            for name, value in self.model_dump(exclude={"presentation"}).items()
            if value is not None and value not in ([], ())
        }


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
