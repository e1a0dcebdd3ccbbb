"""assess(): a presentation in, an assessment with its basis out.

The engine only says which rules hold; everything shown to a user is assembled here from the
rules' effects and the knowledge base, so that each rendering shows the same basis.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Iterable

from pydantic import ValidationError

from models import assessment as out
from models.knowledge import MERGE_PRIORITY, STRENGTH_ORDER, Rule, Strength
from models.presentation import Condition, Presentation
from rules import conditions
from rules.engine import Engine
from rules.knowledge_base import PRIOR_PREFIX, KnowledgeBase, load


class InputError(ValueError):
    """The input is invalid; `errors` holds (field path, reason) pairs for the user."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in errors))

    @classmethod
    def from_validation(cls, error: ValidationError) -> "InputError":
        return cls(
            [
                (".".join(str(part) for part in e["loc"]), e["msg"].removeprefix("Value error, "))
                for e in error.errors()
            ]
        )


@functools.lru_cache(maxsize=1)
def default_context() -> tuple[KnowledgeBase, Engine]:
    """The knowledge base and engine, built once per process."""
    kb = load()
    return kb, Engine(kb)


def parse_presentation(raw: Presentation | dict[str, Any]) -> Presentation:
    if isinstance(raw, Presentation):
        return raw
    if not isinstance(raw, dict):
        raise InputError([("", f"expected a JSON object, got {type(raw).__name__}")])
    try:
        return Presentation.model_validate(raw)
    except ValidationError as error:
        raise InputError.from_validation(error) from None


def check_against_knowledge(presentation: Presentation, kb: KnowledgeBase) -> None:
    """Reject ids and details the knowledge base does not know for the chosen presentation."""
    errors: list[tuple[str, str]] = []
    for index, cond in enumerate(presentation.conditions):
        where = f"conditions.{index}"
        pdef = kb.presentations.get(cond.presentation)
        if pdef is None:
            errors.append((f"{where}.presentation", f"unknown presentation {cond.presentation!r}"))
            continue
        for name in cond.recorded_details():
            if name not in pdef.details:
                errors.append((f"{where}.{name}", f"not a detail of {pdef.id!r}"))
        if cond.subtype is not None and cond.subtype not in pdef.subtypes:
            choices = ", ".join(pdef.subtypes) or "none"
            errors.append((f"{where}.subtype", f"{cond.subtype!r} is not a subtype of {pdef.id!r} (choices: {choices})"))
        for i, prior in enumerate(cond.prior_treatments):
            if prior.treatment not in kb.procedures:
                errors.append((f"{where}.prior_treatments.{i}.treatment", f"unknown treatment {prior.treatment!r}"))
        if pdef.requires_age and presentation.age is None:
            errors.append(("age", f"age is required for {pdef.id!r}"))
        if pdef.max_age_years is not None and presentation.age is not None:
            if presentation.age.years > pdef.max_age_years:
                errors.append(
                    ("age", f"{pdef.name} is not a diagnosis at {presentation.age.value:g} {presentation.age.unit}")
                )
    if errors:
        raise InputError(errors)


def facts_of(condition: Condition, presentation: Presentation) -> dict[str, Any]:
    """Flatten one condition into the findings the rules test."""
    facts: dict[str, Any] = {}
    if presentation.age is not None:
        facts["age_years"] = round(presentation.age.years, 3)
        facts["age_months"] = round(presentation.age.months, 2)
        facts["age_weeks"] = round(presentation.age.weeks, 2)
    for name, value in condition.recorded_details().items():
        if name != "prior_treatments":
            # durable-rules cannot parse numbers written with an exponent (1e-07): 4 decimals keep
            # every bounded input in plain notation, and both the engine and "why not" see the same value
            facts[name] = round(value, 4) if isinstance(value, float) else value
    for prior in condition.prior_treatments:
        facts[PRIOR_PREFIX + prior.treatment] = prior.outcome
    return facts


@dataclass
class _Draft:
    """A procedure's suggestion while the rules that concern it are being collected."""

    procedure: str
    presentation: str
    strengths: list[Strength] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    caveats: list[Any] = field(default_factory=list)


