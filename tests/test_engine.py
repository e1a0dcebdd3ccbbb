"""The engine agrees with the plain-Python reading of every rule, and never hides a failing rule."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from benchmarks import inputs
from models import conditions
from models.loader import PRIOR_PREFIX, KnowledgeBase, load_cases
from rules import RuleExecutionError, assess
from rules.engine import Engine
from rules.planner import facts_of, parse_presentation


def _values_for(kb: KnowledgeBase, field: str) -> list[Any]:
    """Values that sit on both sides of every threshold and choice the rules use for a finding."""
    values: set[Any] = set()
    for tests in kb.tests.values():
        for c in conditions.clauses(tests):
            if c.field != field or c.op == "missing":
                continue
            for v in c.value if isinstance(c.value, list) else [c.value]:
                if isinstance(v, bool) or isinstance(v, str):
                    values.add(v)
                else:
                    values.update({v - 1, v, v + 1})
    if any(isinstance(v, bool) for v in values):
        values.update({True, False})
    return sorted(values, key=repr)


def test_engine_matches_python_reading_of_the_rules(kb: KnowledgeBase) -> None:
    """Random findings (seeded), valid or not as a patient: the rules durable-rules fires are exactly
    those whose clauses hold (models/conditions.py)."""
    engine = Engine(kb)
    rng = random.Random(20261124)
    checked = none_fired = 0
    for pid in kb.presentations:
        rules = kb.rules_for(pid)
        fields = sorted({f for r in rules for f in conditions.fields(kb.tests[r.id])})
        for _ in range(150):
            facts = {}
            for f in fields:
                choices = _values_for(kb, f)
                if choices and rng.random() < 0.7:
                    facts[f] = rng.choice(choices)
            expected = {r.id for r in rules if conditions.holds(kb.tests[r.id], facts)}
            assert set(engine.fire(pid, facts)) == expected, (pid, facts)
            checked += 1
            none_fired += not expected
    assert checked >= 150
    assert none_fired > 0, "no input where no rule holds: the C core's 'not matched' answer went untested"


def test_engine_and_python_evaluator_agree_on_generated_presentations(kb: KnowledgeBase) -> None:
    """Valid presentations from the shared generator (benchmarks/inputs.py: declared details, rule
    thresholds, ages, prior treatments), flattened by the planner: durable-rules fires exactly the
    rules whose clauses hold, and every rule fires for some input."""
    engine = Engine(kb)
    pick = inputs.RandomPick(random.Random(20261125))
    fired_somewhere: set[str] = set()
    checked = 0
    for pid in kb.presentations:
        rules = kb.rules_for(pid)
        for _ in range(400):
            raw = inputs.draw_presentation(kb, [pid], pick)
            presentation = parse_presentation(raw, kb)
            facts = facts_of(presentation.conditions[0], presentation, kb)
            expected = {r.id for r in rules if conditions.holds(kb.tests[r.id], facts)}
            fired = engine.fire(pid, facts)
            assert set(fired) == expected, (pid, facts)
            assert list(dict.fromkeys(fired)) == [r.id for r in rules if r.id in expected], "not in rule-file order"
            fired_somewhere |= expected
            checked += 1
    assert checked == 400 * len(kb.presentations)
    unfired = sorted(r.id for r in kb.rules if r.id not in fired_somewhere)
    assert len(unfired) <= len(kb.rules) // 10, f"the generator reaches too few rules: {unfired}"


def test_a_rule_fires_once_when_several_of_its_alternatives_hold(kb: KnowledgeBase) -> None:
    raw = {"age": {"value": 59}, "conditions": [
        {"presentation": "achalasia", "rapid_weight_loss": True, "difficult_gej_passage": True}]}
    presentation = parse_presentation(raw, kb)
    fired = Engine(kb).fire("achalasia", facts_of(presentation.conditions[0], presentation, kb))
    assert fired.count("achalasia_features_of_pseudoachalasia") == 1, fired


def test_a_failing_rule_action_raises_instead_of_dropping_a_suggestion(kb: KnowledgeBase) -> None:
    def explode(rule_id: str) -> None:
        if rule_id == "achalasia_type_iii_prefers_poem":
            raise ZeroDivisionError("injected fault")

    engine = Engine(kb, action_hook=explode)
    case = {"age": {"value": 45}, "conditions": [{"presentation": "achalasia", "subtype": "type_iii",
                                                  "diagnosis_confirmed": True, "malignancy_excluded": True}]}
    with pytest.raises(RuleExecutionError, match="achalasia_type_iii_prefers_poem.*injected fault"):
        assess(case, context=(kb, engine))
    # the same engine still works afterwards for other assessments
    ok = assess({"conditions": [{"presentation": "achalasia"}]}, context=(kb, engine))
    assert ok.flags


def test_the_engine_holds_no_fact_between_assessments(kb: KnowledgeBase) -> None:
    """Each fact is retracted once its activations are read (rules/engine.py): the same fact twice
    fires the same rules (no "already observed"), a failing action leaves nothing behind, and
    every ruleset's state is empty afterwards."""
    engine = Engine(kb, action_hook=lambda rule_id: None)
    for _, case in load_cases(kb):
        presentation = parse_presentation(case.input, kb)
        for condition in presentation.conditions:
            facts = facts_of(condition, presentation, kb)
            assert engine.fire(condition.presentation, facts) == engine.fire(condition.presentation, facts)
    assert engine.held_facts() == 0

    def explode(rule_id: str) -> None:
        raise ZeroDivisionError("injected fault")

    failing = Engine(kb, action_hook=explode)
    raw = {"age": {"value": 45}, "conditions": [{"presentation": "achalasia", "subtype": "type_iii"}]}
    with pytest.raises(RuleExecutionError):
        assess(raw, context=(kb, failing))
    assert failing.held_facts() == 0


