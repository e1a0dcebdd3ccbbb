"""Render a Plan as HTML, in the order a clinician acts on it.

Stop flags first, then do-first flags, then the plan in one box (steps, shared decision, not
indicated), then what would change it, then one card per option with its basis, then cleared flags,
why not, what the rules are for and the source passages.

The answer is a few st.html blocks, not one Streamlit element per part: after Assess the browser drew
about 30 elements (each a React component, Markdown parsed in the browser), which made submit to
cards 2.1x a one-field form; with a handful of HTML blocks it is 1.5-1.6x (BENCHMARKS.md). Folded parts are
<details>, opened in the browser without a round trip to the server. Every text goes through
`webapp.text.h` (escaped, quotes too) and the only markup is written here, so nothing typed or carried
in a teaching case can become markup; Streamlit sanitises the HTML again (DOMPurify) and runs no script in it.
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from models.plan import Basis, Flag, Plan, PlanOption, PlanStep, Statement
from rules.render import caveat_scope, further_rules_words
from webapp.export import Entered, recorded_count, summary as summary_of
from webapp.form import AGE_MARKS_KEY, need_text
from webapp.text import h, h_cites, h_links, h_list, listing
from webapp.words import SEVERITY_WORDS, Words, strength

STOP_CLASS = "mx-stop"  # the scroll after Assess never moves a stop flag out of view (page.py)
_UNCERTAIN = '<span class="mx-badge">uncertain</span>'
_VERDICT = {"contradicts": '<strong class="mx-red">Evidence contradicts this.</strong>',
            "qualifies": '<strong class="mx-orange">Evidence qualifies this.</strong>',
            "supports": '<strong class="mx-green">Evidence supports this.</strong>'}

# One fixed style sheet (no text from the page or the user goes into it). Colours are tints with the
# text colour inherited, so the boxes read on Streamlit's light and dark themes alike.
STYLE = """<style>
.mx-answer { line-height: 1.5; }
.mx-answer h2 { font-size: 1.75rem; font-weight: 600; margin: 0.5rem 0 0.5rem; scroll-margin-top: 4rem; }
.mx-answer h3 { font-size: 1.35rem; font-weight: 600; margin: 1.25rem 0 0.5rem; scroll-margin-top: 4rem; }
.mx-answer p, .mx-answer ul { margin: 0 0 0.6rem; }
.mx-answer ul { padding-left: 1.5rem; }
.mx-answer blockquote { border-left: 3px solid rgba(128,128,128,.5); margin: 0 0 .6rem; padding-left: .8rem; }
.mx-answer code { font-size: .85em; background: rgba(128,128,128,.12); padding: 0 .2em; border-radius: 3px; overflow-wrap: anywhere; }
.mx-answer a { color: rgb(0,104,201); overflow-wrap: anywhere; }
.mx-caption { font-size: .875rem; opacity: .75; }
.mx-alert { border-radius: .5rem; padding: .9rem 1rem; margin: 0 0 .8rem; }
.mx-alert > :last-child, .mx-box > :last-child, .mx-card > :last-child { margin-bottom: 0; }
.mx-stop { background: rgba(255,43,43,.09); border-left: 6px solid rgb(255,43,43); }
.mx-do_first { background: rgba(255,164,33,.11); border-left: 6px solid rgb(255,164,33); }
.mx-caution, .mx-note { background: rgba(28,131,225,.1); border-left: 6px solid rgb(28,131,225); }
.mx-none { background: rgba(33,195,84,.1); border-left: 6px solid rgb(33,195,84); }
.mx-box, .mx-card { border: 1px solid rgba(128,128,128,.3); border-radius: .5rem; padding: .9rem 1rem; margin: 0 0 .8rem; }
.mx-box h3 { margin-top: 0; }
.mx-card .mx-head { margin: 0 0 .5rem; }
.mx-answer details { margin: 0 0 .8rem; }
.mx-answer details > summary { cursor: pointer; padding: .35rem 0; }
.mx-answer details.mx-fold { border: 1px solid rgba(128,128,128,.3); border-radius: .5rem; padding: .2rem .9rem; }
.mx-answer details.mx-fold[open] > summary { margin-bottom: .4rem; }
.mx-answer table { border-collapse: collapse; margin: 0 0 .6rem; font-size: .9rem; }
.mx-answer th, .mx-answer td { border: 1px solid rgba(128,128,128,.3); padding: .25rem .5rem; text-align: left; vertical-align: top; }
.mx-answer hr { border: 0; border-top: 1px solid rgba(128,128,128,.3); margin: .8rem 0; }
.mx-red { color: rgb(220,38,38); } .mx-orange { color: rgb(214,110,0); } .mx-green { color: rgb(21,150,60); }
.mx-gray { opacity: .7; }
.mx-badge { font-size: .8rem; font-weight: 600; color: rgb(214,110,0); background: rgba(255,164,33,.15);
  border-radius: .3rem; padding: 0 .35rem; white-space: nowrap; }
