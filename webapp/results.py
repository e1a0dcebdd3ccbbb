"""Render an Assessment in Streamlit: red flags first, one card per procedure, the decision path.

Text goes through st.markdown only after escaping, and no HTML is ever built, so nothing typed
into the form or carried in a teaching case can become markup.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import streamlit as st

from models.assessment import Assessment, Basis, CitationRef, Suggestion
from rules.render import STRENGTH_LABEL, value_text

_ICON = {"info": ":material/info:", "warning": ":material/warning:", "critical": ":material/error:"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def esc(text: object) -> str:
    """Escape Markdown (and with it any HTML) so text is shown as typed."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def _cites(refs: tuple[CitationRef, ...]) -> str:
    return ", ".join(f"[{esc(r.key)}]({r.url})" if r.url else esc(f"[{r.key}]") for r in refs)


def basis_markdown(b: Basis) -> str:
    lines = ["**Rules:** " + ", ".join(f"`{r}` v{b.rule_versions[r]}" for r in b.rule_ids)]
    if b.inputs_used:
        lines.append("**Inputs used:** " + esc(", ".join(f"{k} = {value_text(v)}" for k, v in b.inputs_used.items())))
    if b.inputs_missing:
        lines.append("**Not recorded (could change the answer):** " + esc(", ".join(b.inputs_missing)))
    evidence = [
        f"- {esc(c.key)}{f' ({c.year})' if c.year else ''}{f' · grade {c.grade}' if c.grade else ''}: {esc(c.label)}"
        for c in b.citations
    ]
    return "\n\n".join([*lines, "**Evidence:**\n" + "\n".join(evidence)])


def red_flags(a: Assessment) -> None:
    if not a.red_flags:
        st.success("No red flags raised by the rules for the details given.", icon=":material/check_circle:")
        return
    st.subheader("Red flags")
    for flag in a.red_flags:
        holds = f"\n\nHolds back: {esc(', '.join(flag.concerns))}" if flag.concerns else ""
        st.error(
            f"**{esc(flag.id.replace('_', ' '))}**: {esc(flag.meaning)}\n\n{esc(' '.join(flag.basis.statements))}{holds}",
            icon=_ICON["critical"],
        )


def _details_markdown(s: Suggestion) -> str:
    """Everything behind a card's "why" in one Markdown block: one element renders faster than many."""
    parts = ["**Why:** " + esc(s.reason)]
    if s.workup_first:
        parts.append("**Work-up first:**\n" + "\n".join(f"- {esc(w.meaning)}" for w in s.workup_first))
    if s.risks:
        parts.append("**Risks:**\n" + "\n".join(f"- {esc(r.text)} {_cites(r.citations)}" for r in s.risks))
    if s.caveats:
        parts.append("**Caveats:**\n" + "\n".join(f"- {esc(c.text)} {_cites(c.citations)}" for c in s.caveats))
    parts += ["---", basis_markdown(s.basis)]
    return "\n\n".join(parts)


def card(s: Suggestion) -> None:
    with st.container(border=True):
        head = [f"{_ICON[s.indicator]} **{esc(s.name)}** — {STRENGTH_LABEL[s.strength]}", esc(s.summary)]
        if s.target_muscle:
            head.append(f"**Target:** {esc(s.target_muscle)}")
        if s.approaches:
            head.append(f"**Approaches:** {esc(', '.join(s.approaches))}")
        if s.held_back_by:
            head.append(f":orange[**Held back by red flags:** {esc(', '.join(s.held_back_by))}]")
        st.markdown("  \n".join(head))
        with st.expander("Why, work-up, risks and caveats"):
            st.markdown(_details_markdown(s))


def why_not(a: Assessment) -> None:
    if not a.why_not:
        return
    lines = []
    for w in a.why_not:
        lines.append(f"**{esc(w.name)}** ({esc(w.presentation)})")
        if not w.rules:
            lines.append("- no rule suggests it for this presentation")
        lines += [f"- `{r.rule_id}`: not met — {esc('; '.join(r.unmet))}" for r in w.rules]
        lines.append("")
    with st.expander(f"Why not the other procedures? ({len(a.why_not)})"):
        st.markdown("\n".join(lines))


def first_line(a: Assessment) -> None:
    st.subheader("First-line and non-myotomy options")
    if not a.first_line:
        st.caption("None named by the rules for these details.")
        return
    st.markdown("\n".join(f"- {esc(f.name)} ({esc(f.presentation)}) {_cites(f.citations)}" for f in a.first_line))


_VERDICT = {"contradicts": ":red[**Evidence contradicts this.**]", "qualifies": ":orange[**Evidence qualifies this.**]",
            "supports": ":green[**Evidence supports this.**]"}


def source_quotes(a: Assessment) -> None:
    blocks = []
    for c in a.source_caveats:
        block = f"> {esc(c.quote)}\n>\n> — *{esc(c.source)}*"
        if c.audit:
            block += f"\n\n{_VERDICT[c.audit.verdict]} {esc(c.audit.note)} {_cites(c.audit_citations)}"
        blocks.append(block)
    with st.expander(f"From the source documents ({len(a.source_caveats)} passages, with what the evidence says)"):
        st.markdown("\n\n".join(blocks))


@st.cache_data(max_entries=256, show_spinner=False)
def _svg(dot: str) -> str | None:
    """Render DOT on the server with Graphviz; None when `dot` is missing or fails."""
    if shutil.which("dot") is None:
        return None
    done = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, timeout=20)
    return done.stdout.decode() if done.returncode == 0 else None


def show_graph(dot: str) -> None:
    """An SVG drawn on the server is far cheaper for the browser than the client-side renderer
    (measured: about 300 ms per new session); without Graphviz, fall back to st.graphviz_chart."""
    svg = _svg(dot)
    if svg is None:
        st.graphviz_chart(dot)
    else:
        st.image(svg)


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
                i = node(f"i:{field}={value}", f"{field} = {value_text(value)}", "#f2f2f2")
                edges.add(f"{i} -> {r};")
    lines += list(nodes.values()) + sorted(edges) + ["}"]
    return "\n".join(lines)
