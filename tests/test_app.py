"""The Streamlit app through Streamlit's own AppTest: a full path, a validation error, teaching mode, exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def fresh() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def fill_type_iii(at: AppTest, **overrides: str) -> AppTest:
    at.multiselect(key="presentations").set_value(["achalasia"]).run()
    at.number_input(key="age.value").set_value(45)
    details = {"subtype": "type_iii", "diagnosis_confirmed": "yes", "malignancy_excluded": "yes", **overrides}
    for field, value in details.items():
        at.selectbox(key=f"detail.achalasia.{field}").set_value(value)
    at.button(key="FormSubmitter:details-Assess").click().run()
    assert not at.exception, at.exception
    return at


def text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [c.value for c in at.caption] + [i.value for i in at.info] + [s.value for s in at.success]
    return "\n".join(parts).replace("\\", "")


def test_full_path_from_input_to_cards() -> None:
    at = fill_type_iii(fresh())
    page = text(at)
    assert "Per-oral endoscopic myotomy (POEM)** — Preferred" in page
    assert "Laparoscopic Heller myotomy" in page and "Alternative" in page
    assert "achalasia_type_iii_prefers_poem" in page  # the basis names the rule
    assert "No red flags raised" in page
    assert [h.value for h in at.subheader][:1] == ["Candidate procedures"]
    assert "not diagnose" in page or "not a diagnosis" in page  # disclaimer always shown


def test_red_flags_come_before_the_cards() -> None:
    at = fill_type_iii(fresh(), malignancy_excluded="no", operative_risk="high")
    headers = [h.value for h in at.subheader]
    assert headers.index("Red flags") < headers.index("Candidate procedures")
    page = text(at)
    assert "malignancy not excluded" in page and "high operative risk" in page
    assert "Held back by red flags" in page


def test_validation_error_is_shown_beside_the_field_not_as_a_traceback() -> None:
    at = fresh()
    at.multiselect(key="presentations").set_value(["achalasia"]).run()
    at.number_input(key="age.value").set_value(45)
    at.selectbox(key="detail.achalasia.subtype").set_value("type_iii")
    at.selectbox(key="detail.achalasia.diagnosis_confirmed").set_value("no")
    # pydantic rejects a symptom duration over 1200 months; the message names the limit
    at.number_input(key="detail.achalasia.symptom_duration_months").set_value(1200)
    at.button(key="FormSubmitter:details-Assess").click().run()
    assert not at.exception
    at.session_state["assessment_input"]["conditions"][0]["symptom_duration_months"] = 5000
    at.run()
    errors = [e.value for e in at.error]
    assert any("less than or equal to 1200" in e for e in errors), errors
    assert any("beside the fields" in e for e in errors), errors


def test_teaching_mode_hides_then_reveals_the_answer() -> None:
    at = fresh()
    at.toggle(key="hide_answer").set_value(True).run()
    at.selectbox(key="teaching_case").set_value("achalasia_type_iii_poem_preferred").run()
    assert at.multiselect(key="presentations").value == ["achalasia"]
    assert at.selectbox(key="detail.achalasia.subtype").value == "type_iii"
    at.button(key="FormSubmitter:details-Assess").click().run()
    page = text(at)
    assert "The answer is hidden" in page and "POEM" not in page.split("The answer is hidden")[1]
    at.button[-1].click().run()  # "Reveal the answer"
    assert "Per-oral endoscopic myotomy (POEM)** — Preferred" in text(at)


def test_exports_hold_the_assessment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Capture what the download buttons serve, as Streamlit stores it, and read it back."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    served: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        served[mimetype] = path_or_data if isinstance(path_or_data, bytes) else str(path_or_data).encode()
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    at = fill_type_iii(fresh())
    assert len(at.get("download_button")) == 2
    report = served["text/markdown"].decode()
    assert "## Red flags" in report and "Per-oral endoscopic myotomy (POEM) — Preferred" in report
    assert "achalasia_type_iii_prefers_poem" in report and "not a diagnosis" in report
    exported = json.loads(served["application/json"])
    assert exported["suggestions"][0]["procedure"] == "poem"
    assert exported["suggestions"][0]["basis"]["inputs_used"] == {"diagnosis_confirmed": True, "subtype": "type_iii"}
    assert exported["knowledge_base"]["version"]


@pytest.mark.parametrize("payload", ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>"])
def test_markup_in_text_is_escaped(payload: str) -> None:
    from webapp.results import esc

    escaped = esc(payload)
    assert "<" not in escaped.replace("\\<", "") and ">" not in escaped.replace("\\>", "")


def test_a_failing_rule_shows_an_error_card_not_a_shorter_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from rules import RuleExecutionError
    from rules.engine import Engine

    def fail(self, presentation, facts):
        raise RuleExecutionError("rule achalasia_type_iii_prefers_poem failed: injected")

    monkeypatch.setattr(Engine, "fire", fail)
    at = fill_type_iii(fresh())
    errors = " ".join(e.value for e in at.error)
    assert "a rule failed" in errors and "No partial result is shown" in errors
    assert "Candidate procedures" not in [h.value for h in at.subheader]


def test_a_broken_knowledge_base_shows_its_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    import streamlit as st

    import rules.knowledge_base as knowledge_base
    from rules.assess import default_context

    data = tmp_path / "data"
    shutil.copytree(knowledge_base.DATA_DIR, data)
    (data / "rules" / "achalasia.yaml").write_text("rules:\n  - id: [unclosed\n", encoding="utf-8")
    monkeypatch.setattr(knowledge_base, "DATA_DIR", data)
    default_context.cache_clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert not at.exception
        message = " ".join(e.value for e in at.error).replace("\\", "")
        assert "could not be loaded" in message and "rules/achalasia.yaml" in message and "invalid YAML" in message
    finally:
        default_context.cache_clear()
        st.cache_resource.clear()