.mx-graph { max-width: 100%; height: auto; display: block; margin: .4rem 0; }
@media (max-width: 699.98px) { .mx-graph { display: none; } }
@media print { .mx-answer details > summary { list-style: none; } }
/* beside the form's fields, copied from the answer (webapp/mirror.py) */
.mx-ask { color: rgb(28,131,225); font-size: .875rem; margin: .25rem 0; }
.mx-refused { background: rgba(255,43,43,.09); border-left: 4px solid rgb(255,43,43); border-radius: .5rem; padding: .6rem .9rem; margin: .4rem 0; }
.mx-refused p { margin: 0; }
.st-key-AGE_MARKS { margin-top: -1rem; }  /* under the age: no space of its own while empty */
.mx-anchor:empty { display: none; }
</style>""".replace("AGE_MARKS", AGE_MARKS_KEY)


def style() -> None:
    """The answer's style sheet, written once per whole-page run (not with each answer)."""
    st.html(STYLE)


def block(*parts: str) -> str:
    """Parts of the answer as one HTML block, in the class the style sheet styles."""
    return '<div class="mx-answer">' + "".join(parts) + "</div>"


def folded(summary: str, body: str, expanded: bool = False, key: str = "") -> str:
    """A section folded by default, opened in the browser; `key` lets the page reopen it after the next
    Assess (the scroll script in page.py)."""
    keyed = f' data-key="{h(key)}"' if key else ""
    return f'<details class="mx-fold"{keyed}{" open" if expanded else ""}><summary>{summary}</summary>{body}</details>'


def _p(text: str) -> str:
    return f"<p>{text}</p>" if text else ""


def _many(plan: Plan) -> bool:
    return len(plan.presentations) > 1


def _where(plan: Plan, w: Words, pid: str) -> str:
    """' (Presentation name)' when several presentations share the page."""
    return f" ({h(w.presentation(pid))})" if _many(plan) else ""


def alert(kind: str, body: str) -> str:
    """A coloured box: stop, do_first, caution, note or none (no flag stands)."""
    return f'<div class="mx-alert mx-{kind}">{body}</div>'


# --- flags -----------------------------------------------------------------------------------------

def _flag_html(plan: Plan, w: Words, flag: Flag) -> str:
    head = f"<strong>{SEVERITY_WORDS[flag.severity]}: {h(flag.meaning)}</strong>{_where(plan, w, flag.presentation)}"
    parts = [_p(head), _p(h(" ".join(flag.basis.statements)))]
    if flag.workup:
        verb = "Urgently" if flag.severity == "stop" else "Check or correct first"
        parts.append(_p(f"<strong>{verb}:</strong>") + h_list(h(t.meaning) for t in flag.workup))
    if flag.concerns:
        holds = "Withholds" if flag.severity == "stop" else "Comes before" if flag.severity == "do_first" else "Concerns"
        parts.append(_p(f"{holds}: {h(listing(w.option(o) for o in flag.concerns))}."))
    parts.append(_p(h_cites(flag.basis.citations)))
    return alert(flag.severity, "".join(parts))


