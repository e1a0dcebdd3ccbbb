"""The Streamlit app through Streamlit's own AppTest: the form from the declared details, the plan in
its order (stop flags, do-first flags, the plan, what would change it, the options), validation
errors named in the form, teaching mode, exports, escaping and the failure paths."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "page.py")  # the page; app.py serves it through st.App
IHPS = "infantile_hypertrophic_pyloric_stenosis"


def fresh() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def fill(at: AppTest, pid: str, age: float | None, unit: str = "years", **details: Any) -> AppTest:
    at.multiselect(key="presentations").set_value([pid]).run()
    if age is not None:
        at.number_input(key="age.value").set_value(age)
        at.selectbox(key="age.unit").set_value(unit)
    for field, value in details.items():
        widget = at.number_input if isinstance(value, (int, float)) and not isinstance(value, bool) else at.selectbox
        widget(key=f"detail.{pid}.{field}").set_value(value)
    at.button(key="assess").click().run()
    assert not at.exception, at.exception
    return at


def type_iii(at: AppTest, **overrides: Any) -> AppTest:
    details = {"subtype": "type_iii", "diagnosis_confirmed": True, "malignancy_excluded": True, **overrides}
    return fill(at, "achalasia", 45, **details)


_COPY = re.compile(r'<div hidden data-copy="([^"]*)">')


def _copies(body: str) -> tuple[dict[str, str], str]:
    """The hidden copies an answer block carries for the form and the sidebar (webapp/mirror.py), by place,
    and the block without them."""
    found, rest, at = {}, [], 0
    for match in _COPY.finditer(body):
        if match.start() < at:
            continue  # inside a copy already taken
        depth, end = 1, match.end()
        for tag in re.finditer(r"<div\b|</div>", body[match.end():]):
            depth += 1 if tag.group() == "<div" else -1
            if not depth:
                end = match.end() + tag.start()
                break
        found[html.unescape(match.group(1))] = body[match.end():end]
        rest.append(body[at:match.start()])
        at = end + len("</div>")
    return found, "".join(rest) + body[at:]


def copied(at: AppTest, place: str) -> str:
    """What the browser copies into `place` (a presentation id, "age", the sidebar's teaching point) from the
    answer, as text ('' when the answer carries nothing for it)."""
    for block in at.html:
        found = _copies(block.value)[0]
        if place in found:
            return plain(found[place])
    return ""


def plain(body: str) -> str:
    """An st.html block as the text a reader sees where it is drawn: tags dropped, a line per paragraph, item,
    heading and table row (a row as '| a | b |'), entities read; the hidden copies for the form and sidebar
    left out (`copied`)."""
    body = _copies(body)[1]
    body = re.sub(r"<(style|script)\b.*?</\1>", "", body, flags=re.S)
    body = body.replace("<li>", "- ").replace("<tr>", "| ")
    body = re.sub(r"</t[dh]>", " | ", body)
    body = re.sub(r"<br>|</p>|</li>|</h\d>|</tr>|</summary>|</blockquote>", "\n", body)
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [c.value for c in at.caption] + [i.value for i in at.info] + [s.value for s in at.success]
    return "\n".join(parts).replace("\\", "") + "\n" + "\n".join(plain(b.value) for b in at.html)


def headings(at: AppTest) -> list[str]:
    """The answer's headings in page order (they are in its HTML blocks), then any Streamlit subheaders."""
    return [html.unescape(t) for b in at.html for t in re.findall(r"<h3[^>]*>(.*?)</h3>", b.value)] + [
        s.value for s in at.subheader]


def answer_text(at: AppTest) -> str:
    """The answer's HTML blocks as plain text, in page order."""
    return "\n".join(plain(b.value) for b in at.html)


def results(at: AppTest) -> list[tuple[str, str]]:
    """The elements after the results heading, in page order, as (kind, text without escapes)."""
    out, started = [], False
    for element in at.main:
        for node in _walk(element):
            kind, value = node.type, getattr(node, "value", None)
            if kind == "html" and "3. The plan and its basis" in value:
                started = True
            if started and isinstance(value, str):
                out.append((kind, plain(value) if kind == "html" else value.replace("\\", "")))
    return out


def _walk(node: Any):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)




def beside(at: AppTest, key: str, kind: str = "error", box: str = "column") -> list[str]:
    """The texts of `kind` elements in the nearest `box` ("column"; "expander" for a presentation's
    details) that holds the widget with `key`."""
    def box_of(node: Any, found_box: Any = None) -> Any:
        if getattr(node, "key", None) == key:
            return found_box
        for child in getattr(node, "children", {}).values():
            found = box_of(child, node if getattr(node, "type", "") == box else found_box)
            if found is not None:
                return found
        return None

    holder = box_of(at._tree)
    assert holder is not None, f"no {box} holds {key}"
    return [n.value.replace("\\", "") for n in _walk(holder) if n.type == kind]


