"""A readable Markdown report of an assessment, for the CLI and the app's download.

Only a rendering: every sentence comes from the Assessment, which comes from the knowledge base.
"""

from __future__ import annotations

from models.assessment import Assessment, Basis, CitationRef, Suggestion

STRENGTH_LABEL = {
    "preferred": "Preferred",
    "alternative": "Alternative",
    "after_first_line": "After first-line care",
    "not_indicated": "Not indicated",
}


def cite(refs: tuple[CitationRef, ...]) -> str:
    return ", ".join(f"[{r.key}]" for r in refs)


def value_text(value: object) -> str:
    """A finding as a reader says it: booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def basis_lines(basis: Basis) -> list[str]:
    lines = [f"- Rules: {', '.join(f'`{r}` v{basis.rule_versions[r]}' for r in basis.rule_ids)}"]
    if basis.inputs_used:
        lines.append("- Inputs used: " + ", ".join(f"{k} = {value_text(v)}" for k, v in basis.inputs_used.items()))
    if basis.inputs_missing:
        lines.append("- Not recorded (could change the answer): " + ", ".join(basis.inputs_missing))
    lines.append("- Evidence: " + "; ".join(f"[{c.key}] {c.label}" for c in basis.citations))
    return lines


def _suggestion(s: Suggestion) -> list[str]:
    lines = [f"### {s.name} — {STRENGTH_LABEL[s.strength]}", ""]
    if s.target_muscle:
        lines.append(f"- Target: {s.target_muscle}")
    if s.approaches:
        lines.append(f"- Approaches: {', '.join(s.approaches)}")
    lines.append(f"- Why: {s.reason}")
    if s.held_back_by:
        lines.append(f"- Held back by red flags: {', '.join(s.held_back_by)}")
    if s.workup_first:
        lines.append("- Work-up first: " + "; ".join(w.meaning for w in s.workup_first))
    for risk in s.risks:
        lines.append(f"- Risk: {risk.text} {cite(risk.citations)}")
    for caveat in s.caveats:
        lines.append(f"- Caveat: {caveat.text} {cite(caveat.citations)}")
    lines += ["", "Basis:", *basis_lines(s.basis), ""]
    return lines


def to_markdown(a: Assessment) -> str:
    lines = [
        "# Myotomy decision-support assessment",
        "",
        f"> {a.disclaimer}",
        "",
        f"Presentations: {', '.join(p.meaning for p in a.presentations)}  ",
        f"Knowledge base {a.knowledge_base.version}, content hash `{a.knowledge_base.content_hash[:16]}`",
        "",
        "## Red flags",
        "",
    ]
    if a.red_flags:
        for flag in a.red_flags:
            lines.append(f"- **{flag.id}** ({flag.presentation}): {flag.meaning}. {' '.join(flag.basis.statements)}")
    else:
        lines.append("None raised by the rules for the details given.")
    lines += ["", "## Work-up before any procedure", ""]
    lines += [f"- {w.meaning} (`{w.id}`)" for w in a.workup] or ["None required by the rules."]
    lines += ["", "## Candidate procedures", ""]
    if a.suggestions:
        for s in a.suggestions:
            lines += _suggestion(s)
    else:
        lines += ["No procedure is suggested for the details given.", ""]
    lines += ["## First-line and non-myotomy options", ""]
    lines += [f"- {f.name} ({f.presentation}) {cite(f.citations)}" for f in a.first_line] or ["None named by the rules."]
    lines += ["", "## Why not", ""]
    for w in a.why_not:
        if w.rules:
            unmet = "; ".join(f"`{r.rule_id}`: {', '.join(r.unmet)}" for r in w.rules)
            lines.append(f"- {w.name}: conditions not met: {unmet}")
        else:
            lines.append(f"- {w.name}: no rule suggests it for this presentation.")
    if not a.why_not:
        lines.append("Every candidate procedure of these presentations was considered above.")
    lines += ["", "## From the source documents", ""]
    for c in a.source_caveats:
        lines.append(f"> \"{c.quote}\" ({c.source})")
        if c.audit:
            lines.append(f"- Evidence ({c.audit.verdict}): {c.audit.note} {cite(c.audit_citations)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
