"""The output contract: a plan that shows its basis so a clinician can check it.

Stop flags first; then the steps (what to check or correct first, the treatment options with one
strength scale, what comes if they fail); the details that would change the answer; why other
options were not offered. The app, the Markdown report and the CDS Hooks cards are renderings of
this model and compute no clinical content of their own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.knowledge import AuditNote, OptionKind, Severity, Strength

DISCLAIMER = (
    "Decision support for clinicians, not a diagnosis or an order. It lists options and the "
    "evidence behind them so that a qualified clinician can review the basis of each statement "
    "independently; the treating team decides. Prototype: not validated for clinical use."
)
INTENDED_USER = "Clinicians and clinical teachers; not patients."
KNOWN_LIMITS = (
    "Rules encode the cited guidelines and series only as far as the clinical brief summarises "
    "them; guideline status may have changed since. Inputs not asked for are not considered."
)

StepKind = Literal["urgent", "first", "treatment", "if_that_fails"]
FlagStatus = Literal["standing", "cleared"]


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CitationRef(Output):
    key: str
    label: str
    year: int | None = None
    grade: str | None = None
    url: str | None = None


class Evidence(Output):
    """Recommendation strength and certainty as the source grades them."""

    source: str
    system: str
    recommendation: str | None = None
    certainty: str | None = None


class Basis(Output):
    """One structured record of why: the rules, the inputs, the evidence, the limits."""

    rule_ids: tuple[str, ...]
    rule_versions: dict[str, int]
    statements: tuple[str, ...]
    inputs_used: dict[str, Any]
    inputs_missing: tuple[str, ...]
    citations: tuple[CitationRef, ...]
    evidence: tuple[Evidence, ...] = ()
    uncertain: bool = False
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


class Flag(Output):
    """A red flag with its severity; a cleared flag stays visible with what cleared it."""

    id: str
    meaning: str
    severity: Severity
    status: FlagStatus
    presentation: str
    concerns: tuple[str, ...]
    workup: tuple[Term, ...]
    cleared_by: str | None = None
    basis: Basis


class PlanOption(Output):
    """One option of any kind with its strength, reason, evidence and basis."""

    id: str
    name: str
    kind: OptionKind
    procedure_class: str | None
    presentation: str
    strength: Strength
    step: StepKind
    summary: str
    reason: str
    after: tuple[str, ...] = ()
    capped_by: tuple[str, ...] = ()
    target_muscle: str | None = None
    approaches: tuple[str, ...] = ()
    risks: tuple[Statement, ...] = ()
    caveats: tuple[Statement, ...] = ()
    basis: Basis


class PlanStep(Output):
    """An ordered step: urgent action, check or correct first, treatment, or what comes if it fails."""

    order: int
    kind: StepKind
    presentation: str
    title: str
    workup: tuple[Term, ...] = ()
    options: tuple[str, ...] = ()


class SharedDecision(Output):
    """Several options share the top rank: the choice is shared with the patient."""

    presentation: str
    options: tuple[str, ...]
    tips: tuple[str, ...]


class Need(Output):
    """A detail that was not recorded and would change the answer."""

    presentation: str
    detail: str
    label: str
    decides: tuple[str, ...]
    decides_names: tuple[str, ...]
    together_with: tuple[str, ...] = ()  # details that decide only together with this one (all blank)
    together_labels: tuple[str, ...] = ()


class UnmetRule(Output):
    rule_id: str
    statement: str
    unmet: tuple[str, ...]


class WhyNot(Output):
    """An option of the presentation that is not in the plan, and why."""

    option: str
    name: str
    presentation: str
    withheld_by: tuple[str, ...] = ()
    rules: tuple[UnmetRule, ...] = Field(
        description="The rules naming this option that came nearest to holding: the fewest unmet conditions, "
                    "at most three, the nearest first (rule-file order among equals).")
    further_rules: int = Field(
        0, description="How many other rules name this option, each with more conditions unmet (not listed).")


class SourceCaveat(Output):
    id: str
    source: str
    quote: str
    presentations: tuple[str, ...] = Field(
        (), description="The assessed presentations the passage belongs to (ids); empty = myotomy in general.")
    patients: Literal["any", "children", "adults"] = "any"
    audit: AuditNote | None
    audit_citations: tuple[CitationRef, ...] = ()


class PresentationInfo(Output):
    id: str
    name: str
    purpose: str
    intended_use: str
    misuse: str


class KnowledgeBaseStamp(Output):
    version: str
    content_hash: str


class Plan(Output):
    presentations: tuple[PresentationInfo, ...]
    stopped: bool
    flags: tuple[Flag, ...]
    steps: tuple[PlanStep, ...]
    options: tuple[PlanOption, ...]
    shared_decisions: tuple[SharedDecision, ...]
    needs: tuple[Need, ...]
    workup: tuple[Term, ...]
    why_not: tuple[WhyNot, ...]
    source_caveats: tuple[SourceCaveat, ...]
    fired_rules: tuple[str, ...]
    disclaimer: str = DISCLAIMER
    knowledge_base: KnowledgeBaseStamp

    @property
    def standing_flags(self) -> tuple[Flag, ...]:
        return tuple(f for f in self.flags if f.status == "standing")
