"""The schema of the knowledge files under `data/`.

A presentation is one folder, `data/presentations/<id>/`, owned end to end by the person who knows
it: `presentation.yaml` (purpose, scope, misuse, codes, the details that decide, the options),
`rules.yaml` (named definitions and rules) and `cases.yaml` (teaching cases, which are tests).
Shared files sit beside the folders: citations, the option catalogue, the flag and work-up
vocabulary, shared detail declarations and the passages quoted from the source documents.

Cross-references (a rule naming an option, a case naming a flag) are checked by the loader in
`models/loader.py`, which sees all files at once and reports every error with file, line and id.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]

# One scale for every option. Several options may share the top rank (preferred or equivalent):
# the choice is then shared with the patient. "later" is sequencing, not a demotion: the option
# comes once the step before has failed.
Strength = Literal["preferred", "equivalent", "alternative", "later", "not_indicated"]
STRENGTH_ORDER: tuple[str, ...] = ("preferred", "equivalent", "alternative", "later", "not_indicated")
TOP_RANK: frozenset[str] = frozenset({"preferred", "equivalent"})
# How the rules that name one option combine: "not indicated" overrides everything, "later" (first
# try something else) overrides a positive strength; among positive strengths the strongest wins.
MERGE_PRIORITY: tuple[str, ...] = ("not_indicated", "later", "preferred", "equivalent", "alternative")

OptionKind = Literal["procedure", "non_surgical", "observation", "referral", "workup"]
ProcedureClass = Literal[
    "myotomy", "myectomy", "lengthening", "repositioning", "bundle", "non_myotomy", "sentinel"
]
# stop: this may be something else, nothing else applies until it is addressed;
# do_first: a step before the options it concerns; caution: shown beside the plan, changes nothing.
Severity = Literal["stop", "do_first", "caution"]
SEVERITY_ORDER: tuple[str, ...] = ("stop", "do_first", "caution")
DetailType = Literal["yes_no", "choice", "number", "integer", "treatments"]
Grade = Literal["G", "S", "C", "R", "L"]
Verdict = Literal["supports", "qualifies", "contradicts"]
Patients = Literal["any", "children", "adults"]  # whom a source passage speaks of
Step = Literal["first", "treatment"]


class Knowledge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(Knowledge):
    """A reference from the clinical brief; `reference` is its text, unchanged."""

    key: str = Field(pattern=r"^[A-Z0-9][A-Z0-9.-]*$")
    grade: Grade | None = None
    year: int | None = Field(None, ge=1900, le=2100)
    reference: str = Field(min_length=3)
    urls: tuple[str, ...] = ()
    verified: str | None = Field(
        None, description="Only for a reference the brief does not list: how and when it was checked (search tool, date, what it says)."
    )


class Sourced(Knowledge):
    """A statement with the citations that support it."""

    text: str = Field(min_length=3)
    citations: tuple[str, ...] = Field(min_length=1)
    uncertain: bool = Field(False, description="The brief marks this as uncited, unsupported or to verify.")


class Option(Knowledge):
    """Anything a plan can propose: a procedure, non-surgical care, observation or a referral."""

    id: Id
    name: str
    kind: OptionKind
    procedure_class: ProcedureClass | None = None
    target_muscle: str | None = None
    approaches: tuple[str, ...] = ()
    description: str | None = None
    risks: tuple[Sourced, ...] = ()
    citations: tuple[str, ...] = Field(min_length=1)
    snomed_procedures: tuple["ListedCode", ...] = Field(
        (), description="SNOMED CT procedure codes a draft order carries for this option (order-select, order-sign); verified codes only."
    )


class Term(Knowledge):
    """A work-up id with its meaning, shared by every presentation."""

    id: Id
    meaning: str


class IfNotRecorded(Knowledge):
    """The detail a red flag's meaning asserts, and the flag raised instead when that detail is blank."""

    detail: Id
    flag: Id


