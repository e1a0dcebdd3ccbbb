"""The hand translations of the achalasia rules that `make bench` times the engine against
(benchmarks/achalasia.clp for CLIPS, `benchmarks.decision.floor` in plain Python) give the
engine's decision: the same fired rules, flags and merged options on every achalasia teaching case
and on generated findings. A changed achalasia rule that is not translated again fails here, so
the comparison cannot drift silently into timing different decisions."""

from __future__ import annotations

import pytest

from models.loader import KnowledgeBase, load_cases
from rules import default_context
from rules.planner import facts_of, parse_presentation

clips = pytest.importorskip("clips")

from benchmarks import decision, inputs  # noqa: E402  (needs clipspy)


@pytest.fixture(scope="module")
def peer() -> decision.Clips:
    return decision.Clips()


def test_translations_read_the_findings_the_rules_read(kb: KnowledgeBase) -> None:
    assert set(decision.SLOTS) == decision.read_fields(kb)


def test_translations_agree_on_every_teaching_case(kb: KnowledgeBase, peer: decision.Clips) -> None:
    engine = default_context()[1]
    checked = 0
    for _, case in load_cases(kb):
        presentation = parse_presentation(case.input, kb)
        for condition in presentation.conditions:
            if condition.presentation != decision.PRESENTATION:
                continue
            findings = decision.recorded(kb, facts_of(condition, presentation, kb))
            assert decision.disagreement(kb, engine, peer, findings) is None
            checked += 1
    assert checked >= 10


def test_translations_agree_on_generated_findings(kb: KnowledgeBase, peer: decision.Clips) -> None:
    """Every declared detail, prior treatment and age varied; every rule fires somewhere."""
    engine = default_context()[1]
    findings = [decision.recorded(kb, f) for f in inputs.findings(kb, decision.PRESENTATION, 600, seed=17)]
    checked = decision.check(kb, engine, peer, findings)
    assert checked["inputs"] == len(findings) >= 500
