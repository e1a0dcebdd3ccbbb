"""CDS Hooks cards: a rendering of the Plan; nothing clinical is decided or re-scanned here.

One card per presentation at most, because the plan is ordered and a card per option would part an
option from the step that must come before it:
- a standing stop flag: one `critical` card that says stop and the urgent action; the options wait,
  so no option is shown as a choice (the card names what is held back);
- otherwise one card whose summary reads as the plan ("first …; then POEM (preferred) or …"),
  `warning` while a do-first flag stands, else `info`; the detail gives each step with its options,
  strength, reason, evidence grading and sources, the details that would change the plan, the flags
  cleared and how the record was read;
- no card when the plan has nothing to say for the presentation.
Then the presentations the service could not assess. No guidance gives no card: conditions that map
to nothing are counted by the app (service/metrics.py), not shown.

The uuid given here names the card's subject: uuid5 of the presentation, a card key that does not
depend on the patient ("plan", "stop:<flag>", "not_assessed") and the knowledge-base content hash;
the app makes it per patient (card_ids.py), so feedback carries no patient data and a uuid names
one kind of advice from one version of the knowledge for one patient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence
from uuid import UUID, uuid5

from models.cds_hooks import Card, Source
from models.knowledge import TOP_RANK
from models.loader import KnowledgeBase
from models.plan import DISCLAIMER, Basis, CitationRef, Flag, Need, Plan, PlanOption, PlanStep, Statement, Term
from service.fhir_input import FhirReading
from service.record_assessment import NotAssessed

CARD_NAMESPACE = UUID("6e5aecb8-bdc5-4a0c-a8ae-865c30cf8dd9")  # fixed: changing it changes every card uuid
SUMMARY_MAX = 139  # CDS Hooks: a summary is under 140 characters
SOURCE_LABEL_MAX = 110
PLAN, NOT_ASSESSED = "plan", "not_assessed"
INDICATOR_ORDER = ("critical", "warning", "info")
STRENGTH_WORDS = {
    "preferred": "preferred",
    "equivalent": "equivalent",
    "alternative": "alternative",
    "later": "later",
    "not_indicated": "not indicated",
}


def card_uuid(presentation: str, item: str, kb_hash: str) -> UUID:
    return uuid5(CARD_NAMESPACE, f"{presentation}/{item}/{kb_hash}")


def stop_key(flag_id: str) -> str:
    return f"stop:{flag_id}"


def known_cards(kb: KnowledgeBase) -> dict[UUID, str]:
    """Every card uuid this knowledge base can issue -> what the card is about (for feedback)."""
    items: dict[UUID, str] = {}
    for pid in kb.presentations:
        stops = [e.id for r in kb.rules_for(pid) for e in r.then.flags if kb.flags[e.id].severity == "stop"]
        for key in [PLAN, NOT_ASSESSED, *(stop_key(f) for f in dict.fromkeys(stops))]:
            items[card_uuid(pid, key, kb.content_hash)] = f"{pid}/{key}"
    return items


# Text helpers

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")  # enough that record text can form no link, tag or table cell
_ACRONYM = re.compile(r"^[A-Z][A-Za-z0-9-]*[A-Z0-9]$")


def esc(text: str) -> str:
    """Markdown-escape text that comes from the record, so it shows as typed."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def cite(refs: Iterable[CitationRef]) -> str:
    return ", ".join(f"[{r.key}]" for r in refs)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


def _words(ident: str) -> str:
    """A flag id as a reader says it ("possible pseudoachalasia")."""
    return ident.replace("_", " ")


def _short_name(name: str) -> str:
    """An option's name for the summary: its acronym where the name ends in one, else the name
    without a trailing parenthesis ("Oesophagectomy (specialist decision, …)" -> "Oesophagectomy")."""
    found = re.search(r"\s\(([^()]*)\)$", name)
    if not found:
        return name
    inner = found.group(1)
    return inner if _ACRONYM.match(inner) else name[: found.start()]