def anchored_in(at: AppTest, place: str, key: str, box: str) -> bool:
    """Whether the place's anchor (where the browser copies its text) is in the same `box` ("column",
    "expander") as the widget with `key`."""
    return any(f'data-anchor="{place}"' in value for value in beside(at, key, "html", box))


def test_the_form_shows_every_declared_detail_in_words() -> None:
    """Labels, choices and treatments come from kb.details, as words: no id appears on a widget."""
    from rules import default_context

    kb, _ = default_context()
    at = fresh()
    for pid in kb.presentations:
        at.multiselect(key="presentations").set_value([pid]).run()
        assert not at.exception, at.exception
        for detail in kb.details[pid]:
            key = f"detail.{pid}.{detail.id}"
            if detail.type == "treatments":
                for oid in kb.presentations[pid].options:
                    outcome = at.selectbox(key=f"{key}.{oid}")
                    assert outcome.label.replace("\\", "") == kb.options[oid].name
                    assert outcome.options == ["not recorded", "failed", "partial response", "good response", "not tolerated"]
                continue
            elif detail.type in ("number", "integer"):
                widget = at.number_input(key=key)
                assert widget.min is None and widget.max is None  # checked on the server, never clamped in the browser
                if detail.min is not None or detail.max is not None:  # the range is said in the help instead
                    assert "Range: " in widget.help.replace("\\", "")
                    widget = type("Shown", (), {"label": widget.label, "help": widget.help.split(" Range")[0].split("Range")[0]})
            else:
                widget = at.selectbox(key=key)
                words = ["yes", "no"] if detail.type == "yes_no" else [c.meaning for c in detail.choices]
                assert widget.options == ["not recorded", *words]
            assert widget.label.replace("\\", "") == detail.label + (f" ({detail.unit})" if detail.unit else "")
            assert (widget.help or "").replace("\\", "") == (detail.help or "")


def test_a_treatment_outcome_is_asked_for_each_option_inside_the_form() -> None:
    at = fresh()
    at.multiselect(key="presentations").set_value(["achalasia"]).run()
    outcome = at.selectbox(key="detail.achalasia.prior_treatments.pneumatic_dilation")
    assert outcome.label.replace("\\", "") == "Pneumatic dilation (graded 30 to 35 to 40 mm)"
    fill(at, "achalasia", 50, subtype="type_ii", diagnosis_confirmed=True, malignancy_excluded=True,
         **{"prior_treatments.pneumatic_dilation": "failed"})
    assert at.session_state["assessment_input"]["conditions"][0]["prior_treatments"] == [
        {"treatment": "pneumatic_dilation", "outcome": "failed"}]
    assert "previous Pneumatic dilation (graded 30 to 35 to 40 mm): failed" in text(at)  # the basis, in words


def test_full_path_from_input_to_the_plan_and_its_cards() -> None:
    at = type_iii(fresh())
    page = text(at)
    assert "Per-oral endoscopic myotomy (POEM) — Preferred" in page
    assert "Laparoscopic Heller myotomy with partial fundoplication (Dor or Toupet) — An alternative" in page
    assert "No red flag stands" in page
    assert headings(at)[:3] == ["The plan", "What would change the plan", "The options"]
    assert "Evidence: GRADE" in page  # ACG 2020 grades POEM in type III (strong, moderate)
    assert "Diagnosis confirmed: yes; Subtype: type III (spastic)" in page  # inputs used, in words
    assert "achalasia_type_iii_prefers_poem" in page  # the audit reference names the rule
    assert "not a diagnosis" in page  # disclaimer always shown


def test_a_stop_flag_comes_first_with_its_urgent_workup_and_no_pyloromyotomy() -> None:
    at = fill(fresh(), IHPS, 4, "weeks", bilious_vomiting=True, diagnosis_confirmed=True)
    answer = answer_text(at)
    flags = answer[answer.index("not recorded"):]  # after the inputs as entered
    assert flags.index("Stop: suggests malrotation or volvulus") < flags.index("Do first:") < flags.index("The plan\n")
    assert "urgent upper GI contrast study" in flags[: flags.index("Do first:")]  # with its stop flag
    assert 'class="mx-alert mx-stop"' in next(b.value for b in at.html if "Stop: suggests" in b.value)
    page = text(at)
    assert "Stopped: no treatment is suggested" in page
    assert "Ramstedt extramucosal pyloromyotomy —" not in page  # no card
    assert "withheld while this stands: suggests malrotation or volvulus" not in page  # its rule did not fire
    assert "Ramstedt extramucosal pyloromyotomy" in page  # named in the flag and in why not


