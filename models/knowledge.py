"""The schema of the knowledge files under `data/`.

A knowledge file that does not fit these models fails at load with its file, field and reason.
Cross-references (a rule naming a procedure, a caveat naming a citation) are checked by the
loader in `rules/knowledge_base.py`, which sees all files at once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Strength = Literal["preferred", "alternative", "after_first_line", "not_indicated"]
ProcedureClass = Literal[
    "myotomy", "myectomy", "lengthening", "repositioning", "bundle", "non_myotomy", "sentinel"
]
Grade = Literal["G", "S", "C", "R", "L"]
Verdict = Literal["supports", "qualifies", "contradicts"]
# Display order of strengths.
STRENGTH_ORDER: tuple[str, ...] = ("preferred", "alternative", "after_first_line", "not_indicated")
# How the rules that name one procedure combine: a caution (not indicated, first-line care first)
# overrides any positive suggestion; among positive ones the strongest wins.
MERGE_PRIORITY: tuple[str, ...] = ("not_indicated", "after_first_line", "preferred", "alternative")


class Knowledge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(Knowledge):
    """A reference from the clinical brief; `reference` is its text, unchanged."""

    key: str = Field(pattern=r"^[A-Z0-9][A-Z0-9.-]*$")
    grade: Grade | None = None
    year: int | None = Field(None, ge=1900, le=2100)
    reference: str = Field(min_length=3)
    urls: tuple[str, ...] = ()


class Sourced(Knowledge):
    """A statement with the citations that support it."""

    text: str = Field(min_length=3)
    citations: tuple[str, ...] = Field(min_length=1)
    uncertain: bool = Field(False, description="The brief marks this as uncited or to verify.")


class Procedure(Knowledge):
    id: Id
    name: str
    procedure_class: ProcedureClass
    target_muscle: str | None = None
    approaches: tuple[str, ...] = ()
    description: str | None = None
    risks: tuple[Sourced, ...] = ()
    citations: tuple[str, ...] = Field(min_length=1)


class Term(Knowledge):
    """A red-flag or work-up id with its meaning, shared by every presentation."""

    id: Id
    meaning: str


class Vocabulary(Knowledge):
    """One file of data/vocabulary/: the brief's ids, or ids a group of rules added."""

    source: str
    red_flags: tuple[Term, ...] = ()
    workup: tuple[Term, ...] = ()


class PresentationDef(Knowledge):
    id: Id
    name: str
    icd10: tuple[str, ...] = ()
    subtypes: tuple[Id, ...] = ()
    details: tuple[str, ...] = Field(description="Condition fields that apply to it.")
    requires_age: bool = False
    max_age_years: float | None = Field(None, gt=0)
    procedures: tuple[Id, ...] = Field(description="Candidate procedures, myotomy-type first.")
    first_line: tuple[Id, ...] = ()
    summary: str
    citations: tuple[str, ...] = Field(min_length=1)




class RedFlagEffect(Knowledge):
    id: Id
    concerns: tuple[Id, ...] = Field(
        (), description="Procedures that cannot be preferred while it stands; empty = all."
    )


class Suggest(Knowledge):
    procedure: Id
    strength: Strength


class Effects(Knowledge):
    suggest: tuple[Suggest, ...] = ()
    red_flags: tuple[RedFlagEffect, ...] = ()
    workup: tuple[Id, ...] = ()
    first_line: tuple[Id, ...] = ()
    caveats: tuple[Sourced, ...] = ()


class Rule(Knowledge):
    """WHEN all clauses hold for one presentation's findings, THEN these effects."""

    id: Id
    version: int = Field(ge=1)
    presentation: Id
    statement: str = Field(min_length=10, description="The rule in plain words.")
    when: dict[str, Any] = Field(min_length=1)
    then: Effects
    citations: tuple[str, ...] = Field(min_length=1)

    @field_validator("then")
    @classmethod
    def _does_something(cls, then: Effects) -> Effects:
        if not (then.suggest or then.red_flags or then.workup or then.first_line or then.caveats):
            raise ValueError("a rule must have at least one effect")
        return then


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
    audit: AuditNote | None = None


class Expectation(Knowledge):
    procedure: Id
    strength: Strength | None = None


class TeachingCase(Knowledge):
    """A vignette with what must and must not be suggested: a test that needs no Python."""

    id: Id
    title: str
    teaching_point: str
    input: dict[str, Any]
    expect_suggested: tuple[Expectation, ...] = ()
    expect_not_suggested: tuple[Id, ...] = ()
    expect_red_flags: tuple[Id, ...] = ()
    expect_no_red_flags: bool = False
    expect_workup: tuple[Id, ...] = ()
    expect_first_line: tuple[Id, ...] = ()
