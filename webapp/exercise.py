"""A class exercise: before the reveal the class picks the options it thinks are preferred and the flags it
expects; the reveal says which picks were right and why, from the plan.

The choices offered come from the knowledge base, not the plan (every option of the presentation, every
flag its rules can raise), so the list itself gives nothing away. Picks are counts, so a presenter can
tally a show of hands (one student is a count of one). They live in the browser session only: this
module reads a mapping of counts and writes nothing. "Right" is what the plan says, nothing more: an
option is a right pick when it has the plan's top rank (preferred or equivalent), a flag when it stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from models.loader import KnowledgeBase
from models.plan import Plan
from webapp.text import listing
from webapp.words import SEVERITY_WORDS, Words, strength

TOP = ("preferred", "equivalent")
NOTHING_YET = "nothing_yet"  # the pick "no treatment yet: a stop flag comes first"
NO_FLAG = "no_flag"  # the pick "no red flag stands"
NOTHING_YET_WORDS = "No treatment yet: a stop flag comes first"
NO_FLAG_WORDS = "No red flag"


@dataclass(frozen=True)
class Choice:
    """One thing the class can pick: `key` is unique on the page (presentation and id), `name` is in words."""

    key: str
    name: str


@dataclass(frozen=True)
class Verdict:
    """How a pick (or a right answer nobody picked) fared: what the plan says, and why, in words."""

    name: str
    votes: int
    right: bool
    says: str  # what the plan says: "Preferred", "An alternative", "stands", "does not stand"
    why: str


def _pids(raw: dict[str, Any]) -> list[str]:
    return [str(c.get("presentation")) for c in raw.get("conditions") or []]


def _picked_first(v: Verdict) -> tuple[bool, bool, int]:
    """The class's picks first (right ones, then the others, most votes first), then what it missed."""
    return (v.votes == 0, not v.right, -v.votes)


def option_choices(kb: KnowledgeBase, raw: dict[str, Any]) -> list[Choice]:
    """Every option the presentations' rules may place in a plan, then 'no treatment yet'."""
    w = Words(kb)
    found = [Choice(f"{pid}.{oid}", w.option(oid)) for pid in _pids(raw) if pid in kb.presentations
             for oid in kb.presentations[pid].options]
    return [*found, Choice(NOTHING_YET, NOTHING_YET_WORDS)]


def flag_choices(kb: KnowledgeBase, raw: dict[str, Any]) -> list[Choice]:
    """Every flag the presentations' rules can raise (and the one raised instead when its detail is blank),
    gravest first, then 'no red flag'."""
    ids: dict[str, None] = {}
    for pid in _pids(raw):
        for rule in kb.rules_for(pid):
            for effect in rule.then.flags:
                ids[effect.id] = None
                instead = kb.flags[effect.id].if_not_recorded
                if instead is not None:
                    ids[instead.flag] = None
    rank = {"stop": 0, "do_first": 1, "caution": 2}
    ordered = sorted(ids, key=lambda fid: rank[kb.flags[fid].severity])
    found = [Choice(fid, f"{SEVERITY_WORDS[kb.flags[fid].severity]}: {kb.flags[fid].meaning}") for fid in ordered]
    return [*found, Choice(NO_FLAG, NO_FLAG_WORDS)]


def _why_not_offered(plan: Plan, w: Words, pid: str, oid: str) -> str:
    """Why an option is not in the plan, in one or two sentences: the stop flag that withholds it, else the
    rule that came closest (fewest conditions unmet) and what it lacks; the page's "why not" lists the nearest."""
    held = [f.meaning for f in plan.standing_flags if f.severity == "stop" and oid in f.concerns and f.presentation == pid]
    item = next((i for i in plan.why_not if (i.presentation, i.option) == (pid, oid)), None)
    held += [w.flag(f) for f in (item.withheld_by if item else ()) if w.flag(f) not in held]
    if held:
        return f"Withheld while this stands: {listing(held)}."
    if item is None or not item.rules:
        return "No rule offers it for these details."
    closest = min(item.rules, key=lambda r: len(r.unmet))
    return f"{closest.statement} Not met: {'; '.join(w.unmet(pid, closest.rule_id, u) for u in closest.unmet)}."


def score_options(kb: KnowledgeBase, plan: Plan, votes: Mapping[str, int], raw: dict[str, Any]) -> list[Verdict]:
    """Each option picked at least once, and each top-rank option nobody picked, strongest first."""
    w = Words(kb)
    in_plan = {f"{o.presentation}.{o.id}": o for o in plan.options}
    out: list[Verdict] = []
    for choice in option_choices(kb, raw):
        count = int(votes.get(choice.key, 0))
        if choice.key == NOTHING_YET:
            if count or plan.stopped:
                why = ("A stop flag stands: treatment is withheld until it is addressed." if plan.stopped
                       else "No stop flag stands, so the plan names treatment options.")
                out.append(Verdict(choice.name, count, plan.stopped, "stopped" if plan.stopped else "not stopped", why))
            continue
        option = in_plan.get(choice.key)
        top = option is not None and option.strength in TOP
        if not count and not top:
            continue
        if option is None:
            pid, _, oid = choice.key.partition(".")
            out.append(Verdict(choice.name, count, False, "not in the plan", _why_not_offered(plan, w, pid, oid)))
        else:
            why = " ".join(dict.fromkeys((option.reason, *option.basis.statements)))
            out.append(Verdict(choice.name, count, top, strength(option.strength), why))
    return sorted(out, key=_picked_first)


def _flag_effect(kb: KnowledgeBase, flag: Any) -> str:
    """What a standing flag does to the plan, in one line (the flag box above gives the whole basis)."""
    w = Words(kb)
    if not flag.concerns:
        return f"{flag.basis.statements[0] if flag.basis.statements else ''} (see the flag above)".strip()
    verb = {"stop": "Withholds", "do_first": "Comes before", "caution": "Keeps off the top rank"}[flag.severity]
    return f"{verb}: {listing(w.option(o) for o in flag.concerns)} (see the flag above for why)."


def score_flags(kb: KnowledgeBase, plan: Plan, votes: Mapping[str, int], raw: dict[str, Any]) -> list[Verdict]:
    """Each flag picked at least once, and each standing flag nobody picked, gravest first."""
    standing = {f.id: f for f in plan.standing_flags}
    cleared = {f.id: f for f in plan.flags if f.status == "cleared"}
    out: list[Verdict] = []
    for choice in flag_choices(kb, raw):
        count = int(votes.get(choice.key, 0))
        if choice.key == NO_FLAG:
            if count or not standing:
                right = not standing
                out.append(Verdict(choice.name, count, right, "no flag stands" if right else "a flag stands",
                                   "No red flag stands for these details." if right else "A red flag stands (above)."))
            continue
        flag = standing.get(choice.key)
        if flag is not None:
            out.append(Verdict(choice.name, count, True, "stands", _flag_effect(kb, flag)))
        elif count:
            gone = cleared.get(choice.key)
            why = (f"Raised, then cleared: {gone.cleared_by or 'by the recorded details'}." if gone
                   else "Nothing recorded in this case raises it.")
            out.append(Verdict(choice.name, count, False, "does not stand", why))
    return sorted(out, key=_picked_first)
