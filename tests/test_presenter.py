"""The presenter view (?present=1) through AppTest, and the class exercise's scoring on its own.

The browser tests (test_browser.py) show the same in Chromium; these are fast and cover the rules of the
exercise: the choices come from the knowledge base, "right" is what the plan says, picks stay in the session.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from models.loader import load_cases
from rules import assess, default_context
from webapp import exercise

APP = str(Path(__file__).resolve().parent.parent / "page.py")  # the page; app.py serves it through st.App
BILIOUS = "pyloric_stenosis_bilious_vomiting_still_alkalotic"
POEM_CASE = "achalasia_type_iii_poem_preferred"


def _cases() -> dict:
    return {case.id: case for _, case in load_cases()}


def _presenter(case_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"present": "1", "case": case_id})
    return at.run()


def _main(at: AppTest) -> str:
    return "\n".join(m.value for m in at.main.markdown).replace("\\", "")


def test_the_presenter_view_shows_the_case_in_words_and_hides_the_answer_until_revealed() -> None:
    case = _cases()[POEM_CASE]
    at = _presenter(POEM_CASE)
    assert not at.exception, at.exception
    assert [t.value.replace("\\", "") for t in at.title] == [case.title]
    assert "Subtype: type III (spastic)" in _main(at)  # the presentation in words, no ids
    assert not at.multiselect and not at.sidebar.selectbox  # no form, no sidebar
    assert not at.error and not at.warning and not at.info and not at.success  # no flag, plan or teaching point
    at.button(key=f"present_reveal.{POEM_CASE}").click().run()
    answer = "\n".join(b.value for b in at.html if "mx-answer" in b.value)
    assert answer.index("No red flag stands") < answer.index('<h3 id="plan">The plan</h3>')  # the flags come first
    assert any(case.teaching_point in i.value.replace("\\", "") for i in at.info)
    at.button(key="present_next_top").click().run()
    ids = list(_cases())
    following = ids[ids.index(POEM_CASE) + 1]
    assert at.query_params["case"] == [following] or at.query_params["case"] == following
    assert not any("The plan" in b.value for b in at.html)  # hidden again


def test_the_counts_survive_the_reveal_and_stay_in_the_session() -> None:
    at = _presenter(POEM_CASE)
    at.number_input(key=f"vote.{POEM_CASE}.achalasia.poem").set_value(5)
    at.number_input(key=f"vote.{POEM_CASE}.achalasia.pneumatic_dilation").set_value(2)
    at.button(key=f"present_reveal.{POEM_CASE}").click().run()
    page = _main(at)
    assert "Per-oral endoscopic myotomy (POEM)** — the plan: Preferred (picked by 5)" in page
    assert "Pneumatic dilation (graded 30 to 35 to 40 mm)** — the plan: not in the plan (picked by 2)" in page
    assert set(at.query_params) == {"present", "case"}  # nothing of the picks in the link


def test_choices_come_from_the_knowledge_base_not_the_plan() -> None:
    kb, _ = default_context()
    case = _cases()[BILIOUS]
    options = [c.name for c in exercise.option_choices(kb, case.input)]
    flags = [c.name for c in exercise.flag_choices(kb, case.input)]
    assert "Ramstedt extramucosal pyloromyotomy" in options and options[-1] == exercise.NOTHING_YET_WORDS
    assert flags[0].startswith("Stop: ") and flags[-1] == exercise.NO_FLAG_WORDS  # gravest first
    # the same list for a case of the same presentation with another answer: the list gives nothing away
    other = _cases()["pyloric_stenosis_confirmed_corrected_pyloromyotomy"]
    assert flags == [c.name for c in exercise.flag_choices(kb, other.input)]


def test_right_wrong_and_missed_follow_the_plan() -> None:
    kb, _ = default_context()
    case = _cases()[BILIOUS]
    plan = assess(case.input)
    votes = {"bilious_vomiting": 4, "infantile_hypertrophic_pyloric_stenosis.pyloromyotomy": 9, exercise.NO_FLAG: 1}
    flags = {v.name: v for v in exercise.score_flags(kb, plan, votes, case.input)}
    options = {v.name: v for v in exercise.score_options(kb, plan, votes, case.input)}
    malrotation = next(v for n, v in flags.items() if "malrotation" in n)
    assert malrotation.right and malrotation.votes == 4
    assert not flags[exercise.NO_FLAG_WORDS].right and flags[exercise.NO_FLAG_WORDS].votes == 1
    assert not options["Ramstedt extramucosal pyloromyotomy"].right
    correction = next(v for n, v in options.items() if n.startswith("Fluid and electrolyte correction"))
    assert correction.right and correction.votes == 0  # missed: right, nobody picked it
    assert options[exercise.NOTHING_YET_WORDS].right  # the stop flag stops treatment
    assert all(v.why for v in (*flags.values(), *options.values()))