def test_a_do_first_flag_puts_its_step_before_the_treatment_it_concerns() -> None:
    at = fill(fresh(), IHPS, 4, "weeks", electrolytes_corrected=False, diagnosis_confirmed=True)
    page = text(at)
    assert "Do first: pyloric stenosis before fluid and electrolyte correction" in page
    answer = answer_text(at)
    box = answer[answer.index("The plan\n"):answer.index("The options\n")]
    assert box.index("1. Check or correct first") < box.index("Fluid and electrolyte correction") < box.index(
        "Ramstedt extramucosal pyloromyotomy")
    assert "After: pyloric stenosis before fluid and electrolyte correction is addressed" in page


def test_a_detail_that_would_change_the_plan_is_asked_for_in_its_presentations_details_and_below_the_plan() -> None:
    at = fill(fresh(), "achalasia", 45, diagnosis_confirmed=True, malignancy_excluded=True)
    prompt = "Record Subtype: it decides between Per-oral endoscopic myotomy (POEM), Laparoscopic Heller myotomy"
    assert prompt in copied(at, "achalasia") and anchored_in(at, "achalasia", "detail.achalasia.subtype", "expander")
    answer = answer_text(at)
    assert "What would change the plan" in headings(at)
    assert prompt in answer[answer.index("What would change the plan"):]
    why_not = text(at)
    assert "Not met: Subtype is type III (spastic)." in why_not  # the unmet condition, in words


def test_validation_errors_are_named_in_their_presentations_details_not_as_a_traceback() -> None:
    at = fill(fresh(), "achalasia", 45, subtype="type_iii", diagnosis_confirmed=False)
    at.session_state["assessment_input"]["conditions"][0]["symptom_duration_months"] = 5000
    at.run()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.error]
    assert "Symptom duration (months): Input should be less than or equal to 1000" in copied(at, "achalasia")
    assert anchored_in(at, "achalasia", "detail.achalasia.symptom_duration_months", "expander")
    top = next(e for e in errors if e.startswith("**Not assessed:**"))
    assert "**Oesophageal achalasia · Symptom duration**: Input should be less than or equal to 1000" in top, top
    assert "3. The plan and its basis" not in text(at)


def test_an_out_of_range_value_is_refused_in_its_presentations_details_and_at_the_top_and_the_old_plan_goes() -> None:
    at = type_iii(fresh())
    assert "3. The plan and its basis" in text(at)
    at.number_input(key="detail.achalasia.symptom_duration_months").set_value(5000)  # no browser-side bound
    at.button(key="assess").click().run()
    assert not at.exception, at.exception
    assert at.session_state["assessment_input"]["conditions"][0]["symptom_duration_months"] == 5000  # kept as typed
    assert at.number_input(key="detail.achalasia.symptom_duration_months").value == 5000
    errors = [e.value.replace("\\", "") for e in at.error]
    assert "Symptom duration (months): Input should be less than or equal to 1000" in copied(at, "achalasia")
    assert anchored_in(at, "achalasia", "detail.achalasia.symptom_duration_months", "expander")
    assert any(e.startswith("**Not assessed:**") and "Symptom duration" in e for e in errors), errors
    assert "3. The plan and its basis" not in text(at)  # the previous plan is gone
    assert "Per-oral endoscopic myotomy (POEM) — Preferred" not in text(at)


def test_a_wrong_age_is_named_beside_the_age_and_at_the_top() -> None:
    at = fill(fresh(), IHPS, 5, "years")
    assert "is not a diagnosis at 5 years" in copied(at, "age") and anchored_in(at, "age", "age.value", "column")
    at = fill(fresh(), "achalasia", 500)
    errors = [e.value.replace("\\", "") for e in at.error]
    assert "age of 500 years is over 120 years" in copied(at, "age")
    assert any(e.startswith("**Not assessed:**") and "**Age**: " in e and "over 120 years" in e for e in errors), errors


def test_a_changed_presentation_list_is_flagged_above_the_plan_it_no_longer_matches() -> None:
    at = type_iii(fresh())
    at.multiselect(key="presentations").set_value(["achalasia", "chronic_anal_fissure"]).run()
    answer = answer_text(at)
    assert "presentations chosen above have changed" in answer.split("Assessed ")[0], answer  # above the plan
    assert "Per-oral endoscopic myotomy (POEM) — Preferred" in answer  # the plan stays, with its inputs
    assert "Oesophageal achalasia — Subtype: type III (spastic)" in answer


