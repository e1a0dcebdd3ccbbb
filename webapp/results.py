"""Render a Plan in Streamlit, in the order a clinician acts on it.

Stop flags first, then do-first flags, then the plan in one box (steps, shared decision, not
indicated), then what would change it, then one card per option with its basis, then cleared flags,
why not, what the rules are for and the source passages. Text goes through st.markdown only after
escaping and no HTML is built, so nothing typed or carried in a teaching case can become markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import streamlit as st

from models.plan import Basis, Flag, Plan, PlanOption, PlanStep, Statement
from rules.render import caveat_scope, further_rules_words
from webapp.form import need_text
from webapp.text import cites, esc, esc_links, listing
from webapp.words import SEVERITY_WORDS, Words, strength

WHY_NOT_KEY, SOURCES_KEY, PURPOSE_KEY = "why_not_open", "sources_open", "purpose_open"
_UNCERTAIN = ":orange-badge[:material/help: uncertain]"
_VERDICT = {"contradicts": ":red[**Evidence contradicts this.**]", "qualifies": ":orange[**Evidence qualifies this.**]",
            "supports": ":green[**Evidence supports this.**]"}


@contextmanager
def folded(label: str, key: str, expanded: bool) -> Iterator[bool]:
    """A section folded by default whose contents are drawn only while it is open: the closed cards, "why
    not" and source passages were about two thirds of the text the browser laid out after each Assess
    (BENCHMARKS.md). Opening one reruns the answer's part of the page (on_change="rerun") to draw it."""
    with st.expander(label, expanded=expanded, key=key, on_change="rerun") as box:
        yield bool(box.open or expanded)


