"""The output contract: basis records, red flags before preference, why-not, provenance."""

from __future__ import annotations

import pytest

from models import Assessment
from rules import InputError, assess
from rules.knowledge_base import KnowledgeBase, load_cases

CASES = [case for _, case in load_cases()]


@pytest.fixture(scope="module")
def results() -> list[Assessment]:
    return [assess(case.input) for case in CASES]


def test_every_suggestion_has_reason_citation_and_version(results: list[Assessment], kb: KnowledgeBase) -> None:
    for result in results:
        assert result.knowledge_base.version == kb.version
        assert result.knowledge_base.content_hash == kb.content_hash
        assert "not a diagnosis" in result.disclaimer
        for s in result.suggestions:
            assert s.reason and s.basis.rule_ids and s.basis.citations, s.procedure
            assert set(s.basis.rule_versions) == set(s.basis.rule_ids)
            assert len(s.summary) < 140


def test_no_procedure_is_preferred_while_a_red_flag_for_it_stands(results: list[Assessment]) -> None:
    for result in results:
        for s in result.suggestions:
            flags = [f for f in result.red_flags if f.presentation == s.presentation and s.procedure in f.concerns]
            if flags:
                assert s.strength != "preferred", (s.procedure, [f.id for f in flags])
                assert s.held_back_by


def test_held_back_preference_says_so() -> None:
    result = assess({"age": {"value": 58}, "conditions": [{"presentation": "achalasia", "subtype": "type_iii",
                    "diagnosis_confirmed": True, "malignancy_excluded": True, "operative_risk": "high"}]})
    poem = next(s for s in result.suggestions if s.procedure == "poem")
    assert poem.strength == "alternative" and poem.held_back_by == ("high_operative_risk",)
    assert "held back" in poem.reason and poem.indicator == "warning"


def test_why_not_names_the_unmet_condition() -> None:
    result = assess({"age": {"value": 40}, "conditions": [{"presentation": "achalasia", "subtype": "type_ii",
                     "diagnosis_confirmed": True, "malignancy_excluded": True}]})
    assert {s.procedure for s in result.suggestions} == {"poem", "heller_myotomy_fundoplication"}
    assert not any(w.procedure == "poem" for w in result.why_not)
    unconfirmed = assess({"age": {"value": 40}, "conditions": [{"presentation": "achalasia"}]})
    poem = next(w for w in unconfirmed.why_not if w.procedure == "poem")
    type_iii = next(r for r in poem.rules if r.rule_id == "achalasia_type_iii_prefers_poem")
    assert "diagnosis_confirmed is yes" in type_iii.unmet and "subtype is type_iii" in type_iii.unmet


def test_basis_lists_inputs_used_and_missing() -> None:
    result = assess({"age": {"value": 45}, "conditions": [{"presentation": "achalasia", "subtype": "type_iii",
                     "diagnosis_confirmed": True, "malignancy_excluded": True}]})
    poem = next(s for s in result.suggestions if s.procedure == "poem")
    assert poem.basis.inputs_used == {"diagnosis_confirmed": True, "subtype": "type_iii"}
    assert "opioid_use" in poem.basis.inputs_missing


def test_source_caveats_are_quoted_with_file_and_audit() -> None:
    result = assess({"conditions": [{"presentation": "achalasia"}]})
    general = {c.id: c for c in result.source_caveats}
    scarring = general["postoperative_drugs_prevent_scarring"]
    assert scarring.source.endswith(".txt") and scarring.audit and scarring.audit.verdict == "contradicts"
    assert scarring.audit_citations


def test_several_presentations_at_once(kb: KnowledgeBase) -> None:
    """Two teaching cases of different presentations, assessed together, give the union of both."""
    by_presentation = {}
    for case in CASES:
        if len(case.input["conditions"]) == 1 and "age" in case.input:
            by_presentation.setdefault(case.input["conditions"][0]["presentation"], case)
    if len(by_presentation) < 2:
        pytest.skip("the knowledge base has teaching cases for fewer than two presentations")
    first, second = [by_presentation[p] for p in sorted(by_presentation)[:2]]
    both = assess({"age": first.input["age"], "conditions": [*first.input["conditions"], *second.input["conditions"]]})
    alone = [assess({"age": first.input["age"], "conditions": case.input["conditions"]}) for case in (first, second)]
    assert [p.id for p in both.presentations] == [p.id for a in alone for p in a.presentations]
    assert {(s.presentation, s.procedure, s.strength) for s in both.suggestions} == {
        (s.presentation, s.procedure, s.strength) for a in alone for s in a.suggestions}
    assert {(f.presentation, f.id) for f in both.red_flags} == {(f.presentation, f.id) for a in alone for f in a.red_flags}


# --- bad input through the API: InputError names the field and the reason ---

BAD = [
    ({"conditions": [{"presentation": "achalasia", "subtype": "type_iv"}]}, "conditions.0.subtype", "not a subtype"),
    ({"conditions": [{"presentation": "appendicitis"}]}, "conditions.0.presentation", "unknown presentation"),
    ({"age": {"value": -1}, "conditions": [{"presentation": "achalasia"}]}, "age.value", "greater than or equal to 0"),
    ({"age": {"value": 200, "unit": "years"}, "conditions": [{"presentation": "achalasia"}]}, "age", "over 120 years"),
    ({"age": {"value": 3, "unit": "fortnights"}, "conditions": [{"presentation": "achalasia"}]}, "age.unit", "Input should be"),
    ({"conditions": []}, "conditions", "at least 1 item"),
    ({}, "conditions", "Field required"),
    ({"conditions": [{"presentation": "achalasia", "colour": "red"}]}, "conditions.0.colour", "Extra inputs"),
    ({"conditions": [{"presentation": "achalasia", "gmfcs_level": 2}]}, "conditions.0.gmfcs_level", "not a detail of 'achalasia'"),
    ({"conditions": [{"presentation": "achalasia", "prior_treatments": [{"treatment": "leeches", "outcome": "failed"}]}]},
     "conditions.0.prior_treatments.0.treatment", "unknown treatment"),
    ({"conditions": [{"presentation": "achalasia", "prior_treatments": [
        {"treatment": "pneumatic_dilation", "outcome": "failed"}, {"treatment": "pneumatic_dilation", "outcome": "good_response"}]}]},
     "conditions.0", "listed twice"),
    ({"conditions": [{"presentation": "achalasia"}, {"presentation": "achalasia"}]}, "", "more than once"),
    ({"conditions": [{"presentation": "achalasia", "diagnosis_confirmed": "maybe"}]}, "conditions.0.diagnosis_confirmed", "valid boolean"),
    ("not an object", "", "expected a JSON object"),
]


@pytest.mark.parametrize(("raw", "field", "reason"), BAD, ids=[b[2] for b in BAD])
def test_invalid_input_names_field_and_reason(raw, field: str, reason: str) -> None:
    with pytest.raises(InputError) as info:
        assess(raw)
    assert any(loc.startswith(field) and reason in msg for loc, msg in info.value.errors), info.value.errors
