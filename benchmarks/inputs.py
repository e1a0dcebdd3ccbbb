"""Generated presentations, drawn from the declared details: one generator for the benchmarks and
the property tests.

What a condition may hold is read from `kb.details[pid]` (type, choices, min and max), never from
the input model's fields; numbers are drawn from the thresholds the presentation's rules and
definitions test (one step either side, within the declared bounds), so that generated inputs sit
on both sides of every rule. Declared constraints, `requires_age` and `max_age_years` are honoured,
so a draw is valid by construction.

Where the choices come from is a `Pick`: `RandomPick` (a seeded `random.Random`: the same knowledge
base gives the same inputs on every run) for the benchmarks, and a hypothesis `draw` for the
property tests (tests/test_properties.py), which also try any number within the bounds.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence, TypeVar

from models import conditions
from models.knowledge import Detail
from models.loader import PRIOR_PREFIX, KnowledgeBase
from models.presentation import MAX_AGE_YEARS, OUTCOME_WORDS
from rules.planner import InputError, _check, facts_of, parse_presentation

T = TypeVar("T")
OUTCOMES = tuple(OUTCOME_WORDS)
AGE_UNITS = {"age_years": "years", "age_months": "months", "age_weeks": "weeks"}
PER_YEAR = {"days": 365.25, "weeks": 365.25 / 7, "months": 12.0, "years": 1.0}
ADULT_AGES = (18, 35, 45, 59, 60, 61, 72, 85)  # years, for presentations whose rules test no age


class Pick(Protocol):
    """The source of every choice the generator makes."""

    def flip(self) -> bool:
        """Record this detail (or give an age)?"""

    def one(self, values: Sequence[T]) -> T:
        """One of the values."""

    def number(self, marks: Sequence[float], low: float, high: float, integer: bool) -> float:
        """A number: one of the marks, or (hypothesis) any number in [low, high]."""

    def some(self, values: Sequence[T], most: int) -> list[T]:
        """Up to `most` distinct values, in order."""


class RandomPick:
    """Choices from a seeded `random.Random`; a detail is recorded with probability `recorded`."""

    def __init__(self, rng: random.Random, recorded: float = 0.7) -> None:
        self.rng, self.recorded = rng, recorded

    def flip(self) -> bool:
        return self.rng.random() < self.recorded

    def one(self, values: Sequence[T]) -> T:
        return self.rng.choice(values)

    def number(self, marks: Sequence[float], low: float, high: float, integer: bool) -> float:
        if marks:
            return self.rng.choice(marks)
        return self.rng.randint(int(low), int(high)) if integer else round(self.rng.uniform(low, high), 1)

    def some(self, values: Sequence[T], most: int) -> list[T]:
        return [v for v in values if self.rng.random() < 0.25][:most]


def _tests(kb: KnowledgeBase, pid: str) -> Iterator[tuple[conditions.Test, ...]]:
    """Every condition of a presentation: its rules and its definitions."""
    for rule in kb.rules_for(pid):
        yield kb.tests[rule.id]
    for _, _, tests in kb.definitions[pid].items:
        yield tests


def _thresholds(kb: KnowledgeBase, pid: str, name: str) -> list[float]:
    found: list[float] = []
    for tests in _tests(kb, pid):
        for clause in conditions.clauses(tests):
            if clause.field == name and clause.op != "missing":
                for value in clause.value if isinstance(clause.value, list) else [clause.value]:
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        found.append(value)
    return found


def marks(kb: KnowledgeBase, pid: str, detail: Detail) -> list[float]:
    """The numbers worth trying for a number detail: each threshold its rules test and one step
    either side, within the declared bounds (the bounds themselves when no rule tests it)."""
    low, high = bounds(detail)
    values = {v + d for v in _thresholds(kb, pid, detail.id) for d in (-1, 0, 1)}
    if detail.type == "integer":
        values = {round(v) for v in values}
    found = sorted(v for v in values if low <= v <= high)
    return found or sorted({low, high} if detail.type != "integer" else {int(low), int(high)})


def bounds(detail: Detail) -> tuple[float, float]:
    """The declared bounds of a number; 0 and 100 beyond the lower one where none is declared."""
    low = detail.min if detail.min is not None else 0
    return low, detail.max if detail.max is not None else max(low + 100, low * 2)


def choices(kb: KnowledgeBase, pid: str, detail: Detail) -> list[Any]:
    """The values of a yes/no or choice detail, or the marks of a number (not for treatments)."""
    if detail.type == "yes_no":
        return [True, False]
    if detail.type == "choice":
        return [c.id for c in detail.choices]
    return marks(kb, pid, detail)


def treatment_choices(kb: KnowledgeBase, pid: str) -> list[str]:
    """Prior treatments worth recording: those the rules ask about, then the presentation's options."""
    tested = [
        f.removeprefix(PRIOR_PREFIX)
        for tests in _tests(kb, pid)
        for f in conditions.fields(tests)
        if f.startswith(PRIOR_PREFIX)
    ]
    return list(dict.fromkeys([*tested, *kb.presentations[pid].options]))