class FlagDef(Knowledge):
    """A red flag: how grave it is, what addresses it, and which recorded facts clear it."""

    id: Id
    meaning: str
    severity: Severity
    workup: tuple[Id, ...] = Field((), description="Work-up that addresses the flag.")
    cleared_when: tuple[dict[str, Any], ...] = Field(
        (), description="Alternatives (any one suffices) of recorded facts that clear the flag once raised."
    )
    cleared_meaning: str | None = Field(None, description="What clearing means, in plain words.")
    if_not_recorded: IfNotRecorded | None = Field(
        None,
        description="When the detail the meaning asserts is not recorded, this other flag is raised instead "
        "(same concerns), so a blank is never shown as the value ('not tried').",
    )


class Vocabulary(Knowledge):
    """One file of data/vocabulary/: flags and work-up terms."""

    source: str
    red_flags: tuple[FlagDef, ...] = ()
    workup: tuple[Term, ...] = ()


class Choice(Knowledge):
    id: Id
    meaning: str


class LoincSource(Knowledge):
    """How a record holds a number detail as an Observation: the LOINC code, its UCUM unit, how recent.

    Only a final, amended or corrected Observation with this code, a valueQuantity in exactly this UCUM
    unit and an effective time within `max_age_days` of the call is read; the most recent wins. Older
    than the window is "not recorded", so a stale value never decides the plan.
    """

    code: str = Field(pattern=r"^[0-9]{1,7}-[0-9]$")
    display: str = Field(min_length=3)
    ucum: str = Field(min_length=1, description="UCUM code the valueQuantity must carry, e.g. mm[Hg].")
    max_age_days: int = Field(gt=0, le=3650)
    source: str = Field(min_length=3, description="Where the code was verified: a citation key or a URL.")


class Detail(Knowledge):
    """A decision fact a presentation takes: its type, bounds, words for the form, and what it decides."""

    id: Id
    type: DetailType
    label: str = Field(min_length=2)
    help: str | None = None
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Choice, ...] = ()
    decides: tuple[Id, ...] = Field((), description="Options whose place in the plan this detail can change.")
    citations: tuple[str, ...] = ()
    loinc: tuple[LoincSource, ...] = Field((), description="Number details only: the Observations that record it.")

    @model_validator(mode="after")
    def _shape(self) -> "Detail":
        if self.loinc and self.type not in ("number", "integer"):
            raise ValueError(f"detail {self.id!r}: only a number or integer detail is read from an Observation")
        if self.type == "choice" and len(self.choices) < 2:
            raise ValueError(f"detail {self.id!r}: a choice needs at least two choices")
        if self.type != "choice" and self.choices:
            raise ValueError(f"detail {self.id!r}: only a choice has choices")
        if self.type not in ("number", "integer") and (self.min is not None or self.max is not None or self.unit):
            raise ValueError(f"detail {self.id!r}: only a number has a unit and bounds")
        return self


class DetailUse(Knowledge):
    """A shared detail (data/details.yaml) used by a presentation, with its own words where they differ."""

    use: Id
    label: str | None = None
    help: str | None = None
    decides: tuple[Id, ...] | None = None


class Constraint(Knowledge):
    """A combination of details that cannot be true together; the input is refused with the message."""

    when: dict[str, Any] = Field(min_length=1)
    message: str = Field(min_length=5)


class CodeRef(Knowledge):
    """A code with its display, as the source that verified it gives it."""

    code: str = Field(min_length=1)
    display: str = Field(min_length=2)


class ListedCode(CodeRef):
    """One code of a presentation's value set, with where it was checked.

    ICD-10 codes (CM and WHO) cover their subcodes: `H50.0-` (or `H50.0`) matches H50.00 and below; the
    most specific listed code wins. A SNOMED CT code matches itself and the descendants listed with it:
    no SNOMED CT release ships with this project, so subsumption is never computed, only listed.
    """

    source: str = Field(
        min_length=3, description="Where the code and its display were verified: a citation key or a URL."
    )
    descendants: tuple[CodeRef, ...] = Field(
        (), description="SNOMED CT only: descendants that also match, each verified."
    )
    note: str | None = Field(None, description="Why the code is listed here, or what it does not cover.")