def flags(plan: Plan, w: Words) -> str:
    """Standing flags at the top: stop, then do first, then caution; or a line saying none stands."""
    standing = plan.standing_flags
    if not standing:
        return alert("none", _p("No red flag stands for the details given."))
    return "".join(_flag_html(plan, w, flag) for flag in standing)


# --- the plan in one box ---------------------------------------------------------------------------

def _options_by_id(plan: Plan) -> dict[tuple[str, str], PlanOption]:
    return {(o.presentation, o.id): o for o in plan.options}


def _step_html(plan: Plan, w: Words, step: PlanStep, options: dict[tuple[str, str], PlanOption]) -> str:
    items = [h(t.meaning) for t in step.workup]
    for oid in step.options:
        option = options.get((step.presentation, oid))
        name = h(option.name if option else w.option(oid))
        items.append(f"<strong>{name}</strong> — {strength(option.strength) if option else ''}")
    return _p(f"<strong>{step.order}. {h(step.title)}</strong>{_where(plan, w, step.presentation)}") + h_list(items)


def summary(plan: Plan, w: Words) -> str:
    """'The plan': the steps in order, the shared decisions and what is not indicated, in one box."""
    options = _options_by_id(plan)
    parts = ['<h3 id="plan">The plan</h3>']
    if plan.stopped:
        parts.append(_p('<strong class="mx-red">Stopped:</strong> <span class="mx-red">no treatment is suggested '
                        "until the stop flag above is addressed.</span>"))
    parts += [_step_html(plan, w, step, options) for step in plan.steps]
    if not plan.steps:
        parts.append(_p("No step is named by the rules for the details given."))
    for shared in plan.shared_decisions:
        names = " or ".join(h(w.option(o)) for o in shared.options)
        parts.append(_p(f"<strong>Shared decision</strong>{_where(plan, w, shared.presentation)}: {names}. "
                        f"What tips it: {h('; '.join(shared.tips))}."))
    excluded = [o for o in plan.options if o.strength == "not_indicated"]
    if excluded:
        parts.append(_p("<strong>Not indicated:</strong> " + h(listing(o.name for o in excluded)) + "."))
    return f'<div class="mx-box">{"".join(parts)}</div>'


def needs(plan: Plan, w: Words) -> str:
    """The details that would change the answer, each with the options it decides."""
    if not plan.needs:
        return ""
    return "<h3>What would change the plan</h3>" + alert(
        "note", h_list(h(need_text(n)) + _where(plan, w, n.presentation) for n in plan.needs))


# --- option cards ----------------------------------------------------------------------------------

def _evidence(b: Basis) -> str:
    if not b.evidence:
        return "<strong>Evidence:</strong> not graded by the source."
    graded = []
    for e in b.evidence:
        parts = [p for p in (e.recommendation and f"{e.recommendation} recommendation",
                             e.certainty and f"{e.certainty} certainty") if p]
        graded.append(f"{e.system} ({e.source})" + (": " + ", ".join(parts) if parts else ""))
    return "<strong>Evidence:</strong> " + h_links("; ".join(graded)) + "."


def _statements(title: str, items: tuple[Statement, ...]) -> str:
    return _p(f"<strong>{title}:</strong>") + h_list(
        f"{h(s.text)} {h_cites(s.citations)}" + (f" {_UNCERTAIN}" if s.uncertain else "") for s in items
    )


