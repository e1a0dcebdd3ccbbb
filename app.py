"""Myotomy decision support: describe a patient, see the candidate procedures and their basis.

Reads top to bottom like the user's task. The app holds no clinical logic: it builds the input,
calls rules.assess() and renders the Assessment. The knowledge base and the engine are built once
per process; the engine's own lock makes concurrent browser sessions safe.
"""

from __future__ import annotations

import json

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from rules import InputError, KnowledgeBaseError, RuleExecutionError, assess, default_context
from rules.knowledge_base import load_cases
from rules.render import to_markdown
from webapp import form, results

st.set_page_config(page_title="Myotomy decision support", page_icon=":material/medical_services:", layout="wide")


@st.cache_resource(show_spinner="Loading the knowledge base…")
def context():
    return default_context()


@st.cache_resource
def teaching_cases():
    return {case.id: case for _, case in load_cases()}


st.title("Myotomy decision support")
st.caption(
    "Supports a clinician's decision: it lists candidate procedures with their basis so that you can "
    "check each one. It does not diagnose or order a procedure. Prototype, not validated for clinical use."
)

try:
    kb, engine = context()
    cases = teaching_cases()
except KnowledgeBaseError as error:
    st.error(f"The knowledge base could not be loaded, so no assessment can be made.\n\n{results.esc(error)}")
    st.stop()

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
        st.info(results.esc(cases[st.session_state["teaching_case"]].teaching_point) if not hide else
                "Teaching point hidden with the answer.")
    st.divider()
    st.caption(f"Knowledge base {kb.version} · `{kb.content_hash[:12]}`")

# --- 1. The patient ---
st.header("1. The patient")
left, right = st.columns([1, 1])
with left:
    st.multiselect(
        "Presentations",
        sorted(kb.presentations),
        format_func=lambda pid: kb.presentations[pid].name,
        key="presentations",
        placeholder="Choose one or more presentations",
    )
with right:
    a1, a2 = st.columns([2, 1])
    a1.number_input("Age", min_value=0.0, max_value=130.0, value=None, step=1.0, key="age.value",
                    placeholder="not recorded", help="Infants: choose weeks or days.")
    a2.selectbox("Unit", form.AGE_UNITS, key="age.unit")

chosen: list[str] = st.session_state.get("presentations", [])

# --- 2. The details that matter for each chosen presentation (a form: nothing reruns until submit) ---
errors_at: dict[str, DeltaGenerator] = {}
with st.form("details"):
    st.header("2. Details")
    if not chosen:
        st.caption("Choose a presentation above to see the details that matter for it.")
    for pid in chosen:
        pdef = kb.presentations[pid]
        with st.expander(pdef.name, expanded=True):
            st.caption(results.esc(pdef.summary))
            cols = st.columns(3)
            for index, field in enumerate(f for f in pdef.details if f != "prior_treatments"):
                with cols[index % 3]:
                    form.detail_widget(kb, pid, field)
                    errors_at[f"{pid}.{field}"] = st.empty()
            if "prior_treatments" in pdef.details:
                form.prior_treatment_widgets(kb, pid)
    submitted = st.form_submit_button("Assess", type="primary", disabled=not chosen)

general_errors = st.empty()

if submitted:
    age = st.session_state.get("age.value")
    st.session_state["assessment_input"] = {
        **({"age": {"value": age, "unit": st.session_state.get("age.unit", "years")}} if age is not None else {}),
        "conditions": [form.condition_from_state(kb, pid, st.session_state) for pid in chosen],
    }
    st.session_state["revealed"] = False

raw = st.session_state.get("assessment_input")
if raw is None:
    st.stop()

# --- 3. The assessment ---
try:
    assessment = assess(raw, context=(kb, engine))
except InputError as error:
    shown_beside = False
    for loc, message in error.errors:
        parts = loc.split(".")
        if len(parts) >= 3 and parts[0] == "conditions" and parts[1].isdigit() and int(parts[1]) < len(raw["conditions"]):
            pid = raw["conditions"][int(parts[1])]["presentation"]
            slot = errors_at.get(f"{pid}.{parts[2]}")
            if slot is not None:
                slot.error(results.esc(message))
                shown_beside = True
                continue
        general_errors.error(f"{results.esc(loc or 'input')}: {results.esc(message)}")
    if shown_beside:
        general_errors.error("Some details need attention: see the messages beside the fields above.")
    st.stop()
except RuleExecutionError as error:
    st.error(
        "The assessment could not be completed because a rule failed. No partial result is shown, "
        f"because a shorter list of suggestions could mislead.\n\n{results.esc(error)}",
        icon=":material/error:",
    )
    st.stop()

st.header("3. Assessment")
if hide and not st.session_state.get("revealed"):
    st.info("The answer is hidden. Commit to a guess, then reveal it.", icon=":material/visibility_off:")
    if st.button("Reveal the answer", type="primary"):
        st.session_state["revealed"] = True
        st.rerun()
    st.stop()

results.red_flags(assessment)

st.subheader("Candidate procedures")
if not assessment.suggestions:
    st.info("No procedure is suggested for the details given. See the red flags, the work-up and the options below.")
for suggestion in assessment.suggestions:
    results.card(suggestion)
results.why_not(assessment)

if assessment.workup:
    st.subheader("Work-up before any procedure")
    st.markdown("\n".join(f"- {results.esc(w.meaning)}" for w in assessment.workup))

results.first_line(assessment)

st.subheader("Decision path")
results.show_graph(results.decision_graph(assessment))

results.source_quotes(assessment)

st.subheader("Export")
e1, e2 = st.columns(2)
e1.download_button("Download report (Markdown)", to_markdown(assessment), file_name="assessment.md", mime="text/markdown")
e2.download_button(
    "Download assessment (JSON)",
    json.dumps(assessment.model_dump(mode="json"), indent=2),
    file_name="assessment.json",
    mime="application/json",
)
st.caption(results.esc(assessment.disclaimer))
st.caption(f"Knowledge base {assessment.knowledge_base.version} · content hash `{assessment.knowledge_base.content_hash}`")
