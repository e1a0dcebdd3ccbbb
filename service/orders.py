"""order-select and order-sign: does a draft order fit the plan? Answered from the same `assess()`.

A draft order is read only when it is a ServiceRequest coded in SNOMED CT with a procedure code that
an option of the knowledge base declares (`snomed_procedures:` in data/options/*.yaml, verified codes
only). For each such order and each presentation the record codes that offers the option, the plan
decides:
- it fits (no card) when the option is top-rank (preferred or equivalent), in the treatment step, and
  no stop or do-first flag that concerns it stands;
- otherwise one warning card (critical when a stop flag stands) that says why, in the plan's words:
  a stop flag and its urgent work-up, a do-first flag and its work-up, first-line care not recorded
  (the option comes "if that fails" or "later"), the option not offered at all, or a lower rank.
  Its suggestions are real CDS Hooks 2.0 actions: create a ServiceRequest for each work-up the plan
  puts first (draft, coded by text: no SNOMED CT code is verified for the work-up terms), and delete
  the draft order (`resourceId` ServiceRequest/<id>).
Nothing is guessed: an order with no listed code, or for an option no coded presentation offers, gets
no card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from models.cds_hooks import Action, Card, CardSuggestion, Source
from models.knowledge import TOP_RANK
from models.loader import KnowledgeBase
from models.plan import Flag, Plan, PlanOption, Term
from models.terminology import SNOMED_CT, system_of
from service.cards import SUMMARY_MAX, _clip, card_uuid, esc

ORDER_HOOKS = ("order-select", "order-sign")


@dataclass(frozen=True)
class DraftOrder:
    """A draft ServiceRequest whose SNOMED CT code names one or more options."""

    id: str
    code: str
    options: tuple[str, ...]


def procedure_index(kb: KnowledgeBase) -> dict[str, tuple[str, ...]]:
    """SNOMED CT procedure code -> the options that declare it."""
    index: dict[str, list[str]] = {}
    for option in kb.options.values():
        for entry in option.snomed_procedures:
            for code in (entry.code, *(d.code for d in entry.descendants)):
                index.setdefault(code, []).append(option.id)
    return {code: tuple(ids) for code, ids in index.items()}


def draft_orders(bundle: Any, selections: Iterable[str] | None, index: dict[str, tuple[str, ...]]) -> list[DraftOrder]:
    """The draft ServiceRequests (only the selected ones, for order-select) that name an option."""
    wanted = None if selections is None else {s.split("/")[-1] for s in selections if isinstance(s, str)}
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    found: list[DraftOrder] = []
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "ServiceRequest":
            continue
        rid = resource.get("id")
        if not isinstance(rid, str) or (wanted is not None and rid not in wanted):
            continue
        concept = resource.get("code")
        codings = concept.get("coding") if isinstance(concept, dict) else None
        for coding in codings if isinstance(codings, list) else ():
            if not isinstance(coding, dict) or system_of(coding.get("system")) != SNOMED_CT:
                continue
            code = coding.get("code")
            if isinstance(code, str) and code.strip() in index:
                found.append(DraftOrder(rid, code.strip(), index[code.strip()]))
                break
    return found


@dataclass(frozen=True)
class Verdict:
    """Why an ordered option does not fit the plan, with what to do first."""

    severity: str  # "critical" or "warning"
    why: str
    workup: tuple[Term, ...]
    flags: tuple[Flag, ...]


def verdict(plan: Plan, pid: str, option_id: str) -> Verdict | None:
    """None when the order fits the plan; else why not."""
    standing = [f for f in plan.standing_flags if f.presentation == pid]
    stops = [f for f in standing if f.severity == "stop"]
    steps = [s for s in plan.steps if s.presentation == pid]
    if stops:
        urgent = tuple(t for s in steps if s.kind == "urgent" for t in s.workup)
        urgent = urgent or tuple(t for f in stops for t in f.workup)
        names = ", ".join(f.meaning for f in stops)
        why = f"a stop flag stands ({names}): nothing else applies until it is addressed"
        return Verdict("critical", why, urgent, tuple(stops))
    option: PlanOption | None = next((o for o in plan.options if o.presentation == pid and o.id == option_id), None)
    after = option.after if option else ()
    do_first = [f for f in standing if f.severity == "do_first" and (option_id in f.concerns or f.id in after)]
    first = tuple(t for s in steps if s.kind == "first" for t in s.workup)
    if do_first:
        work = tuple(dict.fromkeys(t for f in do_first for t in f.workup)) or first
        names = ", ".join(f.meaning for f in do_first)
        return Verdict("warning", f"check or correct first: {names}", work, tuple(do_first))
    if option is None:
        needs = [n.label for n in plan.needs if n.presentation == pid and option_id in n.decides]
        why = "the plan does not offer it from what the record holds"
        return Verdict("warning", why + (f" (not recorded: {', '.join(needs)})" if needs else ""), first, ())
    if option.strength == "not_indicated":
        return Verdict("warning", f"not indicated: {option.reason}", (), ())
    if option.step == "if_that_fails" or option.strength == "later":
        first_names = [o.name for s in steps if s.kind in ("first", "treatment") for o in plan.options
                       if o.id in s.options and o.presentation == pid and o.strength in TOP_RANK]
        earlier = "; ".join(first_names) or "the step before"
        return Verdict("warning", f"first-line care is not recorded: it comes if {earlier} fails", first, ())
    if option.strength not in TOP_RANK:
        return Verdict("warning", f"ranked {option.strength.replace('_', ' ')} in the plan: {option.reason}", (), ())
    return None


def _work_request(term: Term, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {"text": term.meaning},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def order_card(
    plan: Plan, pid: str, order: DraftOrder, option_id: str, found: Verdict, patient_id: str, kb: KnowledgeBase
) -> Card:
    """The warning (or critical) card for one draft order that does not fit the plan."""
    option = kb.options[option_id]
    pname = kb.presentations[pid].name
    summary = _clip(f"{option.name} ordered ({pname}): {found.why}", SUMMARY_MAX)
    suggestions = [
        CardSuggestion(
            label=_clip(f"Order first: {term.meaning}", 80),
            uuid=card_uuid(pid, f"order:{option_id}:workup:{term.id}", kb.content_hash),
            isRecommended=True,
            actions=(Action(type="create", description=f"Create a draft order: {term.meaning}",
                            resource=_work_request(term, patient_id)),),
        )
        for term in found.workup
    ]
    suggestions.append(
        CardSuggestion(
            label=_clip(f"Remove the draft order for {option.name}", 80),
            uuid=card_uuid(pid, f"order:{option_id}:remove", kb.content_hash),
            actions=(Action(type="delete", description=f"Delete the draft order ServiceRequest/{order.id}",
                            resourceId=f"ServiceRequest/{order.id}"),),
        )
    )
    lines = [
        f"The draft order (SNOMED CT {esc(order.code)}) is for **{option.name}**, for {pname}.",
        "",
        f"The plan from the record says: {found.why}.",
    ]
    if found.workup:
        lines += ["", "**Before it**", "", *(f"- {t.meaning}" for t in found.workup)]
    for flag in found.flags:
        lines += ["", f"- {flag.meaning}: " + " ".join(flag.basis.statements)]
    lines += ["", f"*{plan.disclaimer}*"]
    return Card(
        uuid=card_uuid(pid, f"order:{option_id}", kb.content_hash),
        summary=summary,
        detail="\n".join(lines),
        indicator=found.severity,
        source=Source(label=f"Myotomy decision-support knowledge base {kb.version}"),
        suggestions=tuple(suggestions),
        selectionBehavior="any",
    )


def order_cards(plan: Plan | None, orders: list[DraftOrder], patient_id: str, kb: KnowledgeBase) -> list[Card]:
    """A card for each draft order that does not fit the plan of a presentation that offers its option."""
    if plan is None:
        return []
    cards = []
    coded = [info.id for info in plan.presentations]
    for order in orders:
        for option_id in order.options:
            for pid in coded:
                if option_id not in kb.presentations[pid].options:
                    continue
                found = verdict(plan, pid, option_id)
                if found is not None:
                    cards.append(order_card(plan, pid, order, option_id, found, patient_id, kb))
    return sorted(cards, key=lambda c: c.indicator != "critical")