def _bullets(items: Iterable[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _many(plan: Plan) -> bool:
    return len(plan.presentations) > 1


def _where(plan: Plan, w: Words, pid: str) -> str:
    """' (Presentation name)' when several presentations share the page."""
    return f" ({esc(w.presentation(pid))})" if _many(plan) else ""


# --- flags -----------------------------------------------------------------------------------------

def _flag_markdown(plan: Plan, w: Words, flag: Flag) -> str:
    head = f"**{SEVERITY_WORDS[flag.severity]}: {esc(flag.meaning)}**{_where(plan, w, flag.presentation)}"
    parts = [head, esc(" ".join(flag.basis.statements))]
    if flag.workup:
        verb = "Urgently" if flag.severity == "stop" else "Check or correct first"
        parts.append(f"**{verb}:**\n" + _bullets(esc(t.meaning) for t in flag.workup))
    if flag.concerns:
        holds = "Withholds" if flag.severity == "stop" else "Comes before" if flag.severity == "do_first" else "Concerns"
        parts.append(f"{holds}: {esc(listing(w.option(o) for o in flag.concerns))}.")
    parts.append(cites(flag.basis.citations))
    return "\n\n".join(p for p in parts if p)


def flags(plan: Plan, w: Words) -> None:
    """Standing flags at the top: stop (error box), do first (warning), caution (note)."""
    standing = plan.standing_flags
    for flag in standing:
        box = {"stop": st.error, "do_first": st.warning, "caution": st.info}[flag.severity]
        icon = {"stop": ":material/dangerous:", "do_first": ":material/priority_high:", "caution": ":material/info:"}
        box(_flag_markdown(plan, w, flag), icon=icon[flag.severity])
    if not standing:
        st.success("No red flag stands for the details given.", icon=":material/check_circle:")


# --- the plan in one box ---------------------------------------------------------------------------

def _options_by_id(plan: Plan) -> dict[tuple[str, str], PlanOption]:
    return {(o.presentation, o.id): o for o in plan.options}


def _step_markdown(plan: Plan, w: Words, step: PlanStep, options: dict[tuple[str, str], PlanOption]) -> str:
    lines = [f"**{step.order}. {esc(step.title)}**{_where(plan, w, step.presentation)}"]
    if step.workup:
        lines.append(_bullets(esc(t.meaning) for t in step.workup))
    for oid in step.options:
        option = options.get((step.presentation, oid))
        name = esc(option.name if option else w.option(oid))
        lines.append(f"- **{name}** — {strength(option.strength) if option else ''}")
    return "\n".join(lines)


def summary(plan: Plan, w: Words) -> None:
    """'The plan': the steps in order, the shared decisions and what is not indicated, in one box."""
    options = _options_by_id(plan)
    with st.container(border=True):
        st.subheader("The plan", anchor="plan")
        if plan.stopped:
            st.markdown(":red[**Stopped:** no treatment is suggested until the stop flag above is addressed.]")
        parts = [_step_markdown(plan, w, step, options) for step in plan.steps]
        if not plan.steps:
            parts.append("No step is named by the rules for the details given.")
        for shared in plan.shared_decisions:
            names = " or ".join(esc(w.option(o)) for o in shared.options)
            parts.append(f"**Shared decision**{_where(plan, w, shared.presentation)}: {names}. "
                         f"What tips it: {esc('; '.join(shared.tips))}.")
        excluded = [o for o in plan.options if o.strength == "not_indicated"]
        if excluded:
            parts.append("**Not indicated:** " + esc(listing(o.name for o in excluded)) + ".")
        st.markdown("\n\n".join(parts))


def needs(plan: Plan, w: Words) -> None:
    """The details that would change the answer, each with the options it decides."""
    if not plan.needs:
        return
    st.subheader("What would change the plan")
    st.info(_bullets(esc(need_text(n)) + _where(plan, w, n.presentation) for n in plan.needs),
            icon=":material/edit_note:")


# --- option cards ----------------------------------------------------------------------------------

def _evidence(b: Basis) -> str:
    if not b.evidence:
        return "**Evidence:** not graded by the source."
    graded = []
    for e in b.evidence:
        parts = [p for p in (e.recommendation and f"{e.recommendation} recommendation",
                             e.certainty and f"{e.certainty} certainty") if p]
        graded.append(f"{e.system} ({e.source})" + (": " + ", ".join(parts) if parts else ""))
    return "**Evidence:** " + esc_links("; ".join(graded)) + "."


def _statements(title: str, items: tuple[Statement, ...]) -> str:
    return f"**{title}:**\n" + _bullets(
        f"{esc(s.text)} {cites(s.citations)}" + (f" {_UNCERTAIN}" if s.uncertain else "") for s in items
    )


def basis_markdown(w: Words, pid: str, b: Basis) -> str:
    lines = []
    if b.inputs_used:
        lines.append("**Inputs used:** " + esc("; ".join(w.finding(pid, k, v) for k, v in b.inputs_used.items())) + ".")
    if b.inputs_missing:
        lines.append("**Not recorded (could change the answer):** " + esc(listing(w.fact(pid, f) for f in b.inputs_missing)) + ".")
    lines.append("**Citations:**\n" + _bullets(
        f"{esc(c.key)}{f' ({c.year})' if c.year else ''}{f' · grade {c.grade}' if c.grade else ''}: {esc_links(c.label)}"
        for c in b.citations
    ))
    if b.rule_ids:
        lines.append("**Rules (for audit):** " + ", ".join(f"`{r}` v{b.rule_versions[r]}" for r in b.rule_ids))
    else:  # declared knowledge (a presentation's usual ages), not a rule
        lines.append("**Declared in the knowledge base, not a rule:** " + esc(" ".join(b.statements)))
    return "\n\n".join(lines)


def _uncertain(option: PlanOption) -> bool:
    return option.basis.uncertain or any(s.uncertain for s in (*option.risks, *option.caveats))


def card_key(option: PlanOption) -> str:
    """The key of a card's folded section: it stays open for the same option after the next Assess."""
    return f"card_open.{option.presentation}.{option.id}"


def card(plan: Plan, w: Words, option: PlanOption, expanded: bool = False) -> None:
    with st.container(border=True):
        head = [f"**{esc(option.name)}** — {strength(option.strength)}" + (f" {_UNCERTAIN}" if _uncertain(option) else "")]
        if _many(plan):
            head.append(f"For {esc(w.presentation(option.presentation))}")
        if option.target_muscle:
            head.append(f"**Target:** {esc(option.target_muscle)}")
        if option.approaches:
            head.append(f"**Approaches:** {esc(', '.join(option.approaches))}")
        if option.after:
            head.append(f":orange[**After:** {esc(listing(w.flag(f) for f in option.after))} is addressed]")
        if option.capped_by:
            head.append(f":orange[**Not top-ranked while:** {esc(listing(w.flag(f) for f in option.capped_by))}]")
        head.append(_evidence(option.basis))
        st.markdown("  \n".join(head))
        with folded("Why, risks, caveats and basis", card_key(option), expanded) as shown:
            if not shown:
                return
            parts = ["**Why:** " + esc(option.reason)]
            if option.risks:
                parts.append(_statements("Risks", option.risks))
            if option.caveats:
                parts.append(_statements("Caveats", option.caveats))
            parts += ["---", basis_markdown(w, option.presentation, option.basis)]
            st.markdown("\n\n".join(parts))


def cards(plan: Plan, w: Words, expanded: bool = False) -> None:
    shown = [o for o in plan.options if o.strength != "not_indicated"]
    st.subheader("The options")
    if not shown:
        st.info("No option is offered for the details given: see the flags and steps above, and why not below.")
    for option in shown:
        card(plan, w, option, expanded)


# --- after the cards -------------------------------------------------------------------------------

def cleared_flags(plan: Plan, w: Words) -> None:
    cleared = [f for f in plan.flags if f.status == "cleared"]
    if not cleared:
        return
    st.subheader("Cleared flags")
    st.markdown(_bullets(
        f"{esc(f.meaning)}{_where(plan, w, f.presentation)} (was: {esc(SEVERITY_WORDS[f.severity].lower())}) — "
        f":green[cleared: {esc(f.cleared_by or 'by the recorded details')}]"
        for f in cleared
    ))


def why_not(plan: Plan, w: Words, expanded: bool = False) -> None:
    """Options not indicated (with the rule that says so) and options not in the plan (with what is unmet)."""
    excluded = [o for o in plan.options if o.strength == "not_indicated"]
    if not excluded and not plan.why_not:
        return
    with folded(f"Why not the other options? ({len(excluded) + len(plan.why_not)})", WHY_NOT_KEY, expanded) as shown:
        if shown:  # written only while open, as the other folded sections
            st.markdown("\n\n".join(_why_not_blocks(plan, w, excluded)))


def _why_not_blocks(plan: Plan, w: Words, excluded: list[PlanOption]) -> list[str]:
    blocks = []
    for option in excluded:
        blocks.append(f"**{esc(option.name)}**{_where(plan, w, option.presentation)} — not indicated: {esc(option.reason)}")
    for item in plan.why_not:
        lines = [f"**{esc(item.name)}**{_where(plan, w, item.presentation)}"]
        if item.withheld_by:
            lines.append(f"- :red[withheld while this stands: {esc(listing(w.flag(f) for f in item.withheld_by))}]")
        for rule in item.rules:
            unmet = "; ".join(w.unmet(item.presentation, rule.rule_id, u) for u in rule.unmet)
            lines.append(f"- {esc(rule.statement)} Not met: {esc(unmet)}.")
        if item.further_rules:
            lines.append(f"- {further_rules_words(item, '')}.")
        if not item.withheld_by and not item.rules:
            lines.append("- no rule offers it for these details")
        blocks.append("\n".join(lines))
    return blocks


def presentations(plan: Plan, expanded: bool = False) -> None:
    with folded("What these rules are for, and what they are not for", PURPOSE_KEY, expanded) as shown:
        if shown:
            st.markdown("\n\n".join(
                f"**{esc(p.name)}**\n- Purpose: {esc(p.purpose)}\n- Intended use: {esc(p.intended_use)}\n- Not for: {esc(p.misuse)}"
                for p in plan.presentations
            ))


def source_quotes(plan: Plan, expanded: bool = False) -> None:
    """The passages the planner kept for this patient, each saying which presentation it belongs to."""
    if not plan.source_caveats:
        return
    names = {p.id: p.name for p in plan.presentations}
    blocks = []
    for c in plan.source_caveats:
        block = f"**{esc(caveat_scope(c, names))}**\n\n> {esc(c.quote)}\n>\n> — *{esc(c.source)}*"
        if c.audit:
            block += f"\n\n{_VERDICT[c.audit.verdict]} {esc(c.audit.note)} {cites(c.audit_citations)}"
        blocks.append(block)
    with folded(f"From the source documents ({len(plan.source_caveats)} passages, with what the evidence says)",
                 SOURCES_KEY, expanded) as shown:
        if shown:
            st.markdown("\n\n".join(blocks))