def assess(raw: Presentation | dict[str, Any], *, context: tuple[KnowledgeBase, Engine] | None = None) -> out.Assessment:
    """Assess a presentation. Raises InputError for invalid input, RuleExecutionError if a rule fails."""
    kb, engine = context or default_context()
    presentation = parse_presentation(raw)
    check_against_knowledge(presentation, kb)
    order = {rule.id: i for i, rule in enumerate(kb.rules)}

    red_flags: list[out.RedFlag] = []
    suggestions: list[out.Suggestion] = []
    first_line: list[out.FirstLine] = []
    workup: dict[str, out.Term] = {}
    why_not: list[out.WhyNot] = []
    fired_all: list[str] = []

    for cond in presentation.conditions:
        pdef = kb.presentations[cond.presentation]
        facts = facts_of(cond, presentation)
        fired = sorted(set(engine.fire(cond.presentation, facts)), key=order.__getitem__)
        fired_all.extend(fired)
        rules = [r for r in kb.rules if r.id in set(fired)]
        missing = _missing_inputs(kb, cond.presentation, facts)

        flags = _red_flags(kb, rules, pdef.procedures, cond.presentation, facts, missing)
        red_flags.extend(flags)
        workup_here = _unique(w for r in rules for w in r.then.workup)
        for w in workup_here:
            workup.setdefault(w, out.Term(id=w, meaning=kb.workup[w]))

        drafts: dict[str, _Draft] = {}
        for rule in rules:
            for s in rule.then.suggest:
                draft = drafts.setdefault(s.procedure, _Draft(s.procedure, cond.presentation))
                draft.strengths.append(s.strength)
                draft.rules.append(rule)
                draft.caveats.extend(rule.then.caveats)
        for draft in drafts.values():
            suggestions.append(_suggestion(kb, draft, flags, workup_here, facts, missing))

        for rule in rules:
            for pid in rule.then.first_line:
                if all(f.id != pid or f.presentation != cond.presentation for f in first_line):
                    first_line.append(
                        out.FirstLine(
                            id=pid,
                            name=kb.procedures[pid].name,
                            presentation=cond.presentation,
                            citations=_cite(kb, rule.citations),
                        )
                    )

        for pid in pdef.procedures:
            if pid not in drafts:
                why_not.append(_why_not(kb, pid, cond.presentation, facts))

    suggestions.sort(key=lambda s: STRENGTH_ORDER.index(s.strength))
    present_ids = {c.presentation for c in presentation.conditions}
    return out.Assessment(
        presentations=tuple(
            out.Term(id=c.presentation, meaning=kb.presentations[c.presentation].name) for c in presentation.conditions
        ),
        red_flags=tuple(red_flags),
        suggestions=tuple(suggestions),
        first_line=tuple(first_line),
        workup=tuple(workup.values()),
        why_not=tuple(why_not),
        source_caveats=tuple(
            out.SourceCaveat(
                id=c.id,
                source=c.source,
                quote=c.quote,
                audit=c.audit,
                audit_citations=_cite(kb, c.audit.citations) if c.audit else (),
            )
            for c in kb.source_caveats
            if not c.applies_to or present_ids.intersection(c.applies_to)
        ),
        fired_rules=tuple(fired_all),
        knowledge_base=out.KnowledgeBaseStamp(version=kb.version, content_hash=kb.content_hash),
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _cite(kb: KnowledgeBase, keys: Iterable[str]) -> tuple[out.CitationRef, ...]:
    refs = []
    for key in _unique(keys):
        c = kb.citations[key]
        refs.append(
            out.CitationRef(
                key=key, label=c.reference, year=c.year, grade=c.grade, url=c.urls[0] if c.urls else None
            )
        )
    return tuple(refs)


def _missing_inputs(kb: KnowledgeBase, presentation: str, facts: dict[str, Any]) -> tuple[str, ...]:
    """Findings some rule of this presentation reads that were not recorded."""
    read = _unique(f for r in kb.rules_for(presentation) for f in conditions.fields(kb.tests[r.id]))
    return tuple(f for f in read if f not in facts and not f.startswith(PRIOR_PREFIX))


def _basis(kb: KnowledgeBase, rules: list[Rule], facts: dict[str, Any], missing: tuple[str, ...], extra: Iterable[str] = ()) -> out.Basis:
    used = _unique(f for r in rules for f in conditions.fields(kb.tests[r.id]))
    return out.Basis(
        rule_ids=tuple(r.id for r in rules),
        rule_versions={r.id: r.version for r in rules},
        statements=tuple(r.statement for r in rules),
        inputs_used={f: facts[f] for f in used if f in facts},
        inputs_missing=missing,
        citations=_cite(kb, [*(k for r in rules for k in r.citations), *extra]),
    )


def _red_flags(
    kb: KnowledgeBase,
    rules: list[Rule],
    procedures: tuple[str, ...],
    presentation: str,
    facts: dict[str, Any],
    missing: tuple[str, ...],
) -> list[out.RedFlag]:
    by_id: dict[str, tuple[list[Rule], list[str]]] = {}
    for rule in rules:
        for flag in rule.then.red_flags:
            entry = by_id.setdefault(flag.id, ([], []))
            entry[0].append(rule)
            entry[1].extend(flag.concerns or procedures)
    return [
        out.RedFlag(
            id=fid,
            meaning=kb.red_flags[fid],
            presentation=presentation,
            concerns=tuple(_unique(concerns)),
            basis=_basis(kb, flag_rules, facts, missing),
        )
        for fid, (flag_rules, concerns) in by_id.items()
    ]


_INDICATOR: dict[str, out.Indicator] = {
    "preferred": "info",
    "alternative": "info",
    "after_first_line": "warning",
    "not_indicated": "warning",
}
_STRENGTH_WORDS = {
    "preferred": "preferred option",
    "alternative": "an alternative",
    "after_first_line": "only after first-line care",
    "not_indicated": "not indicated",
}


def _suggestion(
    kb: KnowledgeBase,
    draft: _Draft,
    flags: list[out.RedFlag],
    workup_here: list[str],
    facts: dict[str, Any],
    missing: tuple[str, ...],
) -> out.Suggestion:
    proc = kb.procedures[draft.procedure]
    strength: Strength = min(draft.strengths, key=MERGE_PRIORITY.index)
    held_back = tuple(f.id for f in flags if draft.procedure in f.concerns)
    reason = " ".join(_unique(r.statement for r in draft.rules))
    if strength == "preferred" and held_back:
        strength = "alternative"
        reason += f" Would be preferred, but held back until these red flags are resolved: {', '.join(held_back)}."
    pname = kb.presentations[draft.presentation].name
    indicator = "warning" if held_back and strength != "not_indicated" else _INDICATOR[strength]
    summary = f"{proc.name}: {_STRENGTH_WORDS[strength]} ({pname})"
    if len(summary) > 139:
        summary = summary[:138] + "…"
    return out.Suggestion(
        procedure=proc.id,
        name=proc.name,
        procedure_class=proc.procedure_class,
        presentation=draft.presentation,
        strength=strength,
        indicator=indicator,
        summary=summary,
        reason=reason,
        target_muscle=proc.target_muscle,
        approaches=proc.approaches,
        workup_first=tuple(out.Term(id=w, meaning=kb.workup[w]) for w in workup_here),
        risks=tuple(out.Statement(text=r.text, citations=_cite(kb, r.citations), uncertain=r.uncertain) for r in proc.risks),
        caveats=tuple(
            out.Statement(text=c.text, citations=_cite(kb, c.citations), uncertain=c.uncertain)
            for c in {c.text: c for c in draft.caveats}.values()
        ),
        held_back_by=held_back,
        basis=_basis(kb, draft.rules, facts, missing, proc.citations),
    )


def _why_not(kb: KnowledgeBase, procedure: str, presentation: str, facts: dict[str, Any]) -> out.WhyNot:
    rules = [
        out.UnmetRule(rule_id=r.id, statement=r.statement, unmet=conditions.unmet(kb.tests[r.id], facts))
        for r in kb.rules_for(presentation)
        if any(s.procedure == procedure for s in r.then.suggest)
    ]
    return out.WhyNot(procedure=procedure, name=kb.procedures[procedure].name, presentation=presentation, rules=tuple(rules))
