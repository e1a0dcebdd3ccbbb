"""The Markdown report of a Plan (the CLI's `--format markdown` and the app's download), and the
few text helpers every rendering shares: Markdown escaping, citations, values, strength in words.

Only a rendering: every sentence comes from the Plan, which comes from the knowledge base. Order
follows what a clinician must see first: stop flags, do-first flags, then the steps, the shared
decision, the details that would change the answer, each option with its evidence, cleared flags,
why other options are not offered, what the rules are for, the source passages, the stamp.
"""

from __future__ import annotations

import re
from typing import Iterable

from models.plan import Basis, CitationRef, Flag, Need, Plan, PlanOption, SourceCaveat, Statement, WhyNot

STRENGTH_WORDS = {
    "preferred": "preferred",
    "equivalent": "equivalent option",
    "alternative": "an alternative",
    "later": "later, if the step before fails",
    "not_indicated": "not indicated",
}
STRENGTH_LABEL = {key: words[:1].upper() + words[1:] for key, words in STRENGTH_WORDS.items()}
NOT_GRADED = "not graded by the source"
UNCERTAIN = "uncertain: the source marks this as unsupported or to be verified"

# Characters that start Markdown (or Streamlit's LaTeX, $) anywhere in a line; an underscore only
# where it can open or close emphasis, so that ids and words like type_iii stay readable.
_INLINE = re.compile(r"([\\`*{}\[\]<>|~$])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# What makes a line a heading, quote, list item or rule when the text starts a line.
_LINE_START = re.compile(r"^(\s*\d*)([#>+=.)-])")


def escape(text: object, *, line_start: bool = False) -> str:
    """Text as literal Markdown on one line: no emphasis, link, HTML or table cell can come out of
    it; with line_start (text that begins a line or a block), no heading, quote or list item either."""
    flat = _INLINE.sub(lambda m: "\\" + m.group(0), " ".join(str(text).split()))
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), flat) if line_start else flat


def code(ident: str) -> str:
    """An id in a code span (ids have no backticks; any are dropped)."""
    return f"`{ident.replace('`', '')}`"


def cite(refs: Iterable[CitationRef]) -> str:
    return ", ".join(f"\\[{escape(r.key)}\\]" for r in refs)


