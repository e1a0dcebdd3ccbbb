"""The output contract: an assessment that shows its basis so a clinician can check it.

Every rendering (Streamlit card, CLI Markdown, CDS Hooks card) is built from these models; none
computes clinical content of its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from models.knowledge import AuditNote, Strength

Indicator = Literal["info", "warning", "critical"]

DISCLAIMER = (
    "Decision support for clinicians, not a diagnosis or an order. It lists candidate procedures "
    "and the evidence behind them so that a qualified clinician can review the basis of each "
    "suggestion independently; the treating team decides. Prototype: not validated for clinical use."
)
INTENDED_USER = "Clinicians and clinical teachers; not patients."
KNOWN_LIMITS = (
    "Rules encode the cited guidelines and series only as far as the clinical brief summarises "
    "them; guideline status may have changed since. Inputs not asked for are not considered."
)


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CitationRef(Output):
    key: str
    label: str
    year: int | None = None
    grade: str | None = None
    url: str | None = None


class Basis(Output):
    """One structured record of why: the rules, the inputs, the evidence, the limits."""

    rule_ids: tuple[str, ...]
    rule_versions: dict[str, int]
    statements: tuple[str, ...]
    inputs_used: dict[str, Any]
    inputs_missing: tuple[str, ...]
    citations: tuple[CitationRef, ...]
    intended_user: str = INTENDED_USER
    known_limits: str = KNOWN_LIMITS


class Statement(Output):
    """A sourced sentence (a risk, a caveat)."""

    text: str
    citations: tuple[CitationRef, ...]
    uncertain: bool = False


class Term(Output):
    id: str
    meaning: str


class RedFlag(Output):
    id: str
    meaning: str
    presentation: str
    concerns: tuple[str, ...]
    basis: Basis


class Suggestion(Output):
    procedure: str
    name: str
    procedure_class: str
    presentation: str
    strength: Strength
    indicator: Indicator
    summary: str
    reason: str
    target_muscle: str | None
    approaches: tuple[str, ...]
    workup_first: tuple[Term, ...]
    risks: tuple[Statement, ...]
    caveats: tuple[Statement, ...]
    held_back_by: tuple[str, ...] = ()
    basis: Basis


class FirstLine(Output):
    id: str
    name: str
    presentation: str
    citations: tuple[CitationRef, ...]


class UnmetRule(Output):
    rule_id: str
    statement: str
    unmet: tuple[str, ...]


class WhyNot(Output):
    """A candidate of the presentation that was not suggested, and the conditions not met."""

    procedure: str
    name: str
    presentation: str
    rules: tuple[UnmetRule, ...]


class SourceCaveat(Output):
    id: str
    source: str
    quote: str
    audit: AuditNote | None
    audit_citations: tuple[CitationRef, ...] = ()


class KnowledgeBaseStamp(Output):
    version: str
    content_hash: str


class Assessment(Output):
    presentations: tuple[Term, ...]
    red_flags: tuple[RedFlag, ...]
    suggestions: tuple[Suggestion, ...]
    first_line: tuple[FirstLine, ...]
    workup: tuple[Term, ...]
    why_not: tuple[WhyNot, ...]
    source_caveats: tuple[SourceCaveat, ...]
    fired_rules: tuple[str, ...]
    disclaimer: str = DISCLAIMER
    knowledge_base: KnowledgeBaseStamp
