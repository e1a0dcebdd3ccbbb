"""Render an Assessment in Streamlit: red flags first, one card per procedure, the decision path.

Text goes through st.markdown only after escaping, and no HTML is ever built, so nothing typed
into the form or carried in a teaching case can become markup.
"""

from __future__ import annotations

import re

import streamlit as st

from models.assessment import Assessment, Basis, CitationRef, Suggestion
from rules.render import STRENGTH_LABEL

_ICON = {"info": ":material/info:", "warning": ":material/warning:", "critical": ":material/error:"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def esc(text: object) -> str:
    """Escape Markdown (and with it any HTML) so text is shown as typed."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def _cites(refs: tuple[CitationRef, ...]) -> str:
    return ", ".join(f"[{esc(r.key)}]({r.url})" if r.url else esc(f"[{r.key}]") for r in refs)


def _value(value: object) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def basis(b: Basis) -> None:
    st.markdown("**Rules:** " + ", ".join(f"`{r}` v{b.rule_versions[r]}" for r in b.rule_ids))
    if b.inputs_used:
        st.markdown("**Inputs used:** " + esc(", ".join(f"{k} = {_value(v)}" for k, v in b.inputs_used.items())))
    if b.inputs_missing:
        st.markdown("**Not recorded (could change the answer):** " + esc(", ".join(b.inputs_missing)))
    for c in b.citations:
        year = f" ({c.year})" if c.year else ""
        grade = f" · grade {c.grade}" if c.grade else ""
        st.caption(f"{esc(c.key)}{year}{grade}: {esc(c.label)}")


def red_flags(a: Assessment) -> None:
    if not a.red_flags:
        st.success("No red flags raised by the rules for the details given.", icon=":material/check_circle:")
        return
    st.subheader("Red flags")
    for flag in a.red_flags:
        with st.container(border=True):
            st.error(f"**{esc(flag.id.replace('_', ' '))}**: {esc(flag.meaning)}", icon=_ICON["critical"])
            st.markdown(esc(" ".join(flag.basis.statements)))
            if flag.concerns:
                st.caption("Holds back: " + esc(", ".join(flag.concerns)))


def card(s: Suggestion) -> None:
    with st.container(border=True):
        st.markdown(f"{_ICON[s.indicator]} **{esc(s.name)}** — {STRENGTH_LABEL[s.strength]}")
        st.caption(esc(s.summary))
        facts = []
        if s.target_muscle:
            facts.append(f"**Target:** {esc(s.target_muscle)}")
        if s.approaches:
            facts.append(f"**Approaches:** {esc(', '.join(s.approaches))}")
        if facts:
            st.markdown("  \n".join(facts))
        if s.held_back_by:
            st.warning("Held back by red flags: " + esc(", ".join(s.held_back_by)))
        with st.expander("Why, work-up, risks and caveats"):
            st.markdown("**Why:** " + esc(s.reason))
            if s.workup_first:
                st.markdown("**Work-up first:**\n" + "\n".join(f"- {esc(w.meaning)}" for w in s.workup_first))
            if s.risks:
                st.markdown("**Risks:**\n" + "\n".join(f"- {esc(r.text)} {_cites(r.citations)}" for r in s.risks))
            if s.caveats:
                st.markdown("**Caveats:**\n" + "\n".join(f"- {esc(c.text)} {_cites(c.citations)}" for c in s.caveats))
            st.divider()
            basis(s.basis)


def why_not(a: Assessment) -> None:
    if not a.why_not:
        return
    with st.expander(f"Why not the other procedures? ({len(a.why_not)})"):
        for w in a.why_not:
            st.markdown(f"**{esc(w.name)}** ({esc(w.presentation)})")
            if not w.rules:
                st.markdown("- no rule suggests it for this presentation")
            for r in w.rules:
                st.markdown(f"- `{r.rule_id}`: not met — {esc('; '.join(r.unmet))}")


def first_line(a: Assessment) -> None:
    st.subheader("First-line and non-myotomy options")
    if not a.first_line:
        st.caption("None named by the rules for these details.")
    for f in a.first_line:
        st.markdown(f"- {esc(f.name)} ({esc(f.presentation)}) {_cites(f.citations)}")


def source_quotes(a: Assessment) -> None:
    with st.expander(f"From the source documents ({len(a.source_caveats)} passages, with what the evidence says)"):
        for c in a.source_caveats:
            st.markdown(f"> {esc(c.quote)}\n\n— *{esc(c.source)}*")
            if c.audit:
                box = st.error if c.audit.verdict == "contradicts" else st.info
                box(f"Evidence {c.audit.verdict} this: {esc(c.audit.note)} {_cites(c.audit_citations)}")


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def decision_graph(a: Assessment) -> str:
    """Graphviz DOT: inputs → rules that fired → red flags and suggestions (ids from the knowledge base)."""
    lines = ["digraph G {", "rankdir=LR;", 'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    nodes: dict[str, str] = {}

    def node(name: str, text: str, colour: str) -> str:
        if name not in nodes:
            nodes[name] = f'"{_dot_text(name)}" [label="{_dot_text(text)}", fillcolor="{colour}"];'
        return f'"{_dot_text(name)}"'

    edges: set[str] = set()
    records = [(s.basis, node(f"s:{s.presentation}:{s.procedure}", f"{s.name}\n{STRENGTH_LABEL[s.strength]}",
                               "#d7f0d7" if s.strength in ("preferred", "alternative") else "#fde7c8")) for s in a.suggestions]
    records += [(f.basis, node(f"f:{f.presentation}:{f.id}", f"RED FLAG\n{f.id}", "#f8c9c9")) for f in a.red_flags]
    for b, target in records:
        for rule in b.rule_ids:
            r = node(f"r:{rule}", rule.replace("_", " "), "#e3e8f8")
            edges.add(f"{r} -> {target};")
            for field, value in b.inputs_used.items():
                i = node(f"i:{field}={value}", f"{field} = {_value(value)}", "#f2f2f2")
                edges.add(f"{i} -> {r};")
    lines += list(nodes.values()) + sorted(edges) + ["}"]
    return "\n".join(lines)