def basis_html(w: Words, pid: str, b: Basis) -> str:
    parts = []
    if b.inputs_used:
        parts.append(_p("<strong>Inputs used:</strong> " + h("; ".join(w.finding(pid, k, v) for k, v in b.inputs_used.items())) + "."))
    if b.inputs_missing:
        parts.append(_p("<strong>Not recorded (could change the answer):</strong> "
                        + h(listing(w.fact(pid, f) for f in b.inputs_missing)) + "."))
    parts.append(_p("<strong>Citations:</strong>") + h_list(
        f"{h(c.key)}{f' ({h(c.year)})' if c.year else ''}{f' · grade {h(c.grade)}' if c.grade else ''}: {h_links(c.label)}"
        for c in b.citations
    ))
    if b.rule_ids:
        parts.append(_p("<strong>Rules (for audit):</strong> "
                        + ", ".join(f"<code>{h(r)}</code> v{h(b.rule_versions[r])}" for r in b.rule_ids)))
    else:  # declared knowledge (a presentation's usual ages), not a rule
        parts.append(_p("<strong>Declared in the knowledge base, not a rule:</strong> " + h(" ".join(b.statements))))
    return "".join(parts)


def _uncertain(option: PlanOption) -> bool:
    return option.basis.uncertain or any(s.uncertain for s in (*option.risks, *option.caveats))


def card_key(option: PlanOption) -> str:
    """The key of a card's folded section: it is opened again for the same option after the next Assess."""
    return f"card_open.{option.presentation}.{option.id}"


def card(plan: Plan, w: Words, option: PlanOption, expanded: bool = False) -> str:
    head = [f"<strong>{h(option.name)}</strong> — {strength(option.strength)}" + (f" {_UNCERTAIN}" if _uncertain(option) else "")]
    if _many(plan):
        head.append(f"For {h(w.presentation(option.presentation))}")
    if option.target_muscle:
        head.append(f"<strong>Target:</strong> {h(option.target_muscle)}")
    if option.approaches:
        head.append(f"<strong>Approaches:</strong> {h(', '.join(option.approaches))}")
    if option.after:
        head.append(f'<span class="mx-orange"><strong>After:</strong> {h(listing(w.flag(f) for f in option.after))} is addressed</span>')
    if option.capped_by:
        head.append(f'<span class="mx-orange"><strong>Not top-ranked while:</strong> '
                    f'{h(listing(w.flag(f) for f in option.capped_by))}</span>')
    head.append(_evidence(option.basis))
    body = [_p("<strong>Why:</strong> " + h(option.reason))]
    if option.risks:
        body.append(_statements("Risks", option.risks))
    if option.caveats:
        body.append(_statements("Caveats", option.caveats))
    body += ["<hr>", basis_html(w, option.presentation, option.basis)]
    return (f'<div class="mx-card"><p class="mx-head">{"<br>".join(head)}</p>'
            f'{folded("Why, risks, caveats and basis", "".join(body), expanded, card_key(option))}</div>')


def cards(plan: Plan, w: Words, expanded: bool = False) -> str:
    shown = [o for o in plan.options if o.strength != "not_indicated"]
    parts = ["<h3>The options</h3>"]
    if not shown:
        parts.append(alert("note", _p("No option is offered for the details given: see the flags and steps above, "
                                      "and why not below.")))
    parts += [card(plan, w, option, expanded) for option in shown]
    return "".join(parts)


# --- after the cards -------------------------------------------------------------------------------

def cleared_flags(plan: Plan, w: Words) -> str:
    cleared = [f for f in plan.flags if f.status == "cleared"]
    if not cleared:
        return ""
    return "<h3>Cleared flags</h3>" + h_list(
        f"{h(f.meaning)}{_where(plan, w, f.presentation)} (was: {h(SEVERITY_WORDS[f.severity].lower())}) — "
        f'<span class="mx-green">cleared: {h(f.cleared_by or "by the recorded details")}</span>'
        for f in cleared
    )


def why_not(plan: Plan, w: Words, expanded: bool = False) -> str:
    """Options not indicated (with the rule that says so) and options not in the plan (with what is unmet)."""
    excluded = [o for o in plan.options if o.strength == "not_indicated"]
    if not excluded and not plan.why_not:
        return ""
    return folded(f"Why not the other options? ({len(excluded) + len(plan.why_not)})",
                  "".join(_why_not_blocks(plan, w, excluded)), expanded, "why_not")