def test_the_page_lists_the_inputs_as_entered_with_time_and_knowledge_base() -> None:
    from rules import default_context

    kb, _ = default_context()
    at = type_iii(fresh())
    page = text(at)
    assert "Assessed 20" in page and f"content hash {kb.content_hash}" in page
    assert "Patient — Age: 45 years" in page
    assert "Not recorded: Fitness for anaesthesia and surgery" in page  # blanks in words, never dropped
    assert "| Oesophageal achalasia | Takes opioids | not recorded |" in text(at)  # the table, folded


def test_teaching_mode_hides_then_reveals_the_answer() -> None:
    at = fresh()
    at.toggle(key="hide_answer").set_value(True).run()
    at.selectbox(key="teaching_case").set_value("achalasia_type_iii_poem_preferred").run()
    assert at.multiselect(key="presentations").value == ["achalasia"]
    assert at.selectbox(key="detail.achalasia.subtype").value == "type_iii"
    at.button(key="assess").click().run()
    page = text(at)
    assert "The answer is hidden" in page  # the inputs as entered show (option names among them), not the plan
    assert "— Preferred" not in page and "The plan\n" not in page and "The options" not in headings(at)
    assert not any("Record " in c.value for c in at.caption)  # no prompt gives the answer away
    at.button(key="reveal").click().run()
    assert "Per-oral endoscopic myotomy (POEM) — Preferred" in text(at)


def test_a_cleared_flag_is_shown_with_what_cleared_it_after_the_cards() -> None:
    from rules import default_context

    at = fresh()
    at.selectbox(key="teaching_case").set_value("achalasia_type_iii_on_opioids").run()
    at.button(key="assess").click().run()
    shown = headings(at)
    assert shown.index("The options") < shown.index("Cleared flags")
    cleared = answer_text(at).split("Cleared flags\n")[1]
    flag = default_context()[0].flags["possible_pseudoachalasia"]
    assert f"- {flag.meaning} (was: stop) — cleared: {flag.cleared_meaning}\n" in cleared
    assert f'<span class="mx-green">cleared: {html.escape(flag.cleared_meaning)}</span>' in next(
        b.value for b in at.html if "Cleared flags" in b.value)


def test_two_presentations_each_name_their_own_steps() -> None:
    at = fresh()
    at.multiselect(key="presentations").set_value(["achalasia", "chronic_anal_fissure"]).run()
    at.number_input(key="age.value").set_value(45)
    at.selectbox(key="detail.achalasia.subtype").set_value("type_iii")
    at.button(key="assess").click().run()
    assert not at.exception, at.exception
    page = text(at)
    assert "(Oesophageal achalasia)" in page and "(Chronic anal fissure)" in page


def test_every_teaching_case_fills_the_form_with_its_own_input() -> None:
    """state_from_case and input_from_state are inverses for every case: the form can show any case."""
    from models.loader import load_cases
    from rules import default_context
    from webapp import form

    kb, _ = default_context()
    for _, case in load_cases(kb):
        rebuilt = form.input_from_state(kb, form.state_from_case(kb, case.input))
        expected = json.loads(json.dumps(case.input))
        if "age" in expected:
            expected["age"] = {"value": float(expected["age"]["value"]), "unit": expected["age"].get("unit", "years")}
        assert rebuilt == expected, case.id


