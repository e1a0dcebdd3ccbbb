"""Every teaching case in data/cases/ is a test: adding a case needs no Python."""

from __future__ import annotations

import pytest

from models.knowledge import TeachingCase
from rules import assess
from rules.knowledge_base import load_cases

CASES = load_cases()


@pytest.mark.parametrize(("file", "case"), CASES, ids=[case.id for _, case in CASES])
def test_teaching_case(file: str, case: TeachingCase) -> None:
    result = assess(case.input)
    strengths = {(s.presentation, s.procedure): s.strength for s in result.suggestions}
    suggested = {procedure: strength for (_, procedure), strength in strengths.items()}
    flags = {f.id for f in result.red_flags}
    where = f"{file} case {case.id}"

    for expected in case.expect_suggested:
        assert expected.procedure in suggested, f"{where}: {expected.procedure} not suggested; got {suggested}"
        if expected.strength:
            assert suggested[expected.procedure] == expected.strength, (
                f"{where}: {expected.procedure} is {suggested[expected.procedure]}, expected {expected.strength}"
            )
    for procedure in case.expect_not_suggested:
        assert procedure not in suggested, f"{where}: {procedure} must not be suggested ({suggested[procedure]})"
    for flag in case.expect_red_flags:
        assert flag in flags, f"{where}: red flag {flag} not raised; got {sorted(flags)}"
    if case.expect_no_red_flags:
        assert not flags, f"{where}: expected no red flags, got {sorted(flags)}"
    workup = {w.id for w in result.workup}
    for item in case.expect_workup:
        assert item in workup, f"{where}: work-up {item} missing; got {sorted(workup)}"
    first_line = {f.id for f in result.first_line}
    for item in case.expect_first_line:
        assert item in first_line, f"{where}: first-line {item} missing; got {sorted(first_line)}"


def test_every_presentation_has_three_cases() -> None:
    from rules import default_context

    kb = default_context()[0]
    counts = {pid: 0 for pid in kb.presentations}
    for _, case in CASES:
        for cond in case.input.get("conditions", []):
            counts[cond["presentation"]] = counts.get(cond["presentation"], 0) + 1
    thin = {pid: n for pid, n in counts.items() if n < 3}
    assert not thin, f"presentations with fewer than three teaching cases: {thin}"


def test_every_rule_is_fired_by_a_case() -> None:
    from rules import default_context

    kb = default_context()[0]
    fired = {rule for _, case in CASES for rule in assess(case.input).fired_rules}
    unexercised = sorted(rule.id for rule in kb.rules if rule.id not in fired)
    assert not unexercised, f"rules that no teaching case fires: {unexercised}"