_ICD_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?-?$")
_SCTID_SHAPE = re.compile(r"^[1-9][0-9]{5,17}$")


class Codes(Knowledge):
    """The presentation's value set, per code system (models/terminology.py matches records against it)."""

    snomed: tuple[ListedCode, ...] = Field((), description="SNOMED CT concepts (http://snomed.info/sct).")
    icd10cm: tuple[ListedCode, ...] = Field((), description="ICD-10-CM codes (http://hl7.org/fhir/sid/icd-10-cm).")
    icd10_who: tuple[ListedCode, ...] = Field((), description="WHO ICD-10 codes (http://hl7.org/fhir/sid/icd-10).")

    @model_validator(mode="after")
    def _shapes(self) -> "Codes":
        for entry in (*self.icd10cm, *self.icd10_who):
            if not _ICD_SHAPE.match(entry.code) or entry.descendants:
                raise ValueError(f"{entry.code!r}: an ICD-10 code is a letter, two characters, then '.' and up to 4 "
                                 "(a trailing '-' marks 'and below'); its subcodes match without a descendants list")
        for entry in self.snomed:
            for code in (entry.code, *(d.code for d in entry.descendants)):
                if not _SCTID_SHAPE.match(code):
                    raise ValueError(f"{code!r} is not a SNOMED CT identifier (6 to 18 digits)")
        return self


class UsualAge(Knowledge):
    """The ages at which a presentation is usual, from a source. Outside them the planner raises the one
    shared caution `age_unusual_for_presentation` ("confirm the diagnosis"): it concerns no option, so it
    changes nothing in the plan; a hard limit that refuses the input is `max_age_years` instead."""

    min_years: float | None = Field(None, ge=0, description="Younger than this is unusual.")
    max_years: float | None = Field(None, gt=0, description="Older than this is unusual.")
    citations: tuple[str, ...] = Field(min_length=1, description="Where the ages come from.")
    note: str = Field(min_length=10, description="What the source says, in plain words, shown with the flag.")

    @model_validator(mode="after")
    def _bounds(self) -> "UsualAge":
        if self.min_years is None and self.max_years is None:
            raise ValueError("a usual age needs min_years, max_years or both")
        if self.min_years is not None and self.max_years is not None and self.min_years >= self.max_years:
            raise ValueError("min_years must be below max_years")
        return self

    def unusual(self, years: float) -> bool:
        return (self.min_years is not None and years < self.min_years) or (
            self.max_years is not None and years > self.max_years
        )


