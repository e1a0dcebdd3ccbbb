"""assess(): a presentation in, an assessment with its basis out.

The engine only says which rules hold; everything shown to a user is assembled here from the
rules' effects and the knowledge base, so that each rendering shows the same basis.

What does not depend on the patient (citation records, risks, caveats, terms, the findings each
rule reads) is built once per knowledge base in `_Derived`, not on every call: an assessment then
validates only its own records (see BENCHMARKS.md for the profile that led here).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

from pydantic import ValidationError

from models import assessment as out
from models.knowledge import MERGE_PRIORITY, STRENGTH_ORDER, Rule, Sourced, Strength
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
    _check(presentation, kb, [c.recorded_details() for c in presentation.conditions])


def _check(presentation: Presentation, kb: KnowledgeBase, recorded: list[dict[str, object]]) -> None:
    errors: list[tuple[str, str]] = []
    for index, (cond, details) in enumerate(zip(presentation.conditions, recorded)):
        where = f"conditions.{index}"
        pdef = kb.presentations.get(cond.presentation)
        if pdef is None:
            errors.append((f"{where}.presentation", f"unknown presentation {cond.presentation!r}"))
            continue
        for name in details:
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
    return _facts(condition, presentation, condition.recorded_details())


def _facts(condition: Condition, presentation: Presentation, recorded: dict[str, object]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if presentation.age is not None:
        facts["age_years"] = round(presentation.age.years, 3)
        facts["age_months"] = round(presentation.age.months, 2)
        facts["age_weeks"] = round(presentation.age.weeks, 2)
    for name, value in recorded.items():
        if name != "prior_treatments":
            # durable-rules cannot parse numbers written with an exponent (1e-07): 4 decimals keep
            # every bounded input in plain notation, and both the engine and "why not" see the same value
            facts[name] = round(value, 4) if isinstance(value, float) else value
    for prior in condition.prior_treatments:
        facts[PRIOR_PREFIX + prior.treatment] = prior.outcome
    return facts


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class _Derived:
    """Everything about a knowledge base that an assessment reads but does not change, built once."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.order = {rule.id: i for i, rule in enumerate(kb.rules)}
        self.rule = {rule.id: rule for rule in kb.rules}
        self.rules_for = {pid: kb.rules_for(pid) for pid in kb.presentations}
        self.fields = {rule.id: tuple(_unique(conditions.fields(kb.tests[rule.id]))) for rule in kb.rules}
        self.read = {
            pid: tuple(_unique(f for r in rules for f in self.fields[r.id])) for pid, rules in self.rules_for.items()
        }
        self.citation = {
            key: out.CitationRef(key=key, label=c.reference, year=c.year, grade=c.grade, url=c.urls[0] if c.urls else None)
            for key, c in kb.citations.items()
        }
        self.risks = {
            pid: tuple(out.Statement(text=r.text, citations=self.cite(r.citations), uncertain=r.uncertain) for r in p.risks)
            for pid, p in kb.procedures.items()
        }
        self.caveat: dict[int, out.Statement] = {
            id(c): out.Statement(text=c.text, citations=self.cite(c.citations), uncertain=c.uncertain)
            for rule in kb.rules
            for c in rule.then.caveats
        }
        self.workup = {w: out.Term(id=w, meaning=meaning) for w, meaning in kb.workup.items()}
        self.presentation = {pid: out.Term(id=pid, meaning=p.name) for pid, p in kb.presentations.items()}
        self.source_caveats = tuple(
            (
                frozenset(c.applies_to),
                out.SourceCaveat(
                    id=c.id,
                    source=c.source,
                    quote=c.quote,
                    audit=c.audit,
                    audit_citations=self.cite(c.audit.citations) if c.audit else (),
                ),
            )
            for c in kb.source_caveats
        )
        # the plain words of every test, for "why not": they depend on the rule, not on the patient
        self.described = {id(t): t.describe() for tests in kb.tests.values() for t in tests}
        self.unmet_rules: dict[tuple[Any, ...], out.UnmetRule] = {}  # filled as patterns are met
        self.suggesting = {
            (pid, proc): tuple(r for r in rules if any(s.procedure == proc for s in r.then.suggest))
            for pid, rules in self.rules_for.items()
            for proc in kb.presentations[pid].procedures
        }
        self.first_line: dict[tuple[str, str, str], out.FirstLine] = {
            (rule.id, fid, rule.presentation): out.FirstLine(
                id=fid, name=kb.procedures[fid].name, presentation=rule.presentation, citations=self.cite(rule.citations)
            )
            for rule in kb.rules
            for fid in rule.then.first_line
        }

    def cite(self, keys: Iterable[str]) -> tuple[out.CitationRef, ...]:
        return tuple(self.citation[key] for key in dict.fromkeys(keys))


_DERIVED: dict[int, _Derived] = {}  # by id(kb); each entry holds its kb, so the id cannot be reused
_DERIVED_LOCK = threading.Lock()
_DERIVED_MAX = 8


def _derived(kb: KnowledgeBase) -> _Derived:
    found = _DERIVED.get(id(kb))
    if found is not None and found.kb is kb:
        return found
    with _DERIVED_LOCK:
        found = _DERIVED.get(id(kb))
        if found is None or found.kb is not kb:
            found = _Derived(kb)
            if len(_DERIVED) >= _DERIVED_MAX:
                _DERIVED.pop(next(iter(_DERIVED)))
            _DERIVED[id(kb)] = found
        return found


