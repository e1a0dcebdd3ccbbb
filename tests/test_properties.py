"""Property-based tests over the input model: thousands of generated presentations, valid and invalid.

Presentations are drawn by the benchmarks' generator (benchmarks/inputs.py), which reads the
declared details (`kb.details[pid]`: type, choices, min and max) and the thresholds the rules test;
here hypothesis makes its choices, so that a failure shrinks to a small input, and numbers range
over the whole declared interval as well as the thresholds. New presentations and details are
covered without editing this file.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import inputs
from models.knowledge import TOP_RANK
from models.loader import AGE_FLAG
from models.plan import Plan
from rules import InputError, assess, default_context

T = TypeVar("T")
KB = default_context()[0]
PRESENTATIONS = sorted(KB.presentations)
SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class HypothesisPick:
    """The generator's choices drawn by hypothesis (see benchmarks.inputs.Pick)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def flip(self) -> bool:
        return self.draw(st.booleans())

    def one(self, values: Sequence[T]) -> T:
        return self.draw(st.sampled_from(values))

    def number(self, marks: Sequence[float], low: float, high: float, integer: bool) -> float:
        anywhere = st.integers(int(low), int(high)) if integer else st.floats(low, high, allow_nan=False)
        return self.draw(st.one_of(st.sampled_from(marks), anywhere) if marks else anywhere)

    def some(self, values: Sequence[T], most: int) -> list[T]:
        return self.draw(st.lists(st.sampled_from(values), unique=True, max_size=most))


@st.composite
def presentations(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(PRESENTATIONS), min_size=1, max_size=3, unique=True))
    return inputs.draw_presentation(KB, chosen, HypothesisPick(draw))


def check_plan(plan: Plan) -> None:
    """What holds for every plan: every statement has its basis, flags act as their severity says."""
    assert plan.knowledge_base.version == KB.version
    standing = plan.standing_flags
    for option in plan.options:
        assert option.reason and option.basis.rule_ids and option.basis.citations, option.id
        assert set(option.basis.rule_versions) == set(option.basis.rule_ids)
        cautions = [f.id for f in standing if f.presentation == option.presentation and f.severity == "caution"
                    and option.id in f.concerns]
        if cautions:
            assert option.strength not in TOP_RANK, (option.id, cautions)
        if any(f.presentation == option.presentation and f.severity == "stop" for f in standing):
            assert option.step == "first" or option.strength == "not_indicated", (option.id, option.step)
    for flag in plan.flags:
        # the age caution rests on the presentation's declared usual ages, not on a rule
        assert (flag.basis.rule_ids or flag.id == AGE_FLAG) and flag.basis.citations and flag.basis.statements, flag.id
        assert (flag.status == "cleared") == (flag.cleared_by is not None)
    assert plan.stopped == any(f.severity == "stop" for f in standing)
    assert [s.order for s in plan.steps] == list(range(1, len(plan.steps) + 1))
    in_steps = {oid for s in plan.steps for oid in s.options}
    offered = {o.id for o in plan.options if o.strength != "not_indicated"}
    assert in_steps <= {o.id for o in plan.options} and offered <= in_steps


@SETTINGS
@given(presentations())
def test_valid_presentations_always_get_a_sourced_plan(raw: dict[str, Any]) -> None:
    check_plan(assess(raw))


def _break(draw: st.DrawFn, raw: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One targeted mistake, and the field path the error must name."""
    cond = raw["conditions"][0]
    pid = cond["presentation"]
    declared = {d.id: d for d in KB.details[pid]}
    values = [d for d in declared.values() if d.type != "treatments"]
    foreign = sorted({d.id for p in PRESENTATIONS for d in KB.details[p]} - set(declared))
    kinds = ["unknown_field", "unknown_presentation", "negative_age", "bad_choice", "out_of_bounds"]
    kinds += ["wrong_type"] if values else []
    kinds += ["foreign_detail"] if foreign else []
    kind = draw(st.sampled_from(kinds))
    if kind == "unknown_field":
        cond["favourite_colour"] = "blue"
        return raw, "conditions.0.favourite_colour"
    if kind == "unknown_presentation":
        cond.clear()
        cond["presentation"] = draw(st.text(alphabet="abcxyz_", min_size=3, max_size=12).filter(lambda t: t not in KB.presentations))
        return raw, "conditions.0.presentation"
    if kind == "negative_age":
        raw["age"] = {"value": -draw(st.floats(0.001, 1e6, allow_nan=False)), "unit": "years"}
        return raw, "age.value"
    if kind == "wrong_type":
        detail = draw(st.sampled_from(values))
        cond[detail.id] = {"nested": ["not", "a", "value"]}
        return raw, f"conditions.0.{detail.id}"
    if kind == "foreign_detail":
        field = draw(st.sampled_from(foreign))
        cond[field] = True
        return raw, f"conditions.0.{field}"
    choice = [d for d in values if d.type == "choice"]
    if kind == "bad_choice" and choice:
        detail = draw(st.sampled_from(choice))
        cond[detail.id] = "no_such_choice"
        return raw, f"conditions.0.{detail.id}"
    bounded = [d for d in values if d.type in ("number", "integer") and d.max is not None]
    if bounded:
        detail = draw(st.sampled_from(bounded))
        cond[detail.id] = int(detail.max) + 1 if detail.type == "integer" else detail.max + draw(st.floats(0.01, 1e6))
        return raw, f"conditions.0.{detail.id}"
    cond["favourite_colour"] = "blue"
    return raw, "conditions.0.favourite_colour"


@SETTINGS
@given(st.data())
def test_invalid_presentations_are_rejected_naming_the_field(data: st.DataObject) -> None:
    raw, field = _break(data.draw, data.draw(presentations()))
    try:
        assess(raw)
    except InputError as error:
        name = field.rsplit(".", 1)[-1]
        # a field-level error names the field in its path; a contradiction between two details is
        # reported on the condition and names both fields in its message
        assert any(loc.startswith(field) or name in message for loc, message in error.errors), (field, error.errors)
        assert all(message for _, message in error.errors)
    else:
        raise AssertionError(f"accepted invalid input (expected an error at {field}): {raw}")
