"""Myotomy decision support: describe a patient, see the plan and its basis.

Reads top to bottom like the user's task. The app holds no clinical logic: it builds the input from
the details each presentation declares, calls rules.assess() and renders the Plan. The knowledge
base and the engine are built once per process; the engine's own lock makes concurrent browser
sessions safe. The plan of the last submitted input is computed before the form is drawn, so that
the form can show, beside each field, the check's message or the plan's "record this" prompt.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from models.loader import load_cases
from models.plan import INTENDED_USER, KNOWN_LIMITS, Need
from rules import InputError, KnowledgeBaseError, RuleExecutionError, assess, default_context
from rules.render import to_markdown
from webapp import form, graph, results
from webapp.text import esc
from webapp.words import Words

st.set_page_config(page_title="Myotomy decision support", page_icon=":material/medical_services:", layout="wide")


@st.cache_resource(show_spinner="Loading the knowledge base…")
def context():
    return default_context()


@st.cache_resource
def teaching_cases():
    kb, _ = context()
    return {case.id: case for _, case in load_cases(kb)}


st.title("Myotomy decision support")
st.caption(
    "Supports a clinician's decision: it sets out a plan with the basis of each step so that you can "
    "check it. It does not diagnose or order a procedure. Prototype, not validated for clinical use."
)

try:
    kb, engine = context()
    cases = teaching_cases()
except KnowledgeBaseError as error:
    st.error(f"The knowledge base could not be loaded, so no plan can be made.\n\n{esc(error)}")
    st.stop()
words = Words(kb)

# --- Teaching mode: a case fills the form; the answer can stay hidden until the class has guessed ---
with st.sidebar:
    st.header("Teaching mode")

    def load_case() -> None:
        chosen = st.session_state.get("teaching_case")
        if chosen and chosen in cases:
            st.session_state.update(form.state_from_case(kb, cases[chosen].input))
            st.session_state.pop("assessment_input", None)
            st.session_state["revealed"] = False

    st.selectbox(
        "Teaching case",
        [None, *cases],
        format_func=lambda cid: "— none —" if cid is None else cases[cid].title,
        key="teaching_case",
        on_change=load_case,
    )
    hide = st.toggle("Hide the answer", key="hide_answer", help="Let the class commit to a guess first.")
    if st.session_state.get("teaching_case"):
        st.info(esc(cases[st.session_state["teaching_case"]].teaching_point) if not hide else
                "Teaching point hidden with the answer.")
    st.divider()
    st.caption(f"Knowledge base {esc(kb.version)} · `{kb.content_hash[:12]}`")

# --- The plan of the last submitted input (drawn further down) ---
raw: dict[str, Any] | None = st.session_state.get("assessment_input")
plan = None
placed: dict[str, list[str]] = {}
failure: str | None = None
if raw is not None:
    try:
        plan = assess(raw, context=(kb, engine))
    except InputError as error:
        placed = form.errors_by_place(raw, error.errors, kb)
    except RuleExecutionError as error:
        failure = str(error)
hidden = bool(hide and not st.session_state.get("revealed"))


def submit() -> None:
    st.session_state["assessment_input"] = form.input_from_state(kb, st.session_state)
    st.session_state["revealed"] = False


@st.fragment
def patient_form(placed: dict[str, list[str]], needs: tuple[Need, ...]) -> None:
    """Sections 1 and 2; a change here reruns only this part, so the outcome of a treatment can be
    asked for as soon as the treatment is chosen. Assess reruns the whole page."""
    st.header("1. The patient")
    left, right = st.columns([1, 1])
    with left:
        st.multiselect(
            "Presentations",
            sorted(kb.presentations, key=lambda pid: kb.presentations[pid].name),
            format_func=lambda pid: kb.presentations[pid].name,
            key="presentations",
            placeholder="Choose one or more presentations",
        )
    with right:
        a1, a2 = st.columns([2, 1])
        a2.selectbox("Unit", form.AGE_UNITS, key="age.unit")
        with a1:
            st.number_input("Age", min_value=0.0, max_value=130.0, value=None, step=1.0, key="age.value",
                            placeholder=form.NOT_RECORDED, help="Infants: choose weeks or days.")
            for message in placed.get("age", []):
                st.error(esc(message), icon=":material/error:")

    chosen: list[str] = st.session_state.get("presentations", [])
    need_at = {(n.presentation, n.detail): n for n in needs}
    st.header("2. Details")
    if not chosen:
        st.caption("Choose a presentation above to see the details that matter for it.")
    for pid in chosen:
        with st.expander(kb.presentations[pid].name, expanded=True):
            st.caption(esc(kb.presentations[pid].summary))
            for message in placed.get(pid, []):
                st.error(esc(message), icon=":material/error:")
            plain = [d for d in kb.details[pid] if d.type != "treatments"]
            cols = st.columns(3)
            for index, detail in enumerate(plain):
                with cols[index % 3]:
                    form.detail_widget(kb, pid, detail, need=need_at.get((pid, detail.id)),
                                       errors=placed.get(form.key(pid, detail.id), ()))
            for detail in (d for d in kb.details[pid] if d.type == "treatments"):
                form.detail_widget(kb, pid, detail, errors=placed.get(form.key(pid, detail.id), ()))
    for message in placed.get("", []):
        st.error(esc(message), icon=":material/error:")
    if any(place for place in placed if place):
        st.error("Some details need attention: see the messages beside the fields above.")
    if st.button("Assess", type="primary", disabled=not chosen, key="assess", on_click=submit):
        st.rerun()


patient_form(placed, () if plan is None or hidden else plan.needs)

if raw is None or (plan is None and failure is None):
    st.stop()  # nothing submitted yet, or the input needs attention (shown in the form)

if failure is not None:
    st.error(
        "The plan could not be made because a rule failed. No partial result is shown, "
        f"because a shorter plan could mislead.\n\n{esc(failure)}",
        icon=":material/error:",
    )
    st.stop()

# --- 3. The plan ---
st.header("3. The plan and its basis")
if hidden:
    st.info("The answer is hidden. Commit to a guess, then reveal it.", icon=":material/visibility_off:")
    if st.button("Reveal the answer", type="primary", key="reveal"):
        st.session_state["revealed"] = True
        st.rerun()
    st.stop()

results.flags(plan, words)
results.summary(plan, words)
graph.show(plan)
results.needs(plan, words)
results.cards(plan, words)
results.cleared_flags(plan, words)
results.why_not(plan, words)
results.presentations(plan)
results.source_quotes(plan)

st.subheader("Export")
e1, e2 = st.columns(2)
# the report is written when the button is pressed, not on every run
e1.download_button("Download report (Markdown)", lambda: to_markdown(plan), file_name="plan.md",
                   mime="text/markdown", on_click="ignore")
e2.download_button("Download plan (JSON)", plan.model_dump_json(indent=2), file_name="plan.json",
                   mime="application/json", on_click="ignore")
st.caption(esc(plan.disclaimer))
st.caption(f"Intended user: {esc(INTENDED_USER)} Known limits: {esc(KNOWN_LIMITS)}")
st.caption(f"Knowledge base {esc(plan.knowledge_base.version)} · content hash `{plan.knowledge_base.content_hash}`")