@dataclass
class _Draft:
    """A procedure's suggestion while the rules that concern it are being collected."""

    procedure: str
    presentation: str
    strengths: list[Strength] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    caveats: list[Sourced] = field(default_factory=list)


def assess(raw: Presentation | dict[str, Any], *, context: tuple[KnowledgeBase, Engine] | None = None) -> out.Assessment:
    """Assess a presentation. Raises InputError for invalid input, RuleExecutionError if a rule fails."""
    kb, engine = context or default_context()
    presentation = parse_presentation(raw)
    recorded = [c.recorded_details() for c in presentation.conditions]
    _check(presentation, kb, recorded)
    d = _derived(kb)

    red_flags: list[out.RedFlag] = []
    suggestions: list[out.Suggestion] = []
    first_line: list[out.FirstLine] = []
    workup: dict[str, out.Term] = {}
    why_not: list[out.WhyNot] = []
    fired_all: list[str] = []

    for cond, details in zip(presentation.conditions, recorded):
        pid = cond.presentation
        pdef = kb.presentations[pid]
        facts = _facts(cond, presentation, details)
        fired = sorted(set(engine.fire(pid, facts)), key=d.order.__getitem__)
        fired_all.extend(fired)
        rules = [d.rule[rule_id] for rule_id in fired]
        missing = tuple(f for f in d.read[pid] if f not in facts and not f.startswith(PRIOR_PREFIX))

        flags = _red_flags(d, rules, pdef.procedures, pid, facts, missing)
        red_flags.extend(flags)
        workup_here = _unique(w for r in rules for w in r.then.workup)
        for w in workup_here:
            workup.setdefault(w, d.workup[w])

        drafts: dict[str, _Draft] = {}
        for rule in rules:
            for s in rule.then.suggest:
                draft = drafts.setdefault(s.procedure, _Draft(s.procedure, pid))
                draft.strengths.append(s.strength)
                draft.rules.append(rule)
                draft.caveats.extend(rule.then.caveats)
        for draft in drafts.values():
            suggestions.append(_suggestion(d, draft, flags, workup_here, facts, missing))

        for rule in rules:
            for fid in rule.then.first_line:
                if all(f.id != fid or f.presentation != pid for f in first_line):
                    first_line.append(d.first_line[(rule.id, fid, pid)])

        for proc in pdef.procedures:
            if proc not in drafts:
                why_not.append(_why_not(d, proc, pid, facts))

    suggestions.sort(key=lambda s: STRENGTH_ORDER.index(s.strength))
    present_ids = {c.presentation for c in presentation.conditions}
    return out.Assessment(
        presentations=tuple(d.presentation[c.presentation] for c in presentation.conditions),
        red_flags=tuple(red_flags),
        suggestions=tuple(suggestions),
        first_line=tuple(first_line),
        workup=tuple(workup.values()),
        why_not=tuple(why_not),
        source_caveats=tuple(c for applies_to, c in d.source_caveats if not applies_to or present_ids & applies_to),
        fired_rules=tuple(fired_all),
        knowledge_base=out.KnowledgeBaseStamp(version=kb.version, content_hash=kb.content_hash),
    )


def _basis(d: _Derived, rules: list[Rule], facts: dict[str, Any], missing: tuple[str, ...], extra: Iterable[str] = ()) -> out.Basis:
    used = _unique(f for r in rules for f in d.fields[r.id])
    return out.Basis(
        rule_ids=tuple(r.id for r in rules),
        rule_versions={r.id: r.version for r in rules},
        statements=tuple(r.statement for r in rules),
        inputs_used={f: facts[f] for f in used if f in facts},
        inputs_missing=missing,
        citations=d.cite([*(k for r in rules for k in r.citations), *extra]),
    )


def _red_flags(
    d: _Derived,
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
            meaning=d.kb.red_flags[fid],
            presentation=presentation,
            concerns=tuple(_unique(concerns)),
            basis=_basis(d, flag_rules, facts, missing),
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
    d: _Derived,
    draft: _Draft,
    flags: list[out.RedFlag],
    workup_here: list[str],
    facts: dict[str, Any],
    missing: tuple[str, ...],
) -> out.Suggestion:
    kb = d.kb
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
        workup_first=tuple(d.workup[w] for w in workup_here),
        risks=d.risks[proc.id],
        caveats=tuple(d.caveat[id(c)] for c in {c.text: c for c in draft.caveats}.values()),
        held_back_by=held_back,
        basis=_basis(d, draft.rules, facts, missing, proc.citations),
    )


def _why_not(d: _Derived, procedure: str, presentation: str, facts: dict[str, Any]) -> out.WhyNot:
    tests, unmet_rules = d.kb.tests, d.unmet_rules
    rules = []
    for r in d.suggesting[(presentation, procedure)]:
        # conditions.unmet(), with each (rule, unmet tests) record built once and shared: frozen
        unmet = tuple(t for t in tests[r.id] if not t.holds(facts))
        key = (r.id, *map(id, unmet))
        record = unmet_rules.get(key)
        if record is None:
            record = out.UnmetRule(rule_id=r.id, statement=r.statement, unmet=tuple(d.described[id(t)] for t in unmet))
            if len(unmet_rules) < 100_000:
                unmet_rules[key] = record
        rules.append(record)
    return out.WhyNot(
        procedure=procedure, name=d.kb.procedures[procedure].name, presentation=presentation, rules=tuple(rules)
    )