def test_same_input_gives_same_plan(kb: KnowledgeBase) -> None:
    _, case = load_cases(kb)[0]
    assert assess(case.input) == assess(case.input)


def test_prior_treatment_facts_are_named_by_procedure(kb: KnowledgeBase) -> None:
    p = kb.input_model.model_validate({"age": {"value": 6, "unit": "weeks"}, "conditions": [
        {"presentation": "achalasia", "prior_treatments": [{"treatment": "pneumatic_dilation", "outcome": "failed"}]}]})
    facts = facts_of(p.conditions[0], p, kb)
    assert facts[PRIOR_PREFIX + "pneumatic_dilation"] == "failed"
    assert facts["age_weeks"] == 6 and facts["age_years"] == pytest.approx(6 * 7 / 365.25, abs=1e-3)


def test_tiny_and_exponent_numbers_reach_the_engine_safely() -> None:
    """durable-rules fails on numbers written with an exponent; inputs like 1e-07 must still assess."""
    for value in (5e-324, 1e-7, 0.00001, 999.99999):
        result = assess({"age": {"value": 1e-7, "unit": "days"},
                         "conditions": [{"presentation": "achalasia", "symptom_duration_months": value}]})
        assert result.flags


def test_compiled_clauses_match_the_reference_method(kb: KnowledgeBase) -> None:
    """Each clause's `holds` is compiled once per operator (models/conditions.py); on values around
    every threshold and choice, absent findings and wrong types included, it answers as the
    reference `Clause.holds` does."""
    odd = [None, "", 0, 1, 0.0, True, False, "x", -1.5]
    checked = 0
    for tests in kb.tests.values():
        for clause in conditions.clauses(tests):
            for value in [*_values_for(kb, clause.field), *odd]:
                facts = {clause.field: value}
                assert clause.holds(facts) == conditions.Clause.holds(clause, facts), (clause, value)
                checked += 1
            assert clause.holds({}) == conditions.Clause.holds(clause, {}), clause
    for op, value in (("ne", "a"), ("not_in", ["a", "b"]), ("gt", 3), ("lte", 2.5), ("missing", False)):
        clause = conditions.Clause("f", op, value)
        for actual in [*odd, "a", "b", 3, 2.5, 4]:
            assert clause.holds({"f": actual}) == conditions.Clause.holds(clause, {"f": actual}), (clause, actual)
        assert clause.holds({}) == conditions.Clause.holds(clause, {})
    assert checked > 1000
