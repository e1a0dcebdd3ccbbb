"""CDS Hooks cards from an Assessment: a rendering of its basis records, nothing computed here.

Order: red flags first, then one card per candidate procedure (as the Assessment orders them),
then what the service could not do: presentations it could not assess, and the details the record
did not hold (only beside other cards for that presentation: a card of missing details alone is not
guidance). No guidance gives no card: conditions that map to nothing are counted by the app, not
shown. The uuid given here names the card's subject: uuid5 of the presentation, the procedure or
red-flag id and the knowledge-base content hash; the app makes it per patient (card_ids.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable
from uuid import UUID, uuid5

from models.assessment import Assessment, Basis, CitationRef, RedFlag, Statement, Suggestion
from models.cds_hooks import Card, Source
from models.presentation import Condition
from rules.knowledge_base import AGE_FACTS, KnowledgeBase
from rules.render import STRENGTH_LABEL, cite, value_text
from service.fhir_input import FhirReading

CARD_NAMESPACE = UUID("6e5aecb8-bdc5-4a0c-a8ae-865c30cf8dd9")  # fixed: changing it changes every card uuid
SOURCE_LABEL_MAX = 110
# Red flags shown as `critical`: those whose meaning in the vocabulary (copied from the clinical
# brief) calls them an emergency. Every other red flag is a `warning`. The knowledge base has no
# severity field; a test checks that each id here is in the vocabulary and says "emergency".
CRITICAL_RED_FLAGS = frozenset({"acute_compartment_syndrome", "bilious_vomiting"})


def card_uuid(presentation: str, item: str, kb_hash: str) -> UUID:
    return uuid5(CARD_NAMESPACE, f"{presentation}/{item}/{kb_hash}")


def known_cards(kb: KnowledgeBase) -> dict[UUID, str]:
    """Every card uuid this knowledge base can issue -> what the card is about (for feedback)."""
    items: dict[UUID, str] = {}
    for pid, pdef in kb.presentations.items():
        ids = [f"procedure:{p}" for p in (*pdef.procedures, *pdef.first_line)]
        ids += [f"red_flag:{f}" for f in kb.red_flags] + ["inputs_missing", "not_assessed"]
        for item in ids:
            items[card_uuid(pid, item, kb.content_hash)] = f"{pid}/{item}"
    return items


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")  # enough that record text can form no link, tag or table cell


def esc(text: str) -> str:
    """Markdown-escape text that comes from the record, so it shows as typed."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _summary(text: str) -> str:
    return text if len(text) < 140 else text[:138].rstrip() + "…"