class PresentationDef(Knowledge):
    """presentation.yaml: what the presentation is, what it is for, what it takes and offers."""

    id: Id
    name: str
    summary: str
    purpose: str = Field(min_length=10, description="What the rules of this folder are for.")
    intended_use: str = Field(min_length=10, description="Who uses it, for which patients.")
    misuse: str = Field(min_length=10, description="What it must not be used for.")
    codes: Codes = Codes()
    requires_age: bool = False
    max_age_years: float | None = Field(None, gt=0, description="Older than this, the input is refused.")
    usual_age: UsualAge | None = Field(
        None, description="Usual ages, from a source; outside them a caution asks to confirm the diagnosis."
    )
    details: tuple[Detail | DetailUse, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    options: tuple[Id, ...] = Field(min_length=1, description="Every option the rules may place in the plan.")
    citations: tuple[str, ...] = Field(min_length=1)


class Definition(Knowledge):
    """A named, derived finding ("completed malignancy work-up"): true when its clauses hold."""

    id: Id
    meaning: str = Field(min_length=5)
    when: dict[str, Any] = Field(min_length=1)


class Evidence(Knowledge):
    """Recommendation strength and certainty of evidence as the source grades them."""

    source: str = Field(description="Citation key of the grading source.")
    system: str = Field(description="e.g. GRADE, ACC/AHA class and level of evidence.")
    recommendation: str | None = Field(None, description="As graded, e.g. strong, conditional, Class 1.")
    certainty: str | None = Field(None, description="As graded, e.g. moderate, low, LOE B-NR.")


class OptionEffect(Knowledge):
    option: Id
    strength: Strength
    step: Step = Field("treatment", description="first: do now, before the treatment options (correction, first trial).")


class FlagEffect(Knowledge):
    id: Id
    concerns: tuple[Id, ...] = Field((), description="Options that wait for it (do-first); empty = every procedure.")


class SharedDecision(Knowledge):
    """What tips a choice the guideline leaves to the patient and the team."""

    tips: tuple[str, ...] = Field(min_length=1)


class Effects(Knowledge):
    options: tuple[OptionEffect, ...] = ()
    flags: tuple[FlagEffect, ...] = ()
    workup: tuple[Id, ...] = ()
    caveats: tuple[Sourced, ...] = ()
    shared_decision: SharedDecision | None = None


class Rule(Knowledge):
    """WHEN all clauses hold for one presentation's findings, THEN these effects."""

    id: Id
    version: int = Field(ge=1)
    presentation: Id = Field("", description="Filled by the loader from the folder.")
    statement: str = Field(min_length=10, description="The rule in plain words.")
    when: dict[str, Any] = Field(min_length=1)
    then: Effects
    citations: tuple[str, ...] = Field(min_length=1)
    evidence: tuple[Evidence, ...] = ()
    uncertain: bool = Field(False, description="The brief marks the statement as unsupported or to verify.")

    @field_validator("then")
    @classmethod
    def _does_something(cls, then: Effects) -> Effects:
        if not (then.options or then.flags or then.workup or then.caveats):
            raise ValueError("a rule must have at least one effect")
        return then


class RulesFile(Knowledge):
    definitions: tuple[Definition, ...] = ()
    rules: tuple[Rule, ...] = Field(min_length=1)


class AuditNote(Knowledge):
    verdict: Verdict
    note: str
    citations: tuple[str, ...] = Field(min_length=1)


class SourceCaveat(Knowledge):
    """A passage quoted word for word from a source document, with the evidence beside it."""

    id: Id
    source: str = Field(description="File name under data/sources/.")
    quote: str = Field(min_length=10)
    applies_to: tuple[Id, ...] = Field((), description="Presentations; empty = every assessment.")
    patients: Patients = Field(
        "any", description="Whom the passage speaks of, read from its own words: children, adults or any. "
        "A passage about children is not shown for an adult, nor the reverse; with no age given it is shown.")
    audit: AuditNote | None = None


class Expectation(Knowledge):
    """What a teaching case asserts about the plan; every id is checked against the vocabulary."""

    options: dict[Id, Strength | None] = Field({}, description="Options that must be in the plan, with their strength (null: any).")
    not_offered: tuple[Id, ...] = Field((), description="Options that must not be offered (absent or not indicated).")
    first: tuple[Id, ...] = Field((), description="Options that must be in the first step.")
    waits: dict[Id, tuple[Id, ...]] = Field(
        {}, description="Options that must wait for these standing do-first flags (shown 'once the step before is done').")
    flags: tuple[Id, ...] = Field((), description="Flags that must stand (raised and not cleared).")
    cleared_flags: tuple[Id, ...] = ()
    no_flags: bool = Field(False, description="No flag may stand.")
    stopped: bool | None = None
    workup: tuple[Id, ...] = ()
    needs: tuple[Id, ...] = Field((), description="Details the plan must ask for.")
    shared_decision: bool | None = None
    fired: tuple[str, ...] = Field((), description="Rules that must fire.")
    not_fired: tuple[str, ...] = ()


class TeachingCase(Knowledge):
    """A vignette with the plan it must produce: a test that needs no Python."""

    id: Id
    title: str
    teaching_point: str
    input: dict[str, Any]
    expect: Expectation


class CasesFile(Knowledge):
    cases: tuple[TeachingCase, ...] = Field(min_length=1)


Option.model_rebuild()