def _joined(items: Sequence[str], joiner: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {joiner} {items[-1]}"


def _listed(items: Sequence[str], level: int, joiner: str = "and") -> str:
    """Items for a summary; at level 2 or more, or when an item holds a comma, the first and how many more."""
    if len(items) > 1 and (level >= 2 or any("," in item for item in items)):
        return f"{items[0]} (+{len(items) - 1} more)"
    return _joined(items, joiner)


def _fit(render: Callable[[int], str], levels: int = 5) -> str:
    """The most complete rendering that fits a card summary; the last level is clipped if need be."""
    text = ""
    for level in range(levels):
        text = render(level)
        if len(text) <= SUMMARY_MAX:
            return text
    return _clip(text, SUMMARY_MAX)


def _source(refs: Sequence[CitationRef], kb_version: str) -> Source:
    """The card's first citation, else the knowledge base itself."""
    if not refs:
        return Source(label=f"Myotomy decision-support knowledge base {kb_version}")
    first = refs[0]
    label = _clip(f"{first.key}: {first.label}", SOURCE_LABEL_MAX)
    return Source(label=label, url=first.url) if first.url else Source(label=label)


def _sources(refs: Iterable[CitationRef]) -> list[str]:
    lines = []
    for ref in refs:
        year = f" ({ref.year})" if ref.year else ""
        link = f" <{ref.url}>" if ref.url and ref.url not in ref.label else ""
        lines.append(f"- [{ref.key}]{year} {ref.label}{link}")
    return lines


def _section(title: str, lines: Sequence[str]) -> list[str]:
    return [f"**{title}**", "", *lines] if lines else []


def _detail(blocks: Sequence[Sequence[str]], disclaimer: str) -> str:
    lines: list[str] = []
    for block in blocks:
        if block:
            lines += [*block, ""]
    lines.append(f"*{disclaimer}*")
    return "\n".join(lines)


# One presentation's part of the plan


@dataclass(frozen=True)
class _Part:
    """What the plan says about one presentation, in the plan's own order."""

    pid: str
    name: str
    plan: Plan

    @property
    def flags(self) -> list[Flag]:
        return [f for f in self.plan.flags if f.presentation == self.pid]

    def standing(self, severity: str) -> list[Flag]:
        return [f for f in self.flags if f.status == "standing" and f.severity == severity]

    @property
    def cleared(self) -> list[Flag]:
        return [f for f in self.flags if f.status == "cleared"]

    @property
    def steps(self) -> list[PlanStep]:
        return [s for s in self.plan.steps if s.presentation == self.pid]

    @property
    def options(self) -> dict[str, PlanOption]:
        return {o.id: o for o in self.plan.options if o.presentation == self.pid}

    @property
    def needs(self) -> list[Need]:
        return [n for n in self.plan.needs if n.presentation == self.pid]

    def has_something_to_say(self) -> bool:
        standing = [f for f in self.flags if f.status == "standing"]
        return bool(standing or self.steps or self.options or self.needs)


def _evidence(basis: Basis) -> str:
    graded = [
        f"{e.system}" + "".join(f", {x}" for x in (e.recommendation, e.certainty and f"certainty {e.certainty}") if x)
        + f" [{e.source}]"
        for e in basis.evidence
    ]
    text = "Evidence: " + ("; ".join(graded) if graded else "not graded in the knowledge base")
    if basis.uncertain:
        text += "; uncertain (the clinical brief marks this as unsupported or to verify)"
    return text + "."


def _statements(kind: str, items: Iterable[Statement]) -> list[str]:
    return [f"  - {kind}: {s.text}{' (uncertain)' if s.uncertain else ''} {cite(s.citations)}".rstrip() for s in items]


def _option_lines(o: PlanOption) -> list[str]:
    lines = [f"- **{o.name}: {STRENGTH_WORDS[o.strength]}.** {o.reason} {cite(o.basis.citations)}".rstrip()]
    lines.append(f"  - {_evidence(o.basis)}")
    if o.target_muscle:
        lines.append(f"  - Target: {o.target_muscle}")
    if o.approaches:
        lines.append(f"  - Approaches: {', '.join(o.approaches)}")
    return lines + _statements("Caveat", o.caveats) + _statements("Risk", o.risks)


def _flag_line(f: Flag) -> str:
    why = " ".join(f.basis.statements)
    return f"- **{_words(f.id).capitalize()}**: {f.meaning}. {why} {cite(f.basis.citations)}".rstrip()


def _terms(terms: Iterable[Term]) -> list[str]:
    return [f"- {t.meaning}" for t in terms]


def _step_lines(step: PlanStep, part: _Part) -> list[str]:
    options = part.options
    lines = _terms(step.workup)
    for oid in step.options:
        lines += _option_lines(options[oid])
    return _section(step.title, lines)


def _needs_lines(part: _Part) -> list[str]:
    lines = []
    for need in part.needs:
        names = list(need.decides_names)
        decides = f"between {_joined(names)}" if len(names) > 1 else f"on {names[0]}"
        lines.append(f"- Record **{need.label}**: it decides {decides}.")
    return _section("Would change the plan", lines)


def _cleared_lines(part: _Part) -> list[str]:
    return _section("Cleared", [f"- {_words(f.id).capitalize()}: {f.cleared_by}." for f in part.cleared])


def _basis_lines(bases: Sequence[Basis]) -> list[str]:
    versions: dict[str, int] = {}
    for b in bases:
        versions.update(b.rule_versions)
    if not versions:
        return []
    first = bases[0]
    return _section(
        "Basis",
        [
            "- Rules: " + ", ".join(f"`{r}` v{v}" for r, v in versions.items()),
            f"- Intended user: {first.intended_user}",
            f"- Known limits: {first.known_limits}",
        ],
    )


def _purpose_lines(part: _Part) -> list[str]:
    """What the presentation's rules are for and not for, as the knowledge declares them."""
    info = next((p for p in part.plan.presentations if p.id == part.pid), None)
    if info is None:
        return []
    return _section(
        "What these rules are for",
        [f"- Purpose: {esc(info.purpose)}", f"- Intended use: {esc(info.intended_use)}", f"- Not for: {esc(info.misuse)}"],
    )


def _record_lines(part: _Part, reading: FhirReading, kb: KnowledgeBase) -> list[str]:
    """How the record was read for this presentation: what was used and what it did not hold."""
    codes = ", ".join(reading.mapped_codes.get(part.pid, ()))
    lines = [f"- Coded diagnosis: {esc(codes)}." if codes else "- Coded diagnosis: none read."]
    if reading.age_note:
        lines.append(f"- Age: {esc(reading.age_note)}.")
    not_held = reading.not_held.get(part.pid, ())
    if not_held:
        lines.append("- Not held in a form this service reads: " + ", ".join(d.label for d in not_held) + ".")
    observed = reading.observed.get(part.pid, ())
    for item in observed:
        lines.append(f"- From an Observation: {esc(item.shown())}.")
    if any(d.loinc for d in kb.details[part.pid]):
        lines.append(f"- Observations: {reading.observations} received; {len(observed)} detail(s) read by LOINC code.")
    else:
        lines.append(
            f"- Observations: {reading.observations} received; none is read: no detail of this presentation has a "
            "verified LOINC code in the knowledge base."
        )
    confirmed = kb.detail(part.pid, "diagnosis_confirmed")
    if confirmed is not None:
        lines.append(
            f"- The Condition's verification status is not read as {confirmed.label.lower()}: the knowledge base "
            "defines that detail by a specific objective test, not by the status of a record entry."
        )
    return _section("How the record was read", lines)


def _citations(items: Iterable[Flag | PlanOption]) -> list[CitationRef]:
    """Every citation of the card's flags and options, in the order given, each once."""
    found: dict[str, CitationRef] = {}
    for item in items:
        statements = (*item.caveats, *item.risks) if isinstance(item, PlanOption) else ()
        for ref in (*item.basis.citations, *(r for s in statements for r in s.citations)):
            found.setdefault(ref.key, ref)
    return list(found.values())


# The two kinds of plan card


def _stop_summary(part: _Part) -> Callable[[int], str]:
    """The stop card's summary at each level of shortening (see _fit)."""
    stops = part.standing("stop")
    urgent = next((s for s in part.steps if s.kind == "urgent"), None)
    actions = [t.meaning for t in urgent.workup] if urgent else []
    flag_words = _joined([_words(f.id) for f in stops])

    def summary(level: int) -> str:
        head = f"Stop ({_opt(part.name, level)}): {flag_words}"
        if not actions:
            return f"{head}: {stops[0].meaning}" if level < 3 else head
        return f"{head}. Urgent: {_listed([_term(a, level) for a in actions], level)}"

    return summary


def _stop_card(part: _Part, reading: FhirReading, kb: KnowledgeBase) -> Card:
    stops = part.standing("stop")
    urgent = next((s for s in part.steps if s.kind == "urgent"), None)
    summary = _stop_summary(part)
    held = [w.name for w in part.plan.why_not if w.presentation == part.pid and w.withheld_by]
    others = [f for f in part.flags if f.status == "standing" and f.severity != "stop"]
    steps = [s for s in part.steps if s is not urgent]
    shown = [part.options[oid] for s in steps for oid in s.options]
    refs = _citations([*stops, *shown, *others])
    detail = _detail(
        [
            _section(urgent.title, _terms(urgent.workup)) if urgent and urgent.workup else [],
            _section("Why stop" if urgent and urgent.workup else "Stop", [_flag_line(f) for f in stops]),
            *(_step_lines(s, part) for s in steps),
            _section("Held back until then", [f"- {name}" for name in held]),
            _section("Also standing", [_flag_line(f) for f in others]),
            _cleared_lines(part),
            _record_lines(part, reading, kb),
            _basis_lines([f.basis for f in stops] + [o.basis for o in shown]),
            _purpose_lines(part),
            _section("Sources", _sources(refs)),
        ],
        part.plan.disclaimer,
    )
    return Card(
        uuid=card_uuid(part.pid, stop_key(stops[0].id), part.plan.knowledge_base.content_hash),
        summary=_fit(summary),
        detail=detail,
        indicator="critical",
        source=_source(refs, part.plan.knowledge_base.version),
    )


def _opt(name: str, level: int) -> str:
    return name if level == 0 else _short_name(name)


def _term(meaning: str, level: int) -> str:
    """A work-up term for a summary; from level 1 without its parenthesis (a list can hold commas, so
    the meaning is never cut at one)."""
    return meaning if level == 0 else meaning.split(" (", 1)[0]


def _ranked(options: Sequence[PlanOption], level: int) -> str:
    """Options with their strengths: "A (preferred) or B (equivalent)", "A, B or C (all alternatives)"."""
    names = [_opt(o.name, level) for o in options]
    strengths = {o.strength for o in options}
    if len(options) > 1 and len(strengths) == 1 and not any(" or " in n for n in names):
        word = STRENGTH_WORDS[options[0].strength] + ("s" if options[0].strength == "alternative" else "")
        both = "both" if len(options) == 2 else "all"
        return _listed(names, level, "or") + ("" if level >= 2 else f" ({both} {word})")
    labelled = [f"{n} ({STRENGTH_WORDS[o.strength]})" for n, o in zip(names, options)]
    return _listed(labelled, level, "or")


def _plan_summary(part: _Part, level: int) -> str:
    """The plan in one line; each level is shorter (see _fit): short names, "+N more", no fallback
    step, then the first step as a count."""
    steps = {s.kind: s for s in part.steps}
    parts = []
    first = steps.get("first")
    if first:
        items = [_opt(part.options[oid].name, level) for oid in first.options]
        items += [_term(t.meaning, level) for t in first.workup]
        many = "one check or correction" if len(items) == 1 else f"{len(items)} checks or corrections"
        parts.append("first " + (_listed(items, level) if level < 4 else many))
    if "treatment" in steps:
        options = [part.options[oid] for oid in steps["treatment"].options]
        top = [o for o in options if o.strength in TOP_RANK]
        parts.append(("then " if parts else "") + _ranked(top or options, level))
    if "if_that_fails" in steps and level < 3:
        later = [_opt(part.options[oid].name, level) for oid in steps["if_that_fails"].options]
        parts.append("if that fails " + _listed(later, level, "or"))
    if not parts:
        not_indicated = [_opt(o.name, level) for o in part.options.values() if o.strength == "not_indicated"]
        if not_indicated:
            parts.append(_listed(not_indicated, level) + " not indicated")
        elif part.needs:
            parts.append("the plan depends on details not recorded: " + _listed([n.label for n in part.needs], level))
        else:
            parts.append("caution: " + _listed([_words(f.id) for f in part.standing("caution")], level))
    return f"{_opt(part.name, level)}: " + "; ".join(parts)


def _plan_card(part: _Part, reading: FhirReading, kb: KnowledgeBase) -> Card:
    do_first = part.standing("do_first")
    cautions = part.standing("caution")
    options = part.options
    in_steps = {oid for s in part.steps for oid in s.options}
    not_indicated = [o for o in options.values() if o.id not in in_steps and o.strength == "not_indicated"]
    why_first = ["", "Why first:", "", *(_flag_line(f) for f in do_first)] if do_first else []
    step_blocks = [_step_lines(s, part) + (why_first if s.kind == "first" else []) for s in part.steps]
    if why_first and not any(s.kind == "first" for s in part.steps):  # a do-first flag with nothing to run
        step_blocks.insert(0, _section("Do first", [_flag_line(f) for f in do_first]))
    shared = [
        f"- {_joined([options[o].name for o in s.options])} share the top rank; what tips the choice: "
        + "; ".join(s.tips) + "."
        for s in part.plan.shared_decisions
        if s.presentation == part.pid
    ]
    caution_lines = []
    for f in cautions:
        capped = [o.name for o in options.values() if f.id in o.capped_by]
        caution_lines.append(_flag_line(f) + (f" Keeps {_joined(capped)} off the top rank." if capped else ""))
    ordered = [options[oid] for s in part.steps for oid in s.options] + not_indicated
    refs = _citations([*do_first, *ordered, *cautions])
    detail = _detail(
        [
            *step_blocks,
            _section("Not indicated", [line for o in not_indicated for line in _option_lines(o)]),
            _section("Shared decision", shared),
            _section("Caution", caution_lines),
            _needs_lines(part),
            _cleared_lines(part),
            _record_lines(part, reading, kb),
            _basis_lines([f.basis for f in (*do_first, *cautions)] + [o.basis for o in ordered]),
            _purpose_lines(part),
            _section("Sources", _sources(refs)),
        ],
        part.plan.disclaimer,
    )
    return Card(
        uuid=card_uuid(part.pid, PLAN, part.plan.knowledge_base.content_hash),
        summary=_fit(lambda level: _plan_summary(part, level)),
        detail=detail,
        indicator="warning" if do_first else "info",
        source=_source(refs, part.plan.knowledge_base.version),
    )


def card_summary(plan: Plan, pid: str) -> str | None:
    """The one-line summary of the card this presentation's part of the plan gets (None: no card), so
    that the cohort screen's table says what a clinician would see on the card."""
    info = next((i for i in plan.presentations if i.id == pid), None)
    if info is None:
        return None
    part = _Part(info.id, info.name, plan)
    if part.standing("stop"):
        return _fit(_stop_summary(part))
    if part.has_something_to_say():
        return _fit(lambda level: _plan_summary(part, level))
    return None


def plan_cards(plan: Plan, reading: FhirReading, kb: KnowledgeBase) -> list[Card]:
    """One card per presentation that the plan has something to say about; critical first."""
    cards = []
    for info in plan.presentations:
        part = _Part(info.id, info.name, plan)
        if part.standing("stop"):
            cards.append(_stop_card(part, reading, kb))
        elif part.has_something_to_say():
            cards.append(_plan_card(part, reading, kb))
    return sorted(cards, key=lambda c: INDICATOR_ORDER.index(c.indicator))


# What the service could not do


def _not_assessed_card(item: NotAssessed, reading: FhirReading, kb: KnowledgeBase, disclaimer: str) -> Card:
    pname = kb.presentations[item.presentation].name
    codes = ", ".join(reading.mapped_codes.get(item.presentation, ()))
    lines = [
        f"The record codes {pname} ({esc(codes)}), but the knowledge base cannot assess it from what "
        "the record holds:",
        "",
        *(f"- {esc(r)}" for r in item.reasons),
    ]
    if reading.age_note:
        lines += ["", f"Age: {esc(reading.age_note)}."]
    return Card(
        uuid=card_uuid(item.presentation, NOT_ASSESSED, kb.content_hash),
        summary=_clip(f"{pname} is coded in the record but could not be assessed", SUMMARY_MAX),
        detail=_detail([lines], disclaimer),
        indicator="warning",
        source=Source(label=f"Myotomy decision-support knowledge base {kb.version}"),
    )


def build_cards(
    plan: Plan | None,
    reading: FhirReading,
    not_assessed: list[NotAssessed],
    kb: KnowledgeBase,
) -> list[Card]:
    """The response's cards, critical first; an empty list when the record gives nothing to say."""
    disclaimer = plan.disclaimer if plan else DISCLAIMER
    cards = plan_cards(plan, reading, kb) if plan is not None else []
    cards += [_not_assessed_card(item, reading, kb, disclaimer) for item in not_assessed]
    return cards