def _follow(at: AppTest, label: str) -> Any:
    """Follow the answer's link named `label` through the app's routes (webapp/files.py), as the browser would."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from webapp import files

    found = re.search(rf'<a href="([^"]+)"[^>]*>{re.escape(label)}</a>', "".join(b.value for b in at.html))
    assert found, f"no link {label!r} in the answer"
    return TestClient(Starlette(routes=files.ROUTES)).get("/" + html.unescape(found.group(1)))


def test_exports_hold_the_plan_with_its_inputs_time_and_knowledge_base() -> None:
    """Both exports are links the app answers (webapp/files.py): the plan the page showed, with the inputs
    as entered, the time and the knowledge base. tests/test_browser.py downloads both in a real browser."""
    at = type_iii(fresh())
    assert not at.get("download_button")  # links, not Streamlit elements
    answer = _follow(at, "Download plan (JSON)")
    assert answer.status_code == 200, answer.text
    name = re.search(r'filename="([^"]+)"', answer.headers["content-disposition"]).group(1)
    assert re.fullmatch(r"myotomy-achalasia-\d{4}-\d\d-\d\dT\d{4}\.json", name), name
    exported = answer.json()
    plan = exported["plan"]
    assert plan["options"][0]["id"] == "poem" and plan["options"][0]["strength"] == "preferred"
    assert {"diagnosis_confirmed": True, "subtype": "type_iii"}.items() <= plan["options"][0]["basis"]["inputs_used"].items()
    assert exported["knowledge_base"]["version"] and len(exported["knowledge_base"]["content_hash"]) == 64
    assert exported["assessed_at"] == at.session_state["assessed_at"].isoformat(timespec="seconds")  # the page's time
    assert exported["input"] == at.session_state["assessment_input"]
    assert {"presentation": "Oesophageal achalasia", "detail": "Subtype", "value": "type III (spastic)"} in exported["inputs_as_entered"]
    answer = _follow(at, "Download report (Markdown)")
    name = re.search(r'filename="([^"]+)"', answer.headers["content-disposition"]).group(1)
    assert re.fullmatch(r"myotomy-achalasia-\d{4}-\d\d-\d\dT\d{4}\.md", name), name
    report = answer.text
    assert "Per-oral endoscopic myotomy (POEM)" in report and "not a diagnosis" in report
    assert "## Inputs as entered" in report and "| Oesophageal achalasia | Subtype | type III (spastic) |" in report


def test_a_download_link_is_refused_in_words_when_it_cannot_give_the_plan_shown() -> None:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from webapp import files

    at = type_iii(fresh())
    client = TestClient(Starlette(routes=files.ROUTES))
    link = re.search(r'<a href="([^"]+)"[^>]*>Download plan \(JSON\)</a>', "".join(b.value for b in at.html)).group(1)
    link = html.unescape(link)
    changed = client.get("/" + re.sub(r"kb=[0-9a-f]+", "kb=000000000000", link))
    assert changed.status_code == 409 and "knowledge base has changed" in changed.text  # never another plan
    broken = client.get("/" + link.replace("p=achalasia", "p=no_such_thing"))
    assert broken.status_code == 400 and "not a presentation" in broken.text
    assert client.get("/" + link.split("?")[0]).status_code in (400, 409)  # no input: refused, no traceback


def test_one_builder_for_the_page_and_both_exports() -> None:
    from datetime import datetime, timedelta, timezone

    from rules import default_context
    from webapp import export

    kb, _ = default_context()
    raw = {"age": {"value": 45, "unit": "years"},
           "conditions": [{"presentation": "achalasia", "subtype": "type_iii"}, {"presentation": "strabismus"}]}
    at = datetime(2026, 12, 1, 10, 12, tzinfo=timezone(timedelta(hours=1)))
    assert export.file_name(raw, at, "md") == "myotomy-achalasia+strabismus-2026-12-01T1012.md"
    assert export.assessed_at_text(at) == "2026-12-01 10:12 (UTC+01:00)"
    rows = export.inputs_as_entered(kb, raw)
    report = export.markdown_report(kb, raw, at, "# Title\nbody")
    document = json.loads(export.json_report(kb, raw, at, {}))
    assert [tuple(r.values()) for r in document["inputs_as_entered"]] == [(r.presentation, r.detail, r.value) for r in rows]
    assert all(f"| {r.presentation} | {r.detail} | {r.value} |" in report for r in rows)
    care = next(r for r in rows if r.presentation.startswith("Strabismus") and r.detail == "First-line non-surgical care")
    assert care.value == "not recorded"  # a blank is never 'not tried'


@pytest.mark.parametrize("payload", ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>", ":red[styled]"])
def test_markup_in_text_is_escaped(payload: str) -> None:
    from webapp.text import esc

    escaped = esc(payload)
    assert "<" not in escaped.replace("\\<", "") and ">" not in escaped.replace("\\>", "")
    assert ":red[" not in escaped


def test_a_failing_rule_shows_an_error_card_not_a_shorter_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    from rules import RuleExecutionError
    from rules.engine import Engine

    def fail(self, presentation, facts):
        raise RuleExecutionError("rule achalasia_type_iii_prefers_poem failed: injected")

    monkeypatch.setattr(Engine, "fire", fail)
    at = type_iii(fresh())
    errors = " ".join(e.value for e in at.error)
    assert "a rule failed" in errors and "No partial result is shown" in errors
    assert "The options" not in headings(at)


def test_a_broken_knowledge_base_shows_its_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    import streamlit as st

    import models.loader as loader
    from rules.planner import default_context

    data = tmp_path / "data"
    shutil.copytree(loader.DATA_DIR, data)
    (data / "presentations" / "achalasia" / "rules.yaml").write_text("rules:\n  - id: [unclosed\n", encoding="utf-8")
    monkeypatch.setattr(loader, "DATA_DIR", data)
    default_context.cache_clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert not at.exception
        message = " ".join(e.value for e in at.error).replace("\\", "")
        assert "could not be loaded" in message and "presentations/achalasia/rules.yaml" in message
        assert "invalid YAML" in message
    finally:
        default_context.cache_clear()
        st.cache_resource.clear()


# --- the form in the URL ---------------------------------------------------------------------------

def _plan_text(at: AppTest) -> list[tuple[str, str]]:
    """The results without the time of assessment (two assessments a minute apart are the same plan)."""
    return [(kind, value) for kind, value in results(at) if not value.startswith("Assessed ")]


def test_a_link_opens_the_same_plan_assessed_on_load() -> None:
    at = fresh()
    at.multiselect(key="presentations").set_value(["achalasia", "strabismus"]).run()
    at.number_input(key="age.value").set_value(7)
    for name, value in {"detail.achalasia.subtype": "type_iii", "detail.achalasia.diagnosis_confirmed": True,
                        "detail.achalasia.prior_treatments.pneumatic_dilation": "failed",
                        "detail.strabismus.amblyopia": "treated", "detail.strabismus.conservative_care": "failed"}.items():
        at.selectbox(key=name).set_value(value)
    at.number_input(key="detail.achalasia.symptom_duration_months").set_value(14.5)
    at.button(key="assess").click().run()
    assert not at.exception
    link = dict(at.query_params)
    assert link == {"p": ["achalasia", "strabismus"], "age": "7", "achalasia.subtype": "type_iii",
                    "achalasia.diagnosis_confirmed": "yes", "achalasia.symptom_duration_months": "14.5",
                    "achalasia.prior_treatments.pneumatic_dilation": "failed", "strabismus.amblyopia": "treated",
                    "strabismus.conservative_care": "failed"}

    opened = AppTest.from_file(APP, default_timeout=60)
    opened.query_params.update(link)
    opened.run()  # assessed on load, no click
    assert not opened.exception, opened.exception
    assert "The options" in headings(opened)
    assert _plan_text(opened) == _plan_text(at)
    assert opened.multiselect(key="presentations").value == ["achalasia", "strabismus"]
    assert opened.selectbox(key="detail.achalasia.prior_treatments.pneumatic_dilation").value == "failed"
    assert opened.number_input(key="detail.achalasia.symptom_duration_months").value == 14.5
    assert dict(opened.query_params) == link  # opening a link leaves it as it was


def test_every_teaching_case_round_trips_through_the_url_to_the_same_plan() -> None:
    from models.loader import load_cases
    from rules import assess, default_context
    from webapp import state

    kb, _ = default_context()
    for _, case in load_cases(kb):
        raw, problems = state.from_query(kb, state.read(state.to_query(kb, case.input)))
        assert not problems, (case.id, problems)
        assert assess(raw).model_dump() == assess(case.input).model_dump(), case.id
        assert state.same_input(kb, raw, case.input), case.id


def test_an_unreadable_link_says_what_it_could_not_read_and_assesses_nothing() -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"p": ["achalasia", "appendicitis"], "age": "forty", "achalasia.subtype": "type_ix",
                            "achalasia.opioid_use": "yes", "achalasia.colour": "red", "strabismus.amblyopia": "none",
                            "achalasia.prior_treatments.poem": "maybe", "achalasia.rapid_weight_loss": "perhaps",
                            "utm_source": "mail"})
    at.run()
    assert not at.exception, at.exception
    warning = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "This link could not be read in full, so nothing was assessed" in warning
    for expected in ("p=appendicitis: not a presentation", "age=forty: not a number",
                     "achalasia.subtype=type_ix: not one of type_i, type_ii, type_iii",
                     "achalasia.colour=red: not a detail of Oesophageal achalasia",
                     "strabismus.amblyopia=none: Strabismus", "achalasia.prior_treatments.poem=maybe: the outcome is one of",
                     "achalasia.rapid_weight_loss=perhaps: not yes or no", "utm_source=mail: not a parameter of this form"):
        assert expected in warning, expected
    assert "3. The plan and its basis" not in text(at)
    assert at.multiselect(key="presentations").value == ["achalasia"]  # what could be read is filled in
    assert at.selectbox(key="detail.achalasia.opioid_use").value is True
    assert at.selectbox(key="detail.achalasia.subtype").value == "not recorded"


def test_a_link_with_a_value_out_of_range_is_refused_like_the_form() -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"p": "achalasia", "age": "500"})
    at.run()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.error]
    assert "age of 500 years is over 120 years" in copied(at, "age") and any(e.startswith("**Not assessed:**") for e in errors)


def test_the_url_follows_each_assessment_and_clears_when_a_case_is_loaded() -> None:
    at = type_iii(fresh())
    assert at.query_params["achalasia.subtype"] == "type_iii"
    at.selectbox(key="detail.achalasia.subtype").set_value("type_ii")
    at.button(key="assess").click().run()
    assert at.query_params["achalasia.subtype"] == "type_ii"
    at.selectbox(key="teaching_case").set_value("achalasia_type_iii_poem_preferred").run()
    assert dict(at.query_params) == {}  # the form holds the case, not yet assessed: no link to a plan


# --- teaching mode ---------------------------------------------------------------------------------

def _sidebar_text(at: AppTest) -> str:
    """What the sidebar's teaching point says: the answer carries it, the browser copies it into the sidebar."""
    assert any('data-anchor="teaching-point"' in b.value for b in at.sidebar.html), "the sidebar has no place for the point"
    return copied(at, "teaching-point")


