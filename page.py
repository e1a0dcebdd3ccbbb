"""Myotomy decision support: describe a patient, see the plan and its basis.

Reads top to bottom like the user's task. The app holds no clinical logic: it builds the input from
the details each presentation declares, calls rules.assess() and renders the Plan. The knowledge
base and the engine are built once per process; the engine's own lock makes concurrent browser
sessions safe. The answer is a keyed fragment that Assess reruns alone (the form and the sidebar are not
drawn again); it also carries, for the browser to copy into places the form keeps under the age and at
the top of each presentation's details, the check's messages and the plan's "record this" prompts, and the
sidebar's teaching point (webapp/mirror.py). The answer itself is a few HTML blocks (webapp/results.py).
Nothing entered is lost: age and details are one form read on Assess, a refused value is named with
its field and at the top of the results, and the URL carries the form so a link opens the same plan.
?print=1 is the print view: the same plan with every section expanded, without sidebar or form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import streamlit as st
from streamlit import config as st_config  # AppTest patches this module's get_option, not st.get_option

from models.plan import INTENDED_USER, KNOWN_LIMITS, Plan
from models.loader import KnowledgeBase
from rules import InputError, KnowledgeBaseError, RuleExecutionError, assess
from rules.render import to_markdown
from webapp import export, files, form, graph, layout, mirror, presenter, results, scroll, state, teaching, warm
from webapp.knowledge import Knowledge, knowledge_bar, problem_list
from webapp.text import esc, h as esc_html, link
from webapp.words import Words

st.set_page_config(page_title="Myotomy decision support", page_icon=":material/medical_services:", layout="wide")


@st.cache_resource(show_spinner="Loading the knowledge base…")
def knowledge() -> Knowledge:
    """One per process: the knowledge base in use, reloaded when data/ changes (webapp/knowledge.py); loaded as
    the server started when it was started with `streamlit run app.py` (webapp/warm.py)."""
    return warm.knowledge()


@st.cache_resource(max_entries=4)
def teaching_cases(_kb: KnowledgeBase, content_hash: str):
    return warm.teaching_cases(_kb)


# Assess runs again only the parts of the page its answer changes (see `submit`): two keyed fragments.
ANSWER_PART = "answer_part"
PROBLEMS_SHOWN = "knowledge_problems_shown"


presenting = presenter.requested(st.query_params)  # the presenter view has its own, larger heading
if not presenting:
    st.title("Myotomy decision support")
    st.caption(
        "Supports a clinician's decision: it sets out a plan with the basis of each step so that you can "
        "check it. It does not diagnose or order a procedure. Prototype, not validated for clinical use."
    )

try:
    held = knowledge()
    held.refresh(force=st.session_state.pop("reload_knowledge", False))
    kb, engine = held.context
    st.session_state[PROBLEMS_SHOWN] = held.problems
    cases = teaching_cases(kb, kb.content_hash)
except KnowledgeBaseError as error:
    st.error(f"The knowledge base could not be loaded, so no plan can be made.\n\n{problem_list(error.problems)}")
    st.stop()
if presenting:  # ?present=1: one teaching case in large type, no form
    presenter.show(kb, engine, cases)
    st.stop()

# --- A link opens the same plan: the URL is read once per session, before any widget exists ---
if "url_read" not in st.session_state:
    st.session_state["url_read"] = True
    params = state.read(st.query_params)
    # ?print=1: the whole answer expanded, without sidebar or form, for printing
    st.session_state["print_view"] = params.pop(state.PRINT, None) == ["1"]
    case_id, case_problems = teaching.linked_case(params, cases)  # "Leave presenter view" keeps its case
    if params:
        linked, problems = state.from_query(kb, params)
        problems += case_problems
        # fill in what could be read; with a problem, say what could not and assess nothing
        state.request_load(st.session_state, kb, linked, assess=not problems, case=case_id)
        if problems:
            st.session_state["url_problems"] = problems

# a teaching case, Next/Previous or a link fills the form: applied before any widget, until the form is drawn
state.apply_pending(st.session_state, datetime.now().astimezone())

print_view: bool = st.session_state.get("print_view", False)
knowledge_bar(kb, held.problems, button=not print_view)  # the version in use; the problems of an edit that failed
if not print_view:
    with st.sidebar:
        teaching.sidebar(kb, cases)  # the case list, Previous/Next, hide the answer, the teaching point's place
        st.divider()
        st.caption(f"Knowledge base {esc(kb.version)} · `{kb.content_hash[:12]}`")

if st.session_state.get("url_problems"):  # first thing on the page: the link is what the user just opened
    st.warning(
        "This link could not be read in full, so nothing was assessed. What could be read is filled in "
        "below; correct the rest and press Assess.\n\n"
        + "\n".join(f"- {esc(problem)}" for problem in st.session_state["url_problems"]),
        icon=":material/link_off:",
    )

# --- The plan of the last submitted input, worked out where it is drawn (memos make a second call cheap) ---
@dataclass
class Outcome:
    """What the last submitted input gave: a plan, or the refused values by place, or a rule's failure."""

    plan: Plan | None = None
    placed: dict[str, list[str]] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)
    failure: str | None = None


