"""The bits of failing tests (rules/masks.py) agree with each test's own reading."""

from __future__ import annotations

import random

from models import conditions
from models.loader import KnowledgeBase
from rules import planner
from rules.masks import ABSENT
from tests.test_engine import _values_for


def test_failing_bits_agree_with_each_test_and_a_trial_value_with_a_fresh_reading(kb: KnowledgeBase) -> None:
    d = planner._derived(kb)
    rng = random.Random(5)
    checked = 0
    for pid, rules in d.rules_for.items():
        failing = d.failing[pid]
        tests = planner._all_tests([*(kb.tests[r.id] for r in rules), *(t for _, _, t in kb.definitions[pid].items)])
        fields = sorted({f for t in tests for f in conditions.fields((t,))})
        for _ in range(60):
            facts = {f: rng.choice(vs) for f in fields if (vs := _values_for(kb, f)) and rng.random() < 0.6}
            kb.definitions[pid].apply(facts)
            bits = failing.of(facts)
            for test in tests:
                assert bool(bits & failing.mask((test,))) == (not test.holds(facts)), (pid, test, facts)
                checked += 1
            name = rng.choice(fields)
            changed = dict(facts)
            if (vs := _values_for(kb, name)) and rng.random() < 0.8:
                changed[name] = rng.choice(vs)
            else:
                changed.pop(name, None)
            kb.definitions[pid].apply(changed)
            assert failing.trial(bits, [(name, changed.get(name, ABSENT))], d.definition_bits[pid]) == failing.of(changed), (pid, name)
    assert checked > 10_000