def test_next_and_previous_case_are_each_assessed_at_once() -> None:
    from models.loader import load_cases
    from rules import default_context

    kb, _ = default_context()
    by_id = {case.id: case for _, case in load_cases(kb)}
    ids = list(by_id)
    at = fresh()
    assert at.button(key="previous_case").disabled and not at.button(key="next_case").disabled
    for expected in ids[:3]:
        at.button(key="next_case").click().run()
        assert not at.exception, at.exception
        assert at.selectbox(key="teaching_case").value == expected
        assert at.session_state["assessment_input"] == by_id[expected].input  # assessed, no Assess click
        assert "3. The plan and its basis" in text(at)
        point = by_id[expected].teaching_point
        assert point in _sidebar_text(at)  # the sidebar and the page show the same point
        assert f"Teaching point ({by_id[expected].title}). {point}" in answer_text(at)
    at.button(key="previous_case").click().run()
    assert at.selectbox(key="teaching_case").value == ids[1]
    assert at.session_state["assessment_input"] == by_id[ids[1]].input
    at.selectbox(key="teaching_case").set_value(ids[-1]).run()
    assert at.button(key="next_case").disabled and not at.button(key="previous_case").disabled


def test_after_reveal_the_teaching_point_shows_and_the_sidebar_agrees() -> None:
    at = fresh()
    at.toggle(key="hide_answer").set_value(True).run()
    at.button(key="next_case").click().run()
    case = at.selectbox(key="teaching_case").value
    assert "The answer is hidden" in text(at) and "The options" not in headings(at)
    assert "Teaching point hidden with the answer." in _sidebar_text(at)
    assert "Teaching point" not in answer_text(at) and not any("Teaching point" in i.value for i in at.main.info)
    at.button(key="reveal").click().run()
    assert "The options" in headings(at)
    sidebar = _sidebar_text(at)
    assert "hidden" not in sidebar and "Teaching point." in sidebar
    shown = answer_text(at).split("Teaching point (")[1]
    point = sidebar.split("Teaching point. ")[1].split("\n")[0]
    assert len(point) > 20 and point in shown
    at.button(key="next_case").click().run()  # the next case hides its answer again, in both places
    assert at.selectbox(key="teaching_case").value != case
    assert "The answer is hidden" in text(at) and "Teaching point hidden with the answer." in _sidebar_text(at)


