"""Teaching mode: a teaching case fills the form, and the answer can stay hidden until the class has guessed.

The sidebar holds the case list, Previous/Next (each assessed at once, so a class never waits on a
form) and the "Hide the answer" switch. The teaching point is shown in the sidebar and, once the answer
shows, on the page; both are filled from the same case after the page knows what is assessed, so that
they cannot disagree. Loading goes through `state.request_load`, which survives an interrupted run
(the filter/click/Esc race). Nothing here is clinical: the plan comes from rules.assess like any other.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import streamlit as st

from models.knowledge import TeachingCase
from models.loader import KnowledgeBase
from models.plan import Plan
from webapp import mirror, results, state
from webapp.text import esc, h

PRESENT = "present"  # ?present=1&case=<id>: the presenter view (webapp.presenter)
PRESENT_CASE = "case"
HIDE = "hide_answer"
REVEALED = "revealed"
# The class exercise (the class's picks counted before the reveal, then scored) lives in the presenter view, where
# the form cannot give the answer away; the teaching view says so where a teacher looks for it.
EXERCISE_WHERE = ("**Class exercise:** open the Presenter view. There the class's picks (options and red flags) "
                  "are counted before the reveal, and the reveal says which were right and why.")


# The teaching case list opens wide enough for whole titles: Streamlit's list is as wide as the narrow
# sidebar field, and its rows (a virtual list of fixed height) cannot wrap, so titles were cut. Found by the
# list's own label, with :has() on the list's direct child only (cheap: a popover of one list). Fixed text.
_WIDE_CASE_LIST = """<style>
[data-testid="stSelectboxVirtualDropdown"]:has(> [role="listbox"][aria-label="Teaching case"]) {
  width: min(calc(100vw - 2.5rem), 72rem) !important;
}
[data-testid="stSelectboxVirtualDropdown"] > [role="listbox"][aria-label="Teaching case"] [role="presentation"] {
  width: 100% !important;
}
</style>"""


def load_case(kb: KnowledgeBase, cases: dict[str, TeachingCase]) -> None:
    """The case picked in the list fills the form, not assessed: the class can read the details first."""
    chosen = st.session_state.get(state.CASE_KEY)
    if chosen in cases:
        state.request_load(st.session_state, kb, cases[chosen].input, assess=False, case=chosen)


def step_case(kb: KnowledgeBase, cases: dict[str, TeachingCase], offset: int) -> None:
    """Next or previous teaching case, assessed at once (one click per case in front of a class)."""
    ids = list(cases)
    current = st.session_state.get(state.CASE_KEY)
    index = ids.index(current) + offset if current in ids else 0
    target = ids[max(0, min(index, len(ids) - 1))]
    state.request_load(st.session_state, kb, cases[target].input, assess=True, case=target)


def group(kb: KnowledgeBase, case: TeachingCase) -> str:
    """The presentation a case teaches, in words: the list is grouped by it."""
    pids = [str(c.get("presentation")) for c in case.input.get("conditions") or []]
    return " + ".join(kb.presentations[p].name if p in kb.presentations else p for p in pids) or "Other"


def label(kb: KnowledgeBase, case: TeachingCase) -> str:
    """'Presentation — full title': a case named with its group, for lists that show one line each."""
    return f"{group(kb, case)} — {case.title}"


def groups(kb: KnowledgeBase, cases: dict[str, TeachingCase]) -> dict[str, list[str]]:
    """Case ids by presentation name, in the order of the case list (so Next walks a group through)."""
    found: dict[str, list[str]] = {}
    for cid, case in cases.items():
        found.setdefault(group(kb, case), []).append(cid)
    return found


def form_link(kb: KnowledgeBase, case: TeachingCase) -> str:
    """The query string that opens the form with the case assessed and chosen in the sidebar's list (a link
    carries the form, webapp.state; `case` names the teaching case)."""
    return urlencode({**state.to_query(kb, case.input), PRESENT_CASE: case.id}, doseq=True)


def linked_case(params: dict[str, list[str]], cases: dict[str, TeachingCase]) -> tuple[str | None, list[str]]:
    """The teaching case a link names (`case=<id>`, taken out of `params`), and the problem in words if unknown."""
    given = [v for v in params.pop(PRESENT_CASE, []) if v]
    if not given:
        return None, []
    if len(given) > 1 or given[0] not in cases:
        return None, [f"{PRESENT_CASE}={', '.join(given)}: not one teaching case of this knowledge base"]
    return given[0], []


def _choose(kb: KnowledgeBase, cases: dict[str, TeachingCase], cid: str) -> None:
    """A case picked in the grouped list fills the form like a pick in the sidebar's list."""
    state.request_load(st.session_state, kb, cases[cid].input, assess=False, case=cid)


