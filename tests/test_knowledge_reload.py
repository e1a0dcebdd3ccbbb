"""The app's knowledge reload (webapp/knowledge.py) and the source passages each plan keeps.

An edit to data/ is picked up on the next run, with the version and hash on screen changing with it;
an edit that does not load leaves the last good knowledge base in use and lists every problem with
file, line and rule id. Source passages: a passage about children never reaches an adult's plan (nor
the reverse), and each says which presentation it belongs to.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import models.loader as loader
from rules import assess
from rules.render import to_markdown
from webapp.knowledge import CHECK_EVERY, Knowledge, fingerprint

ROOT = Path(__file__).resolve().parent.parent
RULES = Path("presentations") / "achalasia" / "rules.yaml"
CHILDREN_QUOTE = "often performed on children"


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(loader.DATA_DIR, copy)
    return copy


def _bump_version(data: Path, version: str) -> None:
    manifest = data / "knowledge_base.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(re.sub(r"(?m)^version: .*$", f"version: {version}", text, count=1), encoding="utf-8")


def _break_a_rule(data: Path) -> int:
    """Name an option achalasia lacks in one rule; the line of the edit (1-based)."""
    path = data / RULES
    lines = path.read_text(encoding="utf-8").split("\n")
    at = lines.index("    - option: poem")
    lines[at] = "    - option: poemm"
    path.write_text("\n".join(lines), encoding="utf-8")
    return at + 1


def test_an_edit_is_loaded_and_a_broken_one_keeps_the_last_good(data: Path) -> None:
    held = Knowledge(root=data, check_every=0)
    held.refresh()
    first = held.kb
    assert held.refresh() is False and held.kb is first  # nothing changed: nothing loaded

    _bump_version(data, "0.2.1-edited")
    assert held.refresh() is True
    assert held.kb.version == "0.2.1-edited" and held.kb.content_hash != first.content_hash
    good = held.kb

    line = _break_a_rule(data)
    assert held.refresh() is False
    assert held.kb is good, "the last good knowledge base stays in use"
    assert held.problems, "the problems of the edit are kept to show"
    problem = held.problems[0]
    assert problem.file.endswith(str(RULES)) and problem.line == line
    assert "rule achalasia_" in problem.where and "poemm" in problem.reason
    assess({"conditions": [{"presentation": "achalasia"}]}, context=held.context)  # still assesses

    fixed = (data / RULES).read_text(encoding="utf-8").replace("option: poemm", "option: poem")
    (data / RULES).write_text(fixed, encoding="utf-8")
    held.refresh()
    assert not held.problems and held.kb.version == "0.2.1-edited"


def test_the_fingerprint_changes_with_a_saved_edit(data: Path) -> None:
    before = fingerprint(data)
    _bump_version(data, "0.2.2")
    assert fingerprint(data) != before


def _captions(at: AppTest) -> list[str]:
    return [c.value.replace("\\", "") for c in at.caption]  # Markdown escapes removed


def test_the_app_shows_the_new_hash_and_the_problems_of_a_broken_edit(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    monkeypatch.setattr(loader, "DATA_DIR", data)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "page.py"), default_timeout=60).run()
        assert not at.exception
        old_hash = loader.load(data).content_hash[:12]
        assert any(old_hash in c for c in _captions(at))

        _bump_version(data, "0.2.9")
        time.sleep(CHECK_EVERY + 0.1)  # data/ is looked at once a second at most
        at.run()
        new_hash = loader.load(data).content_hash[:12]
        assert any("0.2.9" in c and new_hash in c for c in _captions(at))

        _break_a_rule(data)
        at.button(key="reload_knowledge_button").click().run()
        assert not at.exception
        message = " ".join(e.value for e in at.error).replace("\\", "")
        assert "not in use" in message and "rules.yaml" in message and "line" in message
        assert "rule achalasia_" in message and "poemm" in message
        assert any("0.2.9" in c for c in _captions(at)), "the last good version stays on screen"
    finally:
        st.cache_resource.clear()


def _plan(age: dict | None, *pids: str):
    raw = {"conditions": [{"presentation": p} for p in pids]}
    if age is not None:
        raw["age"] = age
    return assess(raw)


def test_a_passage_about_children_is_kept_from_an_adult_and_shown_for_a_child() -> None:
    adult = _plan({"value": 58, "unit": "years"}, "achalasia")
    child = _plan({"value": 4, "unit": "weeks"}, "infantile_hypertrophic_pyloric_stenosis")
    unknown = _plan(None, "achalasia")
    assert not any(CHILDREN_QUOTE in c.quote for c in adult.source_caveats)
    assert CHILDREN_QUOTE not in to_markdown(adult)
    assert any(CHILDREN_QUOTE in c.quote and c.patients == "children" for c in child.source_caveats)
    assert any(CHILDREN_QUOTE in c.quote for c in unknown.source_caveats), "no age given: shown, marked"
    assert "about children" in to_markdown(child)


def test_each_passage_says_which_presentation_it_belongs_to() -> None:
    plan = _plan({"value": 50, "unit": "years"}, "achalasia", "strabismus")
    own = {c.id: c.presentations for c in plan.source_caveats}
    assert own["achalasia_sphincter_dissected"] == ("achalasia",)
    assert own["strabismus_tense_muscles"] == ("strabismus",)
    assert own["complications_rare"] == ()  # general: about myotomy, not one presentation
    text = to_markdown(plan)
    assert "For Oesophageal achalasia." in text and "About myotomy in general" in text