def test_the_sidebar_says_when_the_page_is_no_longer_the_case() -> None:
    at = fresh()
    at.selectbox(key="teaching_case").set_value("achalasia_type_iii_poem_preferred").run()
    assert "press Assess" in _sidebar_text(at)
    at.button(key="assess").click().run()
    assert "not this case as written" not in _sidebar_text(at)
    at.selectbox(key="detail.achalasia.subtype").set_value("type_i")
    at.button(key="assess").click().run()
    assert "not this case as written" in _sidebar_text(at)
    assert not any("Teaching point" in i.value for i in at.main.info)  # the page is not that case any more


def test_a_load_stays_pending_until_a_run_has_drawn_the_form() -> None:
    """The race: a run that applied a case is interrupted by a request carrying the browser's old, empty form.
    The load is applied again at the start of the next run, so the stale values do not win."""
    from rules import default_context
    from webapp import state

    kb, _ = default_context()
    session: dict = {"presentations": [], "teaching_case": None}
    case_input = {"age": {"value": 45, "unit": "years"}, "conditions": [{"presentation": "achalasia", "subtype": "type_iii"}]}
    state.request_load(session, kb, case_input, assess=True, case="achalasia_type_iii_poem_preferred")
    assert state.apply_pending(session, now="t1")
    assert session["presentations"] == ["achalasia"] and session["assessment_input"] == case_input
    session.update({"presentations": [], "teaching_case": None, "detail.achalasia.subtype": "not recorded"})
    assert state.apply_pending(session, now="t2")
    assert session["presentations"] == ["achalasia"] and session["detail.achalasia.subtype"] == "type_iii"
    assert session["teaching_case"] == "achalasia_type_iii_poem_preferred"
    state.form_drawn(session)
    assert not state.apply_pending(session, now="t3")  # once drawn, the user's own edits are never overwritten