@st.dialog("All teaching cases", width="large")
def case_list(kb: KnowledgeBase, cases: dict[str, TeachingCase]) -> None:
    """Every case with its full title, grouped by presentation in words; the current case's group is open."""
    current = st.session_state.get(state.CASE_KEY)
    st.caption("Pick a case to fill the form with it; press Assess when the class has read it.")
    for name, ids in groups(kb, cases).items():
        with st.expander(f"{name} ({len(ids)})", expanded=current in ids):
            picked = st.radio(name, ids, index=ids.index(current) if current in ids else None, key=f"case_list.{name}",
                              format_func=lambda cid: cases[cid].title, label_visibility="collapsed")
            if picked is not None and picked != current:
                _choose(kb, cases, picked)
                st.rerun()  # closes the list and draws the form with the case


def sidebar(kb: KnowledgeBase, cases: dict[str, TeachingCase]) -> None:
    """The teaching controls; call inside `with st.sidebar`. Last, the teaching point's place, which the
    answer fills (`sidebar_point`, copied there by webapp/mirror.py)."""
    ids = list(cases)
    st.html(_WIDE_CASE_LIST)
    st.header("Teaching mode")
    st.selectbox(
        "Teaching case",
        [None, *cases],
        format_func=lambda cid: "— none —" if cid is None else cases[cid].title,
        key=state.CASE_KEY,
        on_change=load_case,
        args=(kb, cases),
        placeholder="— none —",
    )
    current = st.session_state.get(state.CASE_KEY)
    position = ids.index(current) if current in cases else None
    back, forward = st.columns(2)
    back.button("Previous", key="previous_case", icon=":material/arrow_back:", on_click=step_case, args=(kb, cases, -1),
                disabled=not position, help="Load the previous teaching case and assess it.")
    forward.button("Next", key="next_case", icon=":material/arrow_forward:", on_click=step_case, args=(kb, cases, 1),
                   disabled=position == len(ids) - 1, help="Load the next teaching case and assess it.")
    case = cases.get(current or "")
    if case is not None:  # the group in words, and the full title the narrow list may cut
        mine = groups(kb, cases)[group(kb, case)]
        st.caption(f"**{esc(group(kb, case))}** · case {mine.index(case.id) + 1} of {len(mine)}  \n{esc(case.title)}")
    if st.button("All cases, grouped", key="all_cases", icon=":material/list:", width="stretch",
                 help="Every case with its full title, grouped by presentation."):
        case_list(kb, cases)
    st.link_button("Presenter view", "?" + urlencode({PRESENT: "1", **({PRESENT_CASE: case.id} if case else {})}),
                   icon=":material/co_present:", width="stretch",
                   help="Large type for a projector, the answer hidden until revealed, a class exercise. Opens a new tab.")
    st.caption(EXERCISE_WHERE)
    st.toggle("Hide the answer", key=HIDE, help="Let the class commit to a guess first.")
    mirror.anchor(mirror.SIDEBAR_POINT)


def hidden() -> bool:
    """The answer is hidden while the switch is on and the class has not revealed it (never in the print view,
    which has no switch). Read from the session, so the answer's part can tell when it runs on its own."""
    return bool(not st.session_state.get("print_view") and st.session_state.get(HIDE)
                and not st.session_state.get(REVEALED))


def current_case(cases: dict[str, TeachingCase]) -> TeachingCase | None:
    return cases.get(st.session_state.get(state.CASE_KEY) or "")


def case_assessed(kb: KnowledgeBase, case: TeachingCase | None, raw: dict[str, Any] | None, plan: Plan | None) -> bool:
    """Whether the plan on the page is the case as written (the form may have been changed before Assess)."""
    return case is not None and raw is not None and plan is not None and state.same_input(kb, raw, case.input)


def sidebar_point(case: TeachingCase | None, hidden_now: bool, raw: dict[str, Any] | None, assessed: bool) -> str:
    """The teaching point for the sidebar, hidden with the answer; says when the page is not the case (HTML,
    '' without a case)."""
    if case is None:
        return ""
    point = ("<p>Teaching point hidden with the answer.</p>" if hidden_now
             else f"<p><strong>Teaching point.</strong> {h(case.teaching_point)}</p>")
    status = ("The case is in the form: press Assess." if raw is None
              else "" if assessed else "The plan on the page is not this case as written: the form was changed before Assess.")
    return results.block(results.alert("note", point), f'<p class="mx-caption">{status}</p>' if status else "")


def reveal_prompt() -> None:
    """In place of the answer while it is hidden; the caller stops the page after it."""
    st.info("The answer is hidden. Commit to a guess, then reveal it.  \n" + EXERCISE_WHERE, icon=":material/visibility_off:")
    st.button("Reveal the answer", type="primary", key="reveal", on_click=lambda: st.session_state.update({REVEALED: True}))


def point_html(case: TeachingCase) -> str:
    """The teaching point above the plan, saying the same as the sidebar (HTML, drawn with the answer)."""
    return results.alert("note", f"<p><strong>Teaching point</strong> ({h(case.title)}). {h(case.teaching_point)}</p>")