def _short(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _source(basis: Basis, kb_version: str) -> Source:
    """The first citation with a URL, else the first citation, else the knowledge base itself."""
    with_url = [c for c in basis.citations if c.url]
    chosen = (with_url or list(basis.citations) or [None])[0]
    if chosen is None:
        return Source(label=f"Myotomy decision-support knowledge base {kb_version}")
    label = _short(f"{chosen.key}: {chosen.label}", SOURCE_LABEL_MAX)
    return Source(label=label, url=chosen.url) if chosen.url else Source(label=label)


def _sources(refs: Iterable[CitationRef]) -> list[str]:
    lines = []
    for ref in {r.key: r for r in refs}.values():
        year = f" ({ref.year})" if ref.year else ""
        link = f" <{ref.url}>" if ref.url and ref.url not in ref.label else ""
        lines.append(f"- [{ref.key}]{year} {ref.label}{link}")
    return lines


def _basis(basis: Basis) -> list[str]:
    lines = ["**Basis**", "", "- Rules: " + ", ".join(f"`{r}` v{basis.rule_versions[r]}" for r in basis.rule_ids)]
    if basis.inputs_used:
        lines.append("- Inputs used: " + ", ".join(f"{k} = {value_text(v)}" for k, v in basis.inputs_used.items()))
    if basis.inputs_missing:
        lines.append("- Not recorded (could change the answer): " + ", ".join(basis.inputs_missing))
    lines.append(f"- Intended user: {basis.intended_user}")
    lines.append(f"- Known limits: {basis.known_limits}")
    return lines


def _statements(title: str, items: tuple[Statement, ...]) -> list[str]:
    if not items:
        return []
    lines = [f"**{title}**", ""]
    for s in items:
        mark = " (uncertain)" if s.uncertain else ""
        lines.append(f"- {s.text}{mark} {cite(s.citations)}".rstrip())
    return [*lines, ""]


def _detail(blocks: list[list[str]], disclaimer: str) -> str:
    lines: list[str] = []
    for block in blocks:
        if block:
            lines += [*block, ""]
    lines.append(f"*{disclaimer}*")
    return "\n".join(lines)


def _red_flag_card(flag: RedFlag, a: Assessment, kb: KnowledgeBase) -> Card:
    pname = kb.presentations[flag.presentation].name
    rules = {r.id: r for r in kb.rules}
    workup_ids = _unique(w for rid in flag.basis.rule_ids for w in rules[rid].then.workup)
    workup = [f"- {t.meaning}" for t in a.workup if t.id in workup_ids]
    held = [kb.procedures[p].name for p in flag.concerns if p in kb.procedures]
    detail = _detail(
        [
            [f"**Red flag ({pname}):** {flag.meaning}."],
            [f"**Why:** {' '.join(flag.basis.statements)}"],
            [f"**Holds back:** {', '.join(held)}"] if held else [],
            ["**Work-up first**", "", *workup] if workup else [],
            _basis(flag.basis),
            ["**Sources**", "", *_sources(flag.basis.citations)],
        ],
        a.disclaimer,
    )
    return Card(
        uuid=card_uuid(flag.presentation, f"red_flag:{flag.id}", a.knowledge_base.content_hash),
        summary=_summary(f"Red flag ({pname}): {flag.id.replace('_', ' ')}"),
        detail=detail,
        indicator="critical" if flag.id in CRITICAL_RED_FLAGS else "warning",
        source=_source(flag.basis, a.knowledge_base.version),
    )


def _suggestion_card(s: Suggestion, a: Assessment) -> Card:
    first_line = [f"- {f.name} {cite(f.citations)}" for f in a.first_line if f.presentation == s.presentation]
    about = [f"**{s.name}: {STRENGTH_LABEL[s.strength]}**"]
    if s.target_muscle:
        about.append(f"- Target: {s.target_muscle}")
    if s.approaches:
        about.append(f"- Approaches: {', '.join(s.approaches)}")
    detail = _detail(
        [
            about,
            [f"**Why:** {s.reason}"],
            [f"**Held back by red flags:** {', '.join(f.replace('_', ' ') for f in s.held_back_by)}"]
            if s.held_back_by
            else [],
            ["**Work-up first**", "", *(f"- {w.meaning}" for w in s.workup_first)] if s.workup_first else [],
            ["**First-line options**", "", *first_line] if first_line else [],
            _statements("Risks", s.risks)[:-1],
            _statements("Caveats", s.caveats)[:-1],
            _basis(s.basis),
            ["**Sources**", "", *_sources(s.basis.citations)],
        ],
        a.disclaimer,
    )
    return Card(
        uuid=card_uuid(s.presentation, f"procedure:{s.procedure}", a.knowledge_base.content_hash),
        summary=_summary(s.summary),
        detail=detail,
        indicator=s.indicator,
        source=_source(s.basis, a.knowledge_base.version),
    )


def _detail_meaning(name: str, kb: KnowledgeBase, presentation: str) -> str:
    if name in AGE_FACTS:
        return "age, from Patient.birthDate"
    field = Condition.model_fields.get(name)
    meaning = field.description if field is not None and field.description else name.replace("_", " ")
    if name == "subtype":
        meaning += f" Choices: {', '.join(kb.presentations[presentation].subtypes)}."
    return meaning


def _missing_card(pid: str, missing: list[str], reading: FhirReading, a: Assessment, kb: KnowledgeBase) -> Card:
    pname = kb.presentations[pid].name
    codes = ", ".join(reading.mapped_codes.get(pid, ()))
    lines = [f"- `{name}`: {_detail_meaning(name, kb, pid)}" for name in missing]
    read = [
        f"This service read the coded diagnosis (ICD-10-CM {codes}) and the birth date. The rules for "
        f"{pname} also use these details, which the record did not hold in a form it can read:"
    ]
    notes = [
        f"- Age: {esc(reading.age_note)}." if reading.age_note else "",
        f"- Observations: {reading.observations} received; none is mapped, because the clinical brief "
        "gives no LOINC or SNOMED CT code for any detail the rules use.",
        "- The Condition's verification status is not read as `diagnosis_confirmed`: the knowledge base "
        "defines that detail by a specific objective test, not by the status of a record entry.",
    ]
    detail = _detail([read, lines, ["**How the record was read**", "", *(n for n in notes if n)]], a.disclaimer)
    return Card(
        uuid=card_uuid(pid, "inputs_missing", a.knowledge_base.content_hash),
        summary=_summary(f"{pname}: the record did not hold {len(missing)} details the rules use"),
        detail=detail,
        indicator="info",
        source=Source(label=f"Myotomy decision-support knowledge base {a.knowledge_base.version}"),
    )


def _missing_by_presentation(a: Assessment, kb: KnowledgeBase) -> dict[str, list[str]]:
    """inputs_missing of every basis, per presentation; the presentation's details if none fired."""
    out: dict[str, list[str]] = {p.id: [] for p in a.presentations}
    for item in (*a.red_flags, *a.suggestions):
        out[item.presentation] = _unique([*out[item.presentation], *item.basis.inputs_missing])
    for pid, missing in out.items():
        if not missing:
            out[pid] = [d for d in kb.presentations[pid].details if d != "prior_treatments"]
    return out


@dataclass(frozen=True)
class NotAssessed:
    """A presentation the record codes but the engine refused (e.g. the age it needs is unknown)."""

    presentation: str
    reasons: tuple[str, ...]


def _not_assessed_card(item: NotAssessed, reading: FhirReading, kb: KnowledgeBase, disclaimer: str) -> Card:
    pname = kb.presentations[item.presentation].name
    codes = ", ".join(reading.mapped_codes.get(item.presentation, ()))
    lines = [
        f"The record codes {pname} (ICD-10-CM {codes}), but the knowledge base cannot assess it from what "
        "the record holds:",
        "",
        *(f"- {esc(r)}" for r in item.reasons),
    ]
    if reading.age_note:
        lines += ["", f"Age: {esc(reading.age_note)}."]
    return Card(
        uuid=card_uuid(item.presentation, "not_assessed", kb.content_hash),
        summary=_summary(f"{pname} is coded in the record but could not be assessed"),
        detail=_detail([lines], disclaimer),
        indicator="warning",
        source=Source(label=f"Myotomy decision-support knowledge base {kb.version}"),
    )


def build_cards(
    assessment: Assessment | None,
    reading: FhirReading,
    not_assessed: list[NotAssessed],
    kb: KnowledgeBase,
) -> list[Card]:
    """The response's cards, red flags first; an empty list when the record gives nothing to say."""
    disclaimer = assessment.disclaimer if assessment else Assessment.model_fields["disclaimer"].default
    cards: list[Card] = []
    if assessment is not None:
        flags = sorted(assessment.red_flags, key=lambda f: f.id not in CRITICAL_RED_FLAGS)
        cards += [_red_flag_card(flag, assessment, kb) for flag in flags]
        cards += [_suggestion_card(s, assessment) for s in assessment.suggestions]
    cards += [_not_assessed_card(item, reading, kb, disclaimer) for item in not_assessed]
    if assessment is not None:
        advised = {item.presentation for item in (*assessment.red_flags, *assessment.suggestions)}
        for pid, missing in _missing_by_presentation(assessment, kb).items():
            if missing and pid in advised:
                cards.append(_missing_card(pid, missing, reading, assessment, kb))
    return cards
