"""The Markdown report says what the Plan says, in the order a clinician needs it, and nothing
typed or sourced can turn into markup."""

from __future__ import annotations

import pytest

from models.loader import load_cases
from models.plan import Evidence, Plan, Statement
from rules import assess
from rules.render import NOT_GRADED, escape, need_text, to_markdown

CASES = {case.id: case for _, case in load_cases()}


def plan_of(case_id: str) -> Plan:
    return assess(CASES[case_id].input)


def _in_order(text: str, *parts: str) -> None:
    at = [text.index(part) for part in parts]
    assert at == sorted(at), f"out of order: {parts}\n{text}"


def test_stop_flag_comes_first_and_withholds_the_treatment() -> None:
    plan = plan_of("achalasia_older_patient_weight_loss")
    text = to_markdown(plan)
    stop = next(f for f in plan.standing_flags if f.severity == "stop")
    do_first = next(f for f in plan.standing_flags if f.severity == "do_first")
    _in_order(text, "## Stop: address before anything else", escape(stop.meaning), "## Do first", escape(do_first.meaning),
              "## Steps", "## Options", "## Why not")
    assert "**Stopped:**" in text
    withheld = [w for w in plan.why_not if w.withheld_by]
    assert withheld and all(f"- {escape(w.name)}: withheld until this is addressed: {escape(stop.meaning)}" in text for w in withheld)


def test_steps_in_order_with_each_option_and_its_strength_in_words() -> None:
    plan = plan_of("achalasia_type_iii_on_opioids")
    text = to_markdown(plan)
    names = {o.id: o.name for o in plan.options}
    _in_order(text, *(f"{s.order}. **{escape(s.title)}**" for s in plan.steps))
    assert "   - Per-oral endoscopic myotomy (POEM): preferred" in text
    assert "   - Laparoscopic Heller myotomy with partial fundoplication (Dor or Toupet): an alternative" in text
    for option in plan.options:
        assert f"### {escape(names[option.id])}: " in text


def test_shared_decision_with_its_tips_and_the_needs_prompts() -> None:
    plan = plan_of("spasticity_post_stroke_botulinum_toxin_first")
    assert plan.shared_decisions and plan.needs
    text = to_markdown(plan)
    shared = plan.shared_decisions[0]
    assert "## Shared decision" in text and "share the top rank" in text
    assert all(escape(tip) in text for tip in shared.tips)
    _in_order(text, "## Steps", "## Shared decision", "## Details that would change the answer", "## Options")
    for need in plan.needs:
        assert f"- {need_text(need)}" in text
        assert need_text(need).startswith(f"Record {escape(need.label)}: it decides ")


def test_needs_prompt_wording() -> None:
    from models.plan import Need

    two = Need(presentation="p", detail="d", label="Subtype", decides=("a", "b"), decides_names=("POEM", "Heller myotomy"))
    one = Need(presentation="p", detail="d", label="Fitness", decides=("a",), decides_names=("Botulinum toxin",))
    assert need_text(two) == "Record Subtype: it decides between POEM and Heller myotomy"
    assert need_text(one) == "Record Fitness: it decides the place of Botulinum toxin"


def test_cleared_flag_with_what_cleared_it() -> None:
    plan = plan_of("achalasia_type_iii_on_opioids")
    cleared = [f for f in plan.flags if f.status == "cleared"]
    assert cleared
    text = to_markdown(plan)
    _in_order(text, "## Options", "## Cleared flags", "## Why not")
    for flag in cleared:
        assert f"- {escape(flag.meaning)}: cleared by {escape(flag.cleared_by)}" in text


def test_evidence_grading_and_uncertainty_are_shown() -> None:
    plan = plan_of("achalasia_type_iii_poem_preferred")
    poem, other = plan.options[0], plan.options[1]
    other = other.model_copy(update={"basis": other.basis.model_copy(update={"evidence": ()})})
    graded = poem.model_copy(update={
        "basis": poem.basis.model_copy(update={
            "evidence": (Evidence(source="ACG20", system="GRADE", recommendation="strong", certainty="moderate"),),
            "uncertain": True,
        }),
        "risks": (Statement(text="A risk the brief marks to verify.", citations=(), uncertain=True),),
    })
    text = to_markdown(plan.model_copy(update={"options": (graded, other, *plan.options[2:])}))
    poem_part = text[text.index(f"### {escape(poem.name)}"):text.index(f"### {escape(other.name)}")]
    assert "- Evidence grading: GRADE (\\[ACG20\\]): recommendation strong; certainty moderate" in poem_part
    assert "- Uncertain: the source marks this as unsupported or to be verified" in poem_part
    assert "- Risk: A risk the brief marks to verify.  (uncertain: " in poem_part
    other_part = text[text.index(f"### {escape(other.name)}"):]
    assert f"- Evidence grading: {NOT_GRADED}" in other_part


def test_purpose_sources_stamp_and_disclaimer_close_the_report() -> None:
    plan = plan_of("achalasia_type_iii_poem_preferred")
    text = to_markdown(plan)
    info = plan.presentations[0]
    _in_order(text, "## Why not", "## What these rules are for", f"- Purpose: {escape(info.purpose)}",
              f"- Intended use: {escape(info.intended_use)}", f"- Not for: {escape(info.misuse)}",
              "## From the source documents", f"content hash `{plan.knowledge_base.content_hash}`", escape(plan.disclaimer))
    assert f"Knowledge base {plan.knowledge_base.version}," in text
    for caveat in plan.source_caveats:
        assert escape(caveat.quote) in text


def test_several_presentations_are_named_where_it_matters() -> None:
    fissure = next(c for c in CASES.values() if c.input["conditions"][0]["presentation"] == "chronic_anal_fissure")
    both = dict(CASES["achalasia_type_iii_poem_preferred"].input)
    both["conditions"] = [*both["conditions"], *fissure.input["conditions"]]
    plan = assess(both)
    assert len(plan.presentations) == 2
    text = to_markdown(plan)
    assert text.count("### ") >= len(plan.options)
    for p in plan.presentations:
        assert f"({escape(p.name)})" in text


@pytest.mark.parametrize(
    "payload",
    ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "[click](javascript:alert(1))", "**bold** _it_ `code`",
     "| a | b |", "$x^2$", "line\n# heading\n- item"],
)
def test_escape_leaves_no_markup(payload: str) -> None:
    escaped = escape(payload, line_start=True)
    assert "\n" not in escaped
    for char in "<>[]`*|$":
        assert char not in escaped.replace("\\" + char, ""), (char, escaped)
    assert not escaped.startswith(("#", "-", ">"))


def test_escape_keeps_ids_and_numbers_readable() -> None:
    assert escape("type_iii, 1.4-5.4% (20-40 procedures)") == "type_iii, 1.4-5.4% (20-40 procedures)"
    assert escape("1. first", line_start=True) == "1\\. first"