def outcome_of(raw: dict[str, Any] | None) -> Outcome:
    if raw is None:
        return Outcome()
    kb, engine = knowledge().context
    try:
        return Outcome(plan=assess(raw, context=(kb, engine)))
    except InputError as error:
        return Outcome(placed=form.errors_by_place(raw, error.errors, kb), refused=form.input_errors(kb, raw, error.errors))
    except RuleExecutionError as error:
        return Outcome(failure=str(error))


def current() -> tuple[KnowledgeBase, Any]:
    """The knowledge base for a part run on its own; the whole page runs again when it changed under it
    (a new version, or the problems of an edit, belong in the bar at the top)."""
    held = knowledge()
    if held.refresh() or held.problems != st.session_state.get(PROBLEMS_SHOWN):
        st.rerun()
    return held.context


def submit() -> None:
    """Assess what the form holds, and run again only the answer's part of the page: it also writes what
    the form shows with its fields (a refused value, a "record this" prompt) and the sidebar's teaching
    point. The form, the title, the knowledge bar and the sidebar are not sent to the browser again (the
    form's widgets were most of what the browser drew after Assess; see BENCHMARKS.md)."""
    whole_page = bool(st.session_state.pop("url_problems", None))  # the link's warning at the top goes
    st.session_state["scroll_to_results"] = True
    st.session_state["assessment_input"] = form.input_from_state(knowledge().context[0], st.session_state)
    st.session_state["assessed_at"] = datetime.now().astimezone()
    st.session_state[teaching.REVEALED] = False
    # AppTest builds its element tree from one run's messages only, so after a part ran alone it would see
    # only that part: under AppTest the whole page runs (tests/test_browser*.py cover the part in Chromium)
    st.rerun("app" if whole_page or st_config.get_option("global.appTest") else ANSWER_PART)


@st.fragment
def assess_button(disabled: bool) -> None:
    """The form's Assess button, in a fragment of its own: the press is then a run of this fragment (which
    `submit` turns into a run of the answer's part) instead of a run of the whole page, during which the
    browser greyed out and drew again every element of the page (about 10 ms of submit to cards in a same-run
    A/B, BENCHMARKS.md). The form's values are sent with the press all the same."""
    st.form_submit_button("Assess", type="primary", disabled=disabled, key="assess", on_click=submit)


def details_form(kb: KnowledgeBase, chosen: list[str]) -> list[str]:
    """Age and the details: one form, read when Assess is pressed. Returns the places the answer fills (by the
    keys of `form.errors_by_place`; webapp/mirror.py): under the age, and at the top of each presentation's details."""
    with st.form("details", border=False):
        left, _ = st.columns([3, 1])
        with left:
            form.age_widgets()
        st.header("2. Details")
        if not chosen:
            st.caption("Choose a presentation above to see the details that matter for it.")
        for pid in chosen:
            with st.expander(kb.presentations[pid].name, expanded=True):
                mirror.anchor(pid, before=f'<p class="mx-caption">{esc_html(kb.presentations[pid].summary)}</p>')
                plain = [d for d in kb.details[pid] if d.type != "treatments"]
                cols = st.columns(2)  # half the page wide: two details a row
                for index, detail in enumerate(plain):
                    with cols[index % 2]:
                        form.detail_widget(kb, pid, detail)
                for detail in (d for d in kb.details[pid] if d.type == "treatments"):
                    form.detail_widget(kb, pid, detail)
        assess_button(disabled=not chosen)
    return [form.AGE_PLACE, *chosen]


