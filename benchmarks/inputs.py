"""Generated inputs: teaching cases with variations, and achalasia findings for the decision step.

Values come from the input model (booleans, enumerations) and from the thresholds the rules test,
so that generated inputs sit on both sides of every rule. Every generated presentation is
validated against the input model and the knowledge base; one that is not valid is drawn again.
Seeded: the same knowledge base gives the same inputs on every run.
"""

from __future__ import annotations

import copy
import json
import random
import types
import typing
from pathlib import Path
from typing import Any, Iterator

from models.presentation import Condition, Outcome
from rules import conditions
from rules.assess import InputError, check_against_knowledge, facts_of, parse_presentation
from rules.knowledge_base import PRIOR_PREFIX, KnowledgeBase

ABSENT = None
AGES_YEARS = (18, 35, 45, 59.9, 60, 61, 72, 85)


def _unwrap(annotation: Any) -> list[Any]:
    """The non-None alternatives of a field's type: `bool | None` gives [bool]."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) if arg is not type(None) for a in _unwrap(arg)]
    return [annotation]


def _thresholds(kb: KnowledgeBase, field: str) -> list[Any]:
    values: set[Any] = set()
    for tests in kb.tests.values():
        for clause in conditions.clauses(tests):
            if clause.field == field and clause.op in ("gt", "gte", "lt", "lte", "eq", "ne"):
                if isinstance(clause.value, (int, float)) and not isinstance(clause.value, bool):
                    values.update({clause.value - 1, clause.value, clause.value + 1})
    return sorted(v for v in values if v >= 0) or [1, 6, 24]


def detail_domain(kb: KnowledgeBase, presentation: str, detail: str) -> list[Any]:
    """The values a detail can take in generated inputs, None meaning 'not recorded'."""
    pdef = kb.presentations[presentation]
    if detail == "subtype":
        return [ABSENT, *pdef.subtypes]
    domain: list[Any] = [ABSENT]
    for kind in _unwrap(Condition.model_fields[detail].annotation):
        if kind is bool:
            domain += [True, False]
        elif typing.get_origin(kind) is typing.Literal:
            domain += list(typing.get_args(kind))
        elif kind in (int, float):
            domain += _thresholds(kb, detail)
    return domain


def prior_treatment_choices(kb: KnowledgeBase, presentation: str) -> list[str]:
    """The treatments the presentation's rules ask about, and one they do not."""
    tested = {
        f.removeprefix(PRIOR_PREFIX)
        for rule in kb.rules_for(presentation)
        for f in conditions.fields(kb.tests[rule.id])
        if f.startswith(PRIOR_PREFIX)
    }
    others = sorted(set(kb.procedures) - tested)
    return sorted(tested) + others[:1]


def random_condition(kb: KnowledgeBase, presentation: str, rng: random.Random, keep: dict[str, Any] | None = None,
                     change: float = 1.0) -> dict[str, Any]:
    """A condition of `presentation`; with `keep`, each detail is re-drawn with probability `change`."""
    out: dict[str, Any] = dict(keep or {"presentation": presentation})
    for detail in kb.presentations[presentation].details:
        if keep is not None and rng.random() >= change:
            continue
        if detail == "prior_treatments":
            priors = [
                {"treatment": t, "outcome": rng.choice(typing.get_args(Outcome))}
                for t in prior_treatment_choices(kb, presentation)
                if rng.random() < 0.25
            ]
            out.pop(detail, None)
            if priors:
                out[detail] = priors
            continue
        value = rng.choice(detail_domain(kb, presentation, detail))
        out.pop(detail, None)
        if value is not ABSENT:
            out[detail] = value
    return out


def _valid(kb: KnowledgeBase, raw: dict[str, Any]) -> bool:
    try:
        check_against_knowledge(parse_presentation(raw), kb)
    except InputError:
        return False
    return True


def _vary_age(raw: dict[str, Any], rng: random.Random) -> None:
    age = raw.get("age")
    if age is not None:
        raw["age"] = {**age, "value": round(max(0.1, age["value"] * rng.uniform(0.8, 1.25)), 1)}


def variations(kb: KnowledgeBase, cases: list[dict[str, Any]], count: int, *, seed: int) -> Iterator[dict[str, Any]]:
    """`count` presentations: each a teaching case (in turn) with its age and about a third of its
    details drawn again; an invalid draw is drawn again, and after five tries the case is used as is."""
    rng = random.Random(seed)
    for index in range(count):
        base = cases[index % len(cases)]
        for _ in range(5):
            raw = copy.deepcopy(base)
            _vary_age(raw, rng)
            raw["conditions"] = [
                random_condition(kb, c["presentation"], rng, keep=c, change=0.33) for c in raw["conditions"]
            ]
            if _valid(kb, raw):
                break
        else:
            raw = copy.deepcopy(base)
        yield raw


def write_jsonl(path: Path, presentations: Iterator[dict[str, Any]]) -> int:
    """One presentation per line; returns the number of lines."""
    lines = 0
    with path.open("w", encoding="utf-8") as handle:
        for raw in presentations:
            handle.write(json.dumps(raw, ensure_ascii=False) + "\n")
            lines += 1
    return lines


def achalasia_findings(kb: KnowledgeBase, count: int, *, seed: int) -> list[dict[str, Any]]:
    """`count` distinct findings dicts for achalasia, as the product hands them to its engine
    (`facts_of` on a validated presentation): every detail, prior treatments and age varied."""
    rng = random.Random(seed)
    seen: set[str] = set()
    found: list[dict[str, Any]] = []
    attempts = 0
    while len(found) < count and attempts < count * 20:
        attempts += 1
        raw: dict[str, Any] = {"conditions": [random_condition(kb, "achalasia", rng)]}
        if rng.random() < 0.85:
            raw["age"] = {"value": rng.choice(AGES_YEARS), "unit": "years"}
        try:
            presentation = parse_presentation(raw)
            check_against_knowledge(presentation, kb)
        except InputError:
            continue
        facts = facts_of(presentation.conditions[0], presentation)
        key = json.dumps(facts, sort_keys=True)
        if key not in seen:
            seen.add(key)
            found.append(facts)
    return found