def value_text(value: object) -> str:
    """A finding as a reader says it: booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def words(items: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def need_text(need: Need) -> str:
    """'Record <label>: it decides between A and B' (one option: 'it decides the place of A')."""
    names = [escape(n) for n in need.decides_names]
    decides = f"it decides between {words(names)}" if len(names) > 1 else f"it decides the place of {names[0]}"
    together = f" together with {words([escape(t) for t in need.together_labels])}" if need.together_labels else ""
    return f"Record {escape(need.label)}{together}: {decides}"


def evidence_text(basis: Basis) -> str:
    """The grading as the source gives it: system, recommendation, certainty; or that it gives none."""
    if not basis.evidence:
        return NOT_GRADED
    parts = []
    for e in basis.evidence:
        graded = "; ".join(
            x for x in (e.recommendation and f"recommendation {e.recommendation}", e.certainty and f"certainty {e.certainty}") if x
        )
        parts.append(f"{escape(e.system)} ({cite([_ref(e.source)])}): {escape(graded) or 'graded without a level'}")
    return "; ".join(dict.fromkeys(parts))


def _ref(key: str) -> CitationRef:
    return CitationRef(key=key, label=key)


def _statement(kind: str, s: Statement) -> str:
    mark = f" ({UNCERTAIN})" if s.uncertain else ""
    return f"- {kind}: {escape(s.text)} {cite(s.citations)}{mark}"


def basis_lines(basis: Basis) -> list[str]:
    rules = dict.fromkeys(basis.rule_ids)
    if rules:
        lines = [f"- Rules: {', '.join(f'{code(r)} v{basis.rule_versions[r]}' for r in rules)}"]
    else:  # declared knowledge (a presentation's usual ages), not a rule
        lines = [f"- Declared in the knowledge base, not a rule: {escape(' '.join(basis.statements))}"]
    if basis.inputs_used:
        lines.append("- Inputs used: " + ", ".join(f"{code(k)} = {escape(value_text(v))}" for k, v in basis.inputs_used.items()))
    if basis.inputs_missing:
        lines.append("- Not recorded (could change the answer): " + ", ".join(code(m) for m in basis.inputs_missing))
    lines.append("- Evidence grading: " + evidence_text(basis))
    if basis.uncertain:
        lines.append(f"- {UNCERTAIN[:1].upper() + UNCERTAIN[1:]}")
    lines.append("- Sources: " + "; ".join(f"{cite([c])} {escape(c.label)}" for c in basis.citations))
    return lines


class _Names:
    """Words for the ids a plan names: options, flags, presentations."""

    def __init__(self, plan: Plan) -> None:
        self.options = {w.option: w.name for w in plan.why_not} | {o.id: o.name for o in plan.options}
        self.flags = {f.id: f.meaning for f in plan.flags}
        self.presentations = {p.id: p.name for p in plan.presentations}
        self.several = len(plan.presentations) > 1

    def option(self, ident: str) -> str:
        return escape(self.options.get(ident, ident))

    def flag(self, ident: str) -> str:
        return escape(self.flags.get(ident, ident))

    def of(self, presentation: str) -> str:
        """' (Presentation name)' when the plan covers several presentations."""
        return f" ({escape(self.presentations[presentation])})" if self.several else ""


def _flag(flag: Flag, names: _Names) -> list[str]:
    lines = [f"- **{escape(flag.meaning)}**{names.of(flag.presentation)}"]
    statements = dict.fromkeys(flag.basis.statements)
    if statements:
        lines.append(f"  - Why: {escape(' '.join(statements))} {cite(flag.basis.citations)}")
    if flag.workup:
        lines.append("  - Work-up: " + "; ".join(escape(w.meaning) for w in flag.workup))
    if flag.concerns and flag.severity != "stop":
        lines.append("  - Before: " + ", ".join(names.option(o) for o in flag.concerns))
    if flag.basis.uncertain:
        lines.append(f"  - {UNCERTAIN[:1].upper() + UNCERTAIN[1:]}")
    return lines


def _flag_section(title: str, flags: list[Flag], names: _Names) -> list[str]:
    if not flags:
        return []
    lines = [f"## {title}", ""]
    for flag in flags:
        lines += _flag(flag, names)
    return lines + [""]


def _option(o: PlanOption, names: _Names) -> list[str]:
    lines = [f"### {escape(o.name)}: {STRENGTH_WORDS[o.strength]}{names.of(o.presentation)}", ""]
    lines.append(f"- Why: {escape(o.reason)}")
    if o.after:
        lines.append("- After: " + "; ".join(names.flag(f) for f in o.after))
    if o.capped_by:
        lines.append("- Not the first choice while this stands: " + "; ".join(names.flag(f) for f in o.capped_by))
    if o.target_muscle:
        lines.append(f"- Target: {escape(o.target_muscle)}")
    if o.approaches:
        lines.append(f"- Approaches: {', '.join(escape(a) for a in o.approaches)}")
    lines += [_statement("Risk", r) for r in o.risks]
    lines += [_statement("Caveat", c) for c in o.caveats]
    return lines + ["", "Basis:", *basis_lines(o.basis), ""]


def _steps(plan: Plan, names: _Names) -> list[str]:
    strength = {(o.presentation, o.id): o.strength for o in plan.options}
    lines = ["## Steps", ""]
    for step in plan.steps:
        lines.append(f"{step.order}. **{escape(step.title)}**{names.of(step.presentation)}")
        for term in step.workup:
            lines.append(f"   - Work-up: {escape(term.meaning)}")
        for oid in step.options:
            lines.append(f"   - {names.option(oid)}: {STRENGTH_WORDS[strength[(step.presentation, oid)]]}")
    if not plan.steps:
        lines.append("No step is named by the rules for the details given.")
    return lines + [""]


def _why_not(w: WhyNot, names: _Names) -> str:
    head = f"- {escape(w.name)}{names.of(w.presentation)}: "
    if w.withheld_by:
        return head + "withheld until this is addressed: " + "; ".join(names.flag(f) for f in w.withheld_by)
    if w.rules:
        unmet = "; ".join(f"{code(r.rule_id)} needs {', '.join(escape(u) for u in r.unmet)}" for r in w.rules)
        return head + "conditions not met: " + unmet + further_rules_words(w, "; ")
    return head + "no rule suggests it for this presentation."


def further_rules_words(w: WhyNot, lead: str) -> str:
    """The rules naming the option that "why not" does not list (more unmet conditions), counted."""
    if not w.further_rules:
        return ""
    many = w.further_rules > 1
    return f"{lead}{w.further_rules} further rule{'s' if many else ''} name{'' if many else 's'} it, with more conditions unmet"


PATIENT_WORDS = {"children": "about children", "adults": "about adults"}


def caveat_scope(caveat: SourceCaveat, names: dict[str, str]) -> str:
    """Which presentation a source passage belongs to, and whom it speaks of, in words."""
    scope = ("For " + ", ".join(names.get(p, p) for p in caveat.presentations)) if caveat.presentations \
        else "About myotomy in general, not one presentation"
    return scope + (f"; {PATIENT_WORDS[caveat.patients]}" if caveat.patients in PATIENT_WORDS else "") + "."


def to_markdown(plan: Plan) -> str:
    names = _Names(plan)
    standing = plan.standing_flags
    lines = [
        "# Myotomy decision-support plan",
        "",
        "For: " + ", ".join(escape(p.name) for p in plan.presentations),
        "",
    ]
    if plan.stopped:
        lines += ["**Stopped:** a stop flag stands; treatment options wait until it is addressed.", ""]
    lines += _flag_section("Stop: address before anything else", [f for f in standing if f.severity == "stop"], names)
    lines += _flag_section("Do first", [f for f in standing if f.severity == "do_first"], names)
    lines += _flag_section("Cautions", [f for f in standing if f.severity == "caution"], names)
    lines += _steps(plan, names)
    if plan.shared_decisions:
        lines += ["## Shared decision", ""]
        for shared in plan.shared_decisions:
            options = words([names.option(o) for o in shared.options])
            lines.append(f"- {options} share the top rank{names.of(shared.presentation)}: the choice is shared "
                         f"with the patient. What tips it: {'; '.join(escape(t) for t in shared.tips)}.")
        lines.append("")
    if plan.needs:
        lines += ["## Details that would change the answer", ""]
        lines += [f"- {need_text(n)}{names.of(n.presentation)}" for n in plan.needs]
        lines.append("")
    lines += ["## Options", ""]
    for option in plan.options:
        lines += _option(option, names)
    if not plan.options:
        lines += ["No option is placed in the plan for the details given.", ""]
    cleared = [f for f in plan.flags if f.status == "cleared"]
    if cleared:
        lines += ["## Cleared flags", ""]
        lines += [f"- {escape(f.meaning)}{names.of(f.presentation)}: cleared by {escape(f.cleared_by or '')}" for f in cleared]
        lines.append("")
    lines += ["## Why not", ""]
    lines += [_why_not(w, names) for w in plan.why_not] or ["Every option of these presentations is in the plan."]
    lines += ["", "## What these rules are for", ""]
    for p in plan.presentations:
        lines += [f"### {escape(p.name)}", "", f"- Purpose: {escape(p.purpose)}",
                  f"- Intended use: {escape(p.intended_use)}", f"- Not for: {escape(p.misuse)}", ""]
    if plan.source_caveats:
        lines += ["## From the source documents", ""]
        names = {p.id: p.name for p in plan.presentations}
        for c in plan.source_caveats:
            lines.append(f"> \"{escape(c.quote)}\" ({escape(c.source)})")
            lines += ["", f"- {escape(caveat_scope(c, names))}"]
            if c.audit:
                lines += ["", f"- What the evidence says ({c.audit.verdict}): {escape(c.audit.note)} {cite(c.audit_citations)}"]
            lines.append("")
    lines += [
        "---",
        "",
        f"Knowledge base {escape(plan.knowledge_base.version)}, content hash `{plan.knowledge_base.content_hash}`",
        "",
        f"> {escape(plan.disclaimer)}",
    ]
    return "\n".join(lines).rstrip() + "\n"