def _why_not_blocks(plan: Plan, w: Words, excluded: list[PlanOption]) -> list[str]:
    blocks = []
    for option in excluded:
        blocks.append(_p(f"<strong>{h(option.name)}</strong>{_where(plan, w, option.presentation)} — not indicated: "
                         f"{h(option.reason)}"))
    for item in plan.why_not:
        lines = []
        if item.withheld_by:
            lines.append(f'<span class="mx-red">withheld while this stands: {h(listing(w.flag(f) for f in item.withheld_by))}</span>')
        for rule in item.rules:
            unmet = "; ".join(w.unmet(item.presentation, rule.rule_id, u) for u in rule.unmet)
            lines.append(f"{h(rule.statement)} Not met: {h(unmet)}.")
        if item.further_rules:
            lines.append(h(f"{further_rules_words(item, '')}."))
        if not item.withheld_by and not item.rules:
            lines.append("no rule offers it for these details")
        blocks.append(_p(f"<strong>{h(item.name)}</strong>{_where(plan, w, item.presentation)}") + h_list(lines))
    return blocks


def presentations(plan: Plan, expanded: bool = False) -> str:
    body = "".join(
        _p(f"<strong>{h(p.name)}</strong>") + h_list([f"Purpose: {h(p.purpose)}", f"Intended use: {h(p.intended_use)}",
                                                      f"Not for: {h(p.misuse)}"])
        for p in plan.presentations
    )
    return folded("What these rules are for, and what they are not for", body, expanded, "purpose")


def source_quotes(plan: Plan, expanded: bool = False) -> str:
    """The passages the planner kept for this patient, each saying which presentation it belongs to."""
    if not plan.source_caveats:
        return ""
    names = {p.id: p.name for p in plan.presentations}
    blocks = []
    for c in plan.source_caveats:
        block_ = (_p(f"<strong>{h(caveat_scope(c, names))}</strong>")
                  + f"<blockquote><p>{h(c.quote)}</p><p>— <em>{h(c.source)}</em></p></blockquote>")
        if c.audit:
            block_ += _p(f"{_VERDICT[c.audit.verdict]} {h(c.audit.note)} {h_cites(c.audit_citations)}")
        blocks.append(block_)
    return folded(f"From the source documents ({len(plan.source_caveats)} passages, with what the evidence says)",
                  "".join(blocks), expanded, "sources")


def after_graph(plan: Plan, w: Words, expanded: bool = False) -> str:
    """Everything the answer shows below the plan's graph, as one HTML block."""
    return block(needs(plan, w), cards(plan, w, expanded), cleared_flags(plan, w), why_not(plan, w, expanded),
                 presentations(plan, expanded), source_quotes(plan, expanded))


def lines(items: Iterable[str]) -> str:
    """Lines of HTML as one paragraph, one under the other."""
    return _p("<br>".join(items))


def inputs(rows: list[Entered], expanded: bool = False) -> str:
    """What was assessed: a few lines by presentation (blanks named), then the whole table, folded."""
    shown = []
    for line in summary_of(rows):
        text = f"<strong>{h(line.presentation)}</strong>" + (f" — {h(' · '.join(line.recorded))}" if line.recorded else "")
        if line.not_recorded:
            text += f'<br><span class="mx-gray">Not recorded: {h(", ".join(line.not_recorded))}</span>'
        shown.append(text)
    recorded, total = recorded_count(rows)
    table = ("<table><thead><tr><th>Presentation</th><th>Detail</th><th>As entered</th></tr></thead><tbody>"
             + "".join(f"<tr><td>{h(r.presentation)}</td><td>{h(r.detail)}</td><td>{h(r.value)}</td></tr>" for r in rows)
             + "</tbody></table>")
    return lines(shown) + folded(f"Inputs as entered, as a table ({recorded} of {total} details recorded)", table,
                                 expanded, "inputs_table")