@st.fragment(key=ANSWER_PART)
def answer_part(places: list[str], print_view: bool) -> None:
    """The answer to the last submitted input, in its column. It also carries, for the browser to copy beside the
    form's fields, the refused values and the plan's "record this" prompts and, for the sidebar, the teaching
    point (webapp/mirror.py): written there by this part, Streamlit would draw the form and the sidebar again."""
    kb, _ = current()
    cases = teaching_cases(kb, kb.content_hash)
    words = Words(kb)
    raw: dict[str, Any] | None = st.session_state.get("assessment_input")
    outcome = outcome_of(raw)
    plan, hidden = outcome.plan, teaching.hidden()
    needs_at: dict[str, list] = {}
    for need in () if plan is None or hidden else plan.needs:
        needs_at.setdefault(need.presentation, []).append(need)
    copies = "".join(mirror.copy(place, form.marks(needs_at.get(place, ()), outcome.placed.get(place, ())))
                     for place in places)

    if st.session_state.get("url_written") != raw:  # the URL carries what is assessed, so a link opens it again
        st.query_params.from_dict({**(state.to_query(kb, raw) if raw else {}), **({state.PRINT: "1"} if print_view else {})})
        st.session_state["url_written"] = raw

    # the teaching point: in the sidebar, and on the page once the answer shows; both say the same
    case = teaching.current_case(cases)
    case_assessed = teaching.case_assessed(kb, case, raw, plan)
    if not print_view:
        copies += mirror.copy(mirror.SIDEBAR_POINT, teaching.sidebar_point(case, hidden, raw, case_assessed))

    if raw is None:
        st.html(results.block('<p class="mx-caption">The plan appears here when you press Assess: flags first, then the '
                              "plan in steps.</p>", copies))
        return  # nothing submitted yet

    if outcome.refused or (plan is None and outcome.failure is None):
        st.error(
            "**Not assessed:** these details cannot be used as entered, so no plan is shown. Correct them (see "
            "the messages in the form) and press Assess again.\n\n"
            + "\n".join(f"- **{esc(where)}**: {esc(message)}" for where, message in outcome.refused),
            icon=":material/error:",
        )
        if copies:
            st.html(copies)
        return

    if outcome.failure is not None:
        st.error(
            "The plan could not be made because a rule failed. No partial result is shown, "
            f"because a shorter plan could mislead.\n\n{esc(outcome.failure)}",
            icon=":material/error:",
        )
        if copies:
            st.html(copies)
        return
    assert plan is not None

    # --- 3. The plan: two HTML blocks (webapp/results.py); its picture and downloads are links (webapp/files.py) ---
    chosen = st.session_state.get(form.PRESENTATIONS_KEY, [])
    stale = not print_view and [c.get("presentation") for c in raw.get("conditions", [])] != chosen
    assessed_at: datetime = st.session_state.get("assessed_at") or datetime.now().astimezone()
    asked = "" if print_view else scroll.marker(st.session_state)  # bring the answer into view (webapp/scroll.py)
    head = results.block(
        copies, f'<h2 id="results"{asked}>3. The plan and its basis</h2>',
        results.alert("do_first", results.lines([
            "The presentations chosen above have changed since this plan was made: press Assess to assess them. "
            "The plan below is for the inputs listed with it."])) if stale else "",
        f'<p class="mx-caption">Assessed {esc_html(export.assessed_at_text(assessed_at))} · knowledge base '
        f"{esc_html(kb.version)} · content hash <code>{esc_html(kb.content_hash)}</code></p>",
        results.inputs(export.inputs_as_entered(kb, raw), expanded=print_view),
    )
    if hidden:
        st.html(head)
        teaching.reveal_prompt()
        return
    point = teaching.point_html(case) if case_assessed and case is not None else ""
    st.html(head + results.block(point, results.flags(plan, words), results.summary(plan, words)))  # one block: fewer to draw
    at = {"kb": kb, "raw": raw, "at": assessed_at}
    print_link = "?" + urlencode({**state.to_query(kb, raw), state.PRINT: "1"}, doseq=True)
    downloads = (f'<a href="{esc_html(files.link(files.REPORT, **at))}" download>Download report (Markdown)</a> · '
                 f'<a href="{esc_html(files.link(files.PLAN, **at))}" download>Download plan (JSON)</a>, each with the '
                 "inputs as entered")
    st.html(results.block(graph.section(plan, files.link(files.GRAPH, **at), expanded=print_view))
            + results.after_graph(plan, words, expanded=print_view) + results.block(
        f'<p class="mx-caption">{esc_html(plan.disclaimer)}<br>Intended user: {esc_html(INTENDED_USER)} '
        f"Known limits: {esc_html(KNOWN_LIMITS)}<br>Knowledge base {esc_html(plan.knowledge_base.version)} · "
        f"content hash <code>{esc_html(plan.knowledge_base.content_hash)}</code></p>",
        f"<h3>Export</h3><p>{downloads}.</p>",
        "" if print_view else f"<p>{link(print_link, 'Print view')}: the whole plan with every section expanded, "
        "without the form, in a new tab.</p>", '<span class="mx-end"></span>'))  # the answer's last part is drawn

results.style()  # the answer's style sheet, once per whole page (a run of the answer alone keeps it)
if print_view:
    st.info("Print view: the whole plan, every section expanded, without the form. Print it with your browser "
            "(Ctrl+P or ⌘P).", icon=":material/print:")
    answer = layout.print_page()
else:
    scroll.install()  # brings each new answer into view
    mirror.install()  # copies what the answer says beside the form and in the sidebar
    form_column, answer = layout.columns()  # side by side on a wide screen, stacked on a phone
    with form_column:
        # --- 1. The patient: the presentations drive which details show, so they sit outside the form ---
        st.header("1. The patient")
        st.multiselect(
            "Presentations",
            sorted(kb.presentations, key=lambda pid: kb.presentations[pid].name),
            format_func=lambda pid: kb.presentations[pid].name,
            key=form.PRESENTATIONS_KEY,
            placeholder="Choose one or more presentations",
        )
        # --- 2. Age and the details ---
        places = details_form(kb, st.session_state.get(form.PRESENTATIONS_KEY, []))
state.form_drawn(st.session_state)

with answer:  # the rest of the page is the answer, in its column
    answer_part([] if print_view else places, print_view)