def test_a_blank_conservative_care_shows_as_not_recorded_never_as_not_tried() -> None:
    from rules import default_context

    label = default_context()[0].detail("cosmetic_face_neck_request", "conservative_care").label
    at = fill(fresh(), "cosmetic_face_neck_request", 42, cosmetic_goal="glabellar_frown_lines")
    page = text(at)
    assert "has been tried is not recorded" in page and "has not been tried" not in page
    assert label in page.split("Not recorded:")[1].split("\n")[0]
    folded = next(b.value for b in at.html if "Inputs as entered, as a table" in b.value)
    assert f"<td>{html.escape(label)}</td><td>not recorded</td>" in folded.split('<details class="mx-fold" data-key="inputs_table">')[1]
    at.selectbox(key="detail.cosmetic_face_neck_request.conservative_care").set_value("not_tried")
    at.button(key="assess").click().run()
    page = text(at)
    assert "has not been tried, or is still under way" in page and f"{label}: not tried" in page


# --- at a glance: the print view, links in the evidence ------------------------------------------------

def test_the_print_view_shows_the_whole_plan_expanded_without_sidebar_or_form() -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"p": "achalasia", "age": "45", "achalasia.subtype": "type_iii",
                            "achalasia.diagnosis_confirmed": "yes", "print": "1"})
    at.run()
    assert not at.exception, at.exception
    assert "The options" in headings(at)  # assessed on load
    assert not at.sidebar.selectbox and not at.sidebar.button  # no teaching mode
    assert "1. The patient" not in [h.value for h in at.header] and not at.selectbox and not at.number_input  # no form
    folds = [fold for b in at.html for fold in re.findall(r"<details[^>]*>", b.value)]
    assert len(folds) >= 5 and all(fold.endswith(" open>") for fold in folds), folds  # cards, why not, sources, ...
    assert not any("could not be read" in w.value for w in at.warning)  # print=1 is not a parameter of the form
    assert at.query_params["print"] == "1"


def test_the_page_links_to_its_print_view() -> None:
    at = type_iii(fresh())
    found = re.search(r'<a href="([^"]+)"[^>]*>Print view</a>', next(b.value for b in at.html if ">Print view<" in b.value))
    link = html.unescape(found.group(1))
    assert link.startswith("?") and "print=1" in link and "achalasia.subtype=type_iii" in link
    assert not any(" open>" in b.value for b in at.html)  # the interactive page keeps its sections folded


def test_web_addresses_in_the_evidence_are_clickable_and_shown_as_written() -> None:
    from webapp.text import h_links

    shown = h_links("MDCalc summary. https://www.mdcalc.com/guidelines/505/acg/diagnosis-management-achalasia ; <b>")
    url = "https://www.mdcalc.com/guidelines/505/acg/diagnosis-management-achalasia"
    assert f'<a href="{url}" target="_blank" rel="noopener noreferrer">{url}</a>' in shown  # unescaped, as written
    assert shown.startswith("MDCalc summary. <a") and shown.endswith(" ; &lt;b&gt;")  # text around it escaped as ever
    at = type_iii(fresh())
    citations = next(b.value for b in at.html if "<strong>Citations:</strong>" in b.value)
    assert '<a href="https://pmc.ncbi.nlm.nih.gov/' in citations and 'target="_blank"' in citations


def test_what_the_answer_carries_for_the_form_is_hidden_and_names_its_place_escaped() -> None:
    """webapp/mirror.py: a copy is hidden where the answer is drawn (the browser shows it at its anchor), its
    place is escaped like any text, and nothing to say gives no copy (the browser then empties the anchor)."""
    from webapp import mirror

    assert mirror.copy("achalasia", "<p>x</p>") == '<div hidden data-copy="achalasia"><p>x</p></div>'
    assert mirror.copy('a"><script>', "<p>x</p>").startswith('<div hidden data-copy="a&quot;&gt;&lt;script&gt;">')
    assert mirror.copy("age", "") == ""
