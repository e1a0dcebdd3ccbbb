"""What a plan was made from, in words: the inputs as entered, when, and by which knowledge base.

`inputs_as_entered` is the one builder of the inputs table: the page and both exports use it, so what
a printed report says was entered is what the page said. It reads the input (as the form, a link or a
teaching case gives it), never the plan, so it does not change when the output model does. Every
detail of each chosen presentation is listed, with "not recorded" for a blank: a blank is not "no"
and not "not tried".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Callable

from models.loader import PRIOR_PREFIX, KnowledgeBase
from webapp.form import NOT_RECORDED, label
from webapp.words import Words

PATIENT = "Patient"
PRIOR = "Previous treatment: "


@dataclass(frozen=True)
class Entered:
    """One row of the inputs table: where (the patient or a presentation), the detail, its value in words."""

    presentation: str
    detail: str
    value: str


def _age(age: Any) -> str:
    if not isinstance(age, dict) or age.get("value") is None:
        return NOT_RECORDED
    value = age["value"]
    shown = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    return f"{shown} {age.get('unit', 'years')}"


def inputs_as_entered(kb: KnowledgeBase, raw: dict[str, Any]) -> list[Entered]:
    w = Words(kb)
    conditions = raw.get("conditions") or []
    names = [w.presentation(str(c.get("presentation"))) for c in conditions]
    rows = [Entered(PATIENT, "Presentations", ", ".join(names) or NOT_RECORDED), Entered(PATIENT, "Age", _age(raw.get("age")))]
    for cond, name in zip(conditions, names):
        pid = cond.get("presentation")
        details = kb.details.get(pid, ())
        for detail in details:
            value = cond.get(detail.id)
            if detail.type == "treatments":
                given = {p.get("treatment"): p.get("outcome") for p in value or () if isinstance(p, dict)}
                for oid in (*kb.presentations[pid].options, *(t for t in given if t not in kb.presentations[pid].options)):
                    outcome = given.get(oid)
                    shown = NOT_RECORDED if outcome is None else w.value(pid, PRIOR_PREFIX + str(oid), outcome)
                    rows.append(Entered(name, PRIOR + w.option(str(oid)), shown))
            else:
                rows.append(Entered(name, label(detail), NOT_RECORDED if value is None else w.value(pid, detail.id, value)))
        # anything else the input carries is shown too: nothing entered goes unlisted
        declared = {d.id for d in details}
        rows += [Entered(name, str(field), str(value)) for field, value in cond.items()
                 if field != "presentation" and field not in declared]
    return rows


def recorded_count(rows: list[Entered]) -> tuple[int, int]:
    """(details recorded, details in all) among the presentations' rows."""
    details = [r for r in rows if r.presentation != PATIENT]
    return sum(r.value != NOT_RECORDED for r in details), len(details)


@dataclass(frozen=True)
class Summary:
    """One line of the page's at-a-glance summary: a presentation, what was recorded, what was not."""

    presentation: str
    recorded: tuple[str, ...]
    not_recorded: tuple[str, ...]


def summary(rows: list[Entered]) -> list[Summary]:
    """The inputs table folded into a few lines, from the same rows: nothing in it, blanks included, is dropped."""
    out: list[Summary] = []
    for name in dict.fromkeys(r.presentation for r in rows):
        mine = [r for r in rows if r.presentation == name and not (name == PATIENT and r.detail == "Presentations")]
        recorded = tuple(f"{r.detail}: {r.value}" for r in mine if r.value != NOT_RECORDED)
        blank = [r.detail for r in mine if r.value == NOT_RECORDED]
        priors = [d for d in blank if d.startswith(PRIOR)]
        blank = [d for d in blank if not d.startswith(PRIOR)]
        if priors:  # named in the table; here one entry for them all
            every = len(priors) == sum(r.detail.startswith(PRIOR) for r in mine)
            blank.append(f"previous treatments (all {len(priors)})" if every else f"the other previous treatments ({len(priors)})")
        out.append(Summary(name, recorded, tuple(blank)))
    return out


def assessed_at_text(at: datetime) -> str:
    """Local time to the minute with its UTC offset: '2026-12-01 10:12 (UTC+01:00)'."""
    offset = at.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "local time"
    return f"{at:%Y-%m-%d %H:%M} ({offset})"


def file_name(raw: dict[str, Any], at: datetime, extension: str) -> str:
    """What and when: 'myotomy-achalasia+strabismus-2026-12-01T1012.md'."""
    ids = "+".join(str(c.get("presentation")) for c in raw.get("conditions") or []) or "plan"
    return f"myotomy-{ids}-{at:%Y-%m-%dT%H%M}.{extension}"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table_markdown(rows: list[Entered], cell: Callable[[str], str] = _cell) -> str:
    """The inputs as a Markdown table; the page passes its own escape (webapp.text.esc) as `cell`."""
    lines = ["| Presentation | Detail | As entered |", "|---|---|---|"]
    return "\n".join(lines + [f"| {cell(r.presentation)} | {cell(r.detail)} | {cell(r.value)} |" for r in rows])


def provenance_markdown(kb: KnowledgeBase, raw: dict[str, Any], at: datetime) -> str:
    """The block a Markdown report opens with: when, which knowledge base, the inputs as entered."""
    return (f"Assessed: {assessed_at_text(at)}  \nKnowledge base: version {kb.version}, content hash `{kb.content_hash}`\n\n"
            f"## Inputs as entered\n\n{table_markdown(inputs_as_entered(kb, raw))}\n")


def markdown_report(kb: KnowledgeBase, raw: dict[str, Any], at: datetime, body: str) -> str:
    """The report `body` (rules.render.to_markdown) with the provenance block after its title."""
    title, sep, rest = body.partition("\n")
    if not title.startswith("# "):
        title, sep, rest = "# Myotomy decision support: the plan", "\n", body
    return f"{title}\n\n{provenance_markdown(kb, raw, at)}{sep}{rest}"


def json_report(kb: KnowledgeBase, raw: dict[str, Any], at: datetime, plan: dict[str, Any]) -> str:
    """One JSON document: when, which knowledge base, the input, the inputs in words, and the plan."""
    return json.dumps(
        {
            "assessed_at": at.isoformat(timespec="seconds"),
            "knowledge_base": {"version": kb.version, "content_hash": kb.content_hash},
            "input": raw,
            "inputs_as_entered": [asdict(r) for r in inputs_as_entered(kb, raw)],
            "plan": plan,
        },
        indent=2,
    )