def draw_detail(kb: KnowledgeBase, pid: str, detail: Detail, pick: Pick) -> Any:
    """One value of a declared detail."""
    if detail.type == "treatments":
        chosen = pick.some(treatment_choices(kb, pid), 3)
        return [{"treatment": t, "outcome": pick.one(OUTCOMES)} for t in chosen]
    if detail.type in ("number", "integer"):
        low, high = bounds(detail)
        value = pick.number(marks(kb, pid, detail), low, high, detail.type == "integer")
        return int(value) if detail.type == "integer" else value
    return pick.one(choices(kb, pid, detail))


def _facts(kb: KnowledgeBase, pid: str, cond: dict[str, Any]) -> dict[str, Any]:
    """The findings a declared constraint reads (details, prior treatments, definitions; no age)."""
    facts = {k: v for k, v in cond.items() if k not in ("presentation", "prior_treatments")}
    for prior in cond.get("prior_treatments", ()):
        facts[PRIOR_PREFIX + prior["treatment"]] = prior["outcome"]
    kb.definitions[pid].apply(facts)
    return facts


def repair(kb: KnowledgeBase, pid: str, cond: dict[str, Any]) -> dict[str, Any]:
    """Drop recorded details until no declared constraint of the presentation holds."""
    for _ in range(len(cond)):
        facts = _facts(kb, pid, cond)
        broken = next((tests for tests, _ in kb.constraints[pid] if conditions.holds(tests, facts)), None)
        if broken is None:
            break
        # a clause on a recorded detail stops holding once the detail is dropped
        droppable = [
            c.field for c in conditions.clauses(broken)
            if c.field in cond and c.op != "is_not" and not (c.op == "missing" and c.value)
        ]
        if not droppable:
            break
        del cond[droppable[-1]]
    return cond


def draw_condition(kb: KnowledgeBase, pid: str, pick: Pick) -> dict[str, Any]:
    """A condition of `pid`: each declared detail recorded or not, then made to meet the constraints."""
    cond: dict[str, Any] = {"presentation": pid}
    for detail in kb.details[pid]:
        if pick.flip():
            value = draw_detail(kb, pid, detail, pick)
            if value != []:
                cond[detail.id] = value
    return repair(kb, pid, cond)


def age_limit_years(kb: KnowledgeBase, pids: Sequence[str]) -> float:
    return min([MAX_AGE_YEARS, *(kb.presentations[p].max_age_years or MAX_AGE_YEARS for p in pids)])


