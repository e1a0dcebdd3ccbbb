"""Property-based tests over the input model: thousands of generated presentations, valid and invalid.

Strategies are derived from the `Condition` model and the knowledge base, so new presentations and
details are covered without editing this file.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.presentation import Condition, Outcome
from rules import InputError, assess, default_context

KB = default_context()[0]
PRESENTATIONS = sorted(KB.presentations)
SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _field_strategy(name: str) -> st.SearchStrategy[Any]:
    info = Condition.model_fields[name]
    args = [a for a in typing.get_args(info.annotation) if a is not type(None)]
    inner = args[0] if len(args) == 1 else info.annotation
    bounds: dict[str, float] = {}
    for meta in info.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(meta, attr, None) is not None:
                bounds[attr] = getattr(meta, attr)
    if typing.get_origin(inner) is Literal:
        return st.sampled_from(typing.get_args(inner))
    if inner is bool:
        return st.booleans()
    low = bounds.get("ge", bounds.get("gt", 0))
    high = bounds.get("le", bounds.get("lt", 1000))
    if inner is int:
        return st.integers(int(low), int(high))
    return st.floats(low, high, exclude_min="gt" in bounds, allow_nan=False)


@st.composite
def conditions(draw: st.DrawFn, pid: str) -> dict[str, Any]:
    pdef = KB.presentations[pid]
    out: dict[str, Any] = {"presentation": pid}
    for field in pdef.details:
        if not draw(st.booleans()):
            continue
        if field == "subtype":
            if pdef.subtypes:
                out["subtype"] = draw(st.sampled_from(pdef.subtypes))
        elif field == "prior_treatments":
            treatments = draw(st.lists(st.sampled_from([*pdef.procedures, *pdef.first_line]), unique=True, max_size=3))
            out["prior_treatments"] = [
                {"treatment": t, "outcome": draw(st.sampled_from(typing.get_args(Outcome)))} for t in treatments
            ]
        else:
            out[field] = draw(_field_strategy(field))
    if out.get("conservative_care") == "not_tried":
        out.pop("botulinum_response", None)
    return out


@st.composite
def presentations(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(PRESENTATIONS), min_size=1, max_size=3, unique=True))
    limit = min((KB.presentations[p].max_age_years or 120) for p in chosen)
    needs_age = any(KB.presentations[p].requires_age for p in chosen)
    raw: dict[str, Any] = {"conditions": [draw(conditions(p)) for p in chosen]}
    if needs_age or draw(st.booleans()):
        unit = draw(st.sampled_from(["days", "weeks", "months", "years"]))
        per_year = {"days": 365.25, "weeks": 365.25 / 7, "months": 12, "years": 1}[unit]
        raw["age"] = {"value": draw(st.floats(0, limit * per_year * 0.999, allow_nan=False)), "unit": unit}
    return raw


@SETTINGS
@given(presentations())
def test_valid_presentations_always_get_a_sourced_assessment(raw: dict[str, Any]) -> None:
    result = assess(raw)
    assert result.knowledge_base.version == KB.version
    for s in result.suggestions:
        assert s.reason and s.basis.rule_ids and s.basis.citations
        standing = [f.id for f in result.red_flags if f.presentation == s.presentation and s.procedure in f.concerns]
        if standing:
            assert s.strength != "preferred", (s.procedure, standing)
    for flag in result.red_flags:
        assert flag.basis.rule_ids and flag.basis.citations


def _break(draw: st.DrawFn, raw: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One targeted mistake, and the field path the error must name."""
    cond = raw["conditions"][0]
    pdef = KB.presentations[cond["presentation"]]
    kinds = ["unknown_field", "unknown_presentation", "negative_age", "wrong_type", "foreign_detail", "bad_subtype"]
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
        field = draw(st.sampled_from([f for f in pdef.details if f not in ("subtype", "prior_treatments")] or ["symptomatic"]))
        cond[field] = {"nested": ["not", "a", "value"]}
        return raw, f"conditions.0.{field}"
    if kind == "foreign_detail":
        foreign = [f for f in Condition.model_fields if f not in pdef.details and f not in ("presentation", "prior_treatments", "subtype")]
        field = draw(st.sampled_from(foreign))
        cond[field] = draw(_field_strategy(field))
        return raw, f"conditions.0.{field}"
    cond["subtype"] = "no_such_subtype"
    return raw, "conditions.0.subtype"


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
