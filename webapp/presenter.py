"""The presenter view (?present=1&case=<id>): one teaching case at a time, in type a projector can carry.

A class reads the case's presentation in words, no form. The answer stays hidden until the presenter
reveals it; meanwhile the class exercise records what the class picks (counts, kept in this browser
session only). The reveal shows the flags first, then the plan box, the teaching point and how the
class's picks fared. Previous/Next move through the cases in the order of the sidebar's list.

The current case is kept in a plain session key, never in a widget's state: a widget's value sent by a
browser that has not yet drawn the last click could otherwise win (the race fixed in webapp.state), and
widgets that show a case carry its id in their key, so a stale value belongs to a widget no longer drawn.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from models.knowledge import TeachingCase
from models.loader import KnowledgeBase
from models.plan import Plan
from rules import RuleExecutionError, assess
from webapp import export, exercise, results, teaching
from webapp.text import esc
from webapp.words import Words

PRESENT, CASE = teaching.PRESENT, teaching.PRESENT_CASE
CURRENT = "present.case"
REVEALED = "present.revealed"  # the ids of the cases revealed in this session
VOTES = "present.votes"  # {case id: {choice key: count}}, saved at the reveal; session only

# Large type for a projector (a 1280x800 projector shows the case, the patient and the choices at once).
# A fixed style sheet: nothing from the page or the user goes into it.
_LARGE_TYPE = """<style>
[data-testid="stMain"] .block-container { max-width: 1240px; padding-top: 2rem; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li,
[data-testid="stMain"] .mx-answer p, [data-testid="stMain"] .mx-answer li { font-size: 1.55rem; line-height: 1.35; }
[data-testid="stMain"] .mx-answer h3 { font-size: 1.8rem; }
[data-testid="stMain"] h1 { font-size: 2.6rem; line-height: 1.15; }
[data-testid="stMain"] h2 { font-size: 2.1rem; }
[data-testid="stMain"] h3 { font-size: 1.8rem; }
[data-testid="stMain"] [data-testid="stWidgetLabel"] p { font-size: 1.3rem; }
[data-testid="stMain"] button p { font-size: 1.3rem; }
[data-testid="stMain"] input { font-size: 1.3rem; }
[data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1.15rem; }
</style>"""


def requested(query_params: Any) -> bool:
    """Whether the link asks for the presenter view (?present=1)."""
    return query_params.get(PRESENT) == "1"


def _start(cases: dict[str, TeachingCase], query_params: Any) -> None:
    """Once per session: the case the link names, else the first."""
    if CURRENT not in st.session_state:
        linked = query_params.get(CASE)
        st.session_state[CURRENT] = linked if linked in cases else next(iter(cases))


def _go(cases: dict[str, TeachingCase], offset: int) -> None:
    ids = list(cases)
    index = ids.index(st.session_state[CURRENT]) + offset
    st.session_state[CURRENT] = ids[max(0, min(index, len(ids) - 1))]


def _pick(key: str) -> None:
    st.session_state[CURRENT] = st.session_state[key]


def _reveal(cid: str, choices: list[str]) -> None:
    """Keep the class's counts (their widgets are not drawn after the reveal), then show the answer."""
    st.session_state.setdefault(VOTES, {})[cid] = {key: int(st.session_state.get(_vote_key(cid, key)) or 0) for key in choices}
    st.session_state.setdefault(REVEALED, set()).add(cid)


def _hide(cid: str) -> None:
    st.session_state.setdefault(REVEALED, set()).discard(cid)


def _vote_key(cid: str, choice: str) -> str:
    return f"vote.{cid}.{choice}"


def _navigation(kb: KnowledgeBase, cases: dict[str, TeachingCase], cid: str, where: str) -> None:
    """Previous, Next and the whole grouped list; `where` keeps the keys of the top and bottom rows apart."""
    ids = list(cases)
    position = ids.index(cid)
    back, forward, pick, leave = st.columns([1, 1, 2.6, 1.8], vertical_alignment="center")
    back.button("Previous", key=f"present_previous_{where}", icon=":material/arrow_back:", on_click=_go, args=(cases, -1),
                disabled=position == 0, width="stretch")
    forward.button("Next", key=f"present_next_{where}", icon=":material/arrow_forward:", on_click=_go, args=(cases, 1),
                   disabled=position == len(ids) - 1, width="stretch")
    if where == "top":
        key = f"present_pick.{cid}"  # a new widget per case: a stale choice from the browser cannot move the case back
        pick.selectbox("Case", ids, index=position, format_func=lambda i: teaching.label(kb, cases[i]), key=key,
                       on_change=_pick, args=(key,), label_visibility="collapsed")
        leave.link_button("Leave presenter view", "?" + teaching.form_link(kb, cases[cid]), icon=":material/close:",
                          width="stretch")


def _patient(kb: KnowledgeBase, case: TeachingCase) -> None:
    """The case's presentation in words, as the inputs table says it: what was recorded, then what was not."""
    lines = export.summary(export.inputs_as_entered(kb, case.input))
    st.markdown("\n\n".join(
        f"**{esc(line.presentation)}**"
        + (f"  \n{esc(' · '.join(line.recorded))}" if line.recorded else "")
        + (f"  \n:gray[Not recorded: {esc(', '.join(line.not_recorded))}]" if line.not_recorded else "")
        for line in lines
    ))


def _exercise(kb: KnowledgeBase, cid: str, case: TeachingCase) -> None:
    """Before the reveal: a count per option and per flag (a show of hands; one student counts one)."""
    saved = st.session_state.get(VOTES, {}).get(cid, {})
    options, flags = exercise.option_choices(kb, case.input), exercise.flag_choices(kb, case.input)
    st.subheader("Class exercise: what does the class expect?")
    st.caption("Count the hands for each pick (one student: 1). The counts stay in this browser tab and are "
               "not saved or sent anywhere.")
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Red flags expected**")
        for choice in flags:
            _count(cid, choice, saved)
    with right:
        st.markdown("**Preferred option(s)**")
        for choice in options:
            _count(cid, choice, saved)
    st.button("Reveal the answer", type="primary", key=f"present_reveal.{cid}", icon=":material/visibility:",
              on_click=_reveal, args=(cid, [c.key for c in (*flags, *options)]))


def _count(cid: str, choice: exercise.Choice, saved: dict[str, int]) -> None:
    """One pick: its name, and beside it the count (+ and - for a show of hands)."""
    name, count = st.columns([3, 1.4], vertical_alignment="center")
    name.markdown(esc(choice.name))
    count.number_input(choice.name, min_value=0, step=1, value=saved.get(choice.key, 0), key=_vote_key(cid, choice.key),
                       label_visibility="collapsed")


_MARK = {(True, True): ":green[**:material/check_circle: Right pick**]",
         (False, True): ":red[**:material/cancel: Not right**]",
         (True, False): ":orange[**:material/help: Missed**]"}


def _verdicts(title: str, verdicts: list[exercise.Verdict]) -> str:
    lines = [f"**{title}**"]
    for v in verdicts:
        picked = v.votes > 0
        who = f"picked by {v.votes}" if picked else "nobody picked it"
        lines.append(f"- {_MARK[(v.right, picked)]} **{esc(v.name)}** — the plan: {esc(v.says)} ({who}).  \n"
                     f"  :gray[{esc(v.why)}]")
    return "\n".join(lines)


def _picks(kb: KnowledgeBase, cid: str, case: TeachingCase, plan: Plan) -> None:
    """After the reveal: which picks were right, what was missed, and why, from the plan."""
    votes = st.session_state.get(VOTES, {}).get(cid, {})
    st.subheader("The class's picks")
    if not any(votes.values()):
        st.caption("No picks were counted for this case.")
    st.markdown(_verdicts("Red flags", exercise.score_flags(kb, plan, votes, case.input)) + "\n\n"
                + _verdicts("Options", exercise.score_options(kb, plan, votes, case.input)))


def show(kb: KnowledgeBase, engine: Any, cases: dict[str, TeachingCase]) -> None:
    """The whole presenter view; the caller stops the page after it."""
    _start(cases, st.query_params)
    cid = st.session_state[CURRENT]
    case = cases[cid]
    st.query_params.from_dict({PRESENT: "1", CASE: cid})  # a reload opens the same case
    st.html(_LARGE_TYPE)
    ids = list(cases)
    st.caption(f"Presenter view · {esc(teaching.group(kb, case))} · case {ids.index(cid) + 1} of {len(ids)} · "
               "a teaching prototype, not for clinical use")
    _navigation(kb, cases, cid, "top")
    st.title(esc(case.title), anchor=False)
    _patient(kb, case)
    revealed = cid in st.session_state.get(REVEALED, set())
    if not revealed:
        _exercise(kb, cid, case)
        return
    try:
        plan = assess(case.input, context=(kb, engine))
    except RuleExecutionError as error:
        st.error(f"The plan could not be made because a rule failed.\n\n{esc(error)}", icon=":material/error:")
        return
    words = Words(kb)
    results.style()
    st.html(results.block(results.flags(plan, words), results.summary(plan, words)))  # stop flags first
    st.info(f"**Teaching point.** {esc(case.teaching_point)}", icon=":material/school:")
    _picks(kb, cid, case, plan)
    st.button("Hide the answer again", key=f"present_hide.{cid}", icon=":material/visibility_off:", on_click=_hide, args=(cid,))
    _navigation(kb, cases, cid, "bottom")