def age_marks(kb: KnowledgeBase, pids: Sequence[str]) -> list[dict[str, Any]]:
    """Ages on both sides of every age threshold the rules test, in the threshold's own unit."""
    limit = age_limit_years(kb, pids)
    found = []
    for pid in pids:
        for name, unit in AGE_UNITS.items():
            for t in _thresholds(kb, pid, name):
                step = 1 if t > 1 else t / 2  # "under 1 year" needs an age below it
                found += [{"value": v, "unit": unit} for v in (t - step, t, t + step) if v > 0]
    found = [a for a in found if a["value"] / PER_YEAR[a["unit"]] < limit]
    if not found:
        found = [{"value": v, "unit": "years"} for v in ADULT_AGES if v < limit] or [{"value": 2, "unit": "weeks"}]
    return [dict(a) for a in {json.dumps(a, sort_keys=True): a for a in found}.values()]


def draw_age(kb: KnowledgeBase, pids: Sequence[str], pick: Pick) -> dict[str, Any]:
    """An age near a threshold the rules test, or (hypothesis) any age below the presentations' limit."""
    if pick.flip():
        return dict(pick.one(age_marks(kb, pids)))
    unit = pick.one(tuple(PER_YEAR))
    high = age_limit_years(kb, pids) * PER_YEAR[unit] * 0.999
    return {"value": pick.number((), 0.0, high, False), "unit": unit}


def draw_presentation(kb: KnowledgeBase, pids: Sequence[str], pick: Pick) -> dict[str, Any]:
    """A whole input for these presentations; an age whenever one of them requires it."""
    raw: dict[str, Any] = {"conditions": [draw_condition(kb, pid, pick) for pid in pids]}
    if any(kb.presentations[p].requires_age for p in pids) or pick.flip():
        raw["age"] = draw_age(kb, pids, pick)
    return raw


def valid(kb: KnowledgeBase, raw: dict[str, Any]) -> bool:
    """Does `assess` accept it? (The input model, then the checks against the knowledge base.)"""
    try:
        presentation = parse_presentation(raw, kb)
        _check(presentation, kb, [facts_of(c, presentation, kb) for c in presentation.conditions])
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
    pick = RandomPick(rng)
    for index in range(count):
        base = cases[index % len(cases)]
        for _ in range(5):
            raw = copy.deepcopy(base)
            _vary_age(raw, rng)
            raw["conditions"] = [_redraw(kb, c, pick, rng) for c in raw["conditions"]]
            if valid(kb, raw):
                break
        else:
            raw = copy.deepcopy(base)
        yield raw


def _redraw(kb: KnowledgeBase, cond: dict[str, Any], pick: RandomPick, rng: random.Random) -> dict[str, Any]:
    pid = cond["presentation"]
    if pid not in kb.presentations:
        return cond
    fresh = draw_condition(kb, pid, pick)
    out = dict(cond)
    for detail in kb.details[pid]:
        if rng.random() < 0.33:
            out.pop(detail.id, None)
            if detail.id in fresh:
                out[detail.id] = fresh[detail.id]
    return repair(kb, pid, out)


def write_jsonl(path: Path, presentations: Iterator[dict[str, Any]]) -> int:
    """One presentation per line; returns the number of lines."""
    lines = 0
    with path.open("w", encoding="utf-8") as handle:
        for raw in presentations:
            handle.write(json.dumps(raw, ensure_ascii=False) + "\n")
            lines += 1
    return lines


def findings(kb: KnowledgeBase, pid: str, count: int, *, seed: int) -> list[dict[str, Any]]:
    """`count` distinct findings dicts of one presentation, as the planner hands them to the engine
    (`facts_of` on a validated presentation): every declared detail and the age varied."""
    pick = RandomPick(random.Random(seed))
    seen: set[str] = set()
    found: list[dict[str, Any]] = []
    attempts = 0
    while len(found) < count and attempts < count * 20:
        attempts += 1
        raw = draw_presentation(kb, [pid], pick)
        if not valid(kb, raw):
            continue
        presentation = parse_presentation(raw, kb)
        facts = facts_of(presentation.conditions[0], presentation, kb)
        key = json.dumps(facts, sort_keys=True)
        if key not in seen:
            seen.add(key)
            found.append(facts)
    return found

