"""The input form, built from the details each presentation declares (`kb.details[pid]`).

Which details show, their words, tooltips, units, bounds and choices are knowledge, so a new detail
needs no UI code. Widget values live in st.session_state under `key(pid, detail)`; the input sent to
assess() is built from them and, for a teaching case, they are built from its input.
"""

from __future__ import annotations

from typing import Any, Iterable

import streamlit as st

from models.knowledge import Detail
from models.loader import KnowledgeBase
from models.plan import Need
from models.presentation import OUTCOME_WORDS
from webapp.text import esc, listing

NOT_RECORDED = "not recorded"
AGE_UNITS = ["years", "months", "weeks", "days"]
YES_NO = {True: "yes", False: "no"}


def key(pid: str, detail: str) -> str:
    return f"detail.{pid}.{detail}"


def outcome_key(pid: str, detail: str, option: str) -> str:
    return f"detail.{pid}.{detail}.{option}"


def _pick(shown: str, words: dict[Any, str], k: str, help_text: str | None = None) -> None:
    """A selectbox whose first choice, 'not recorded', is a value of its own rather than an empty box:
    an empty (clearable) box would lose its value to the Escape key."""
    st.selectbox(shown, [NOT_RECORDED, *words], format_func=lambda v: words.get(v, str(v)), key=k, help=help_text)


def label(detail: Detail) -> str:
    return detail.label + (f" ({detail.unit})" if detail.unit else "")


def need_text(need: Need) -> str:
    """The prompt for a detail that would change the answer, in the form and in the results."""
    return f"Record {need.label}: it decides {listing(need.decides_names, 'between')}."


def detail_widget(kb: KnowledgeBase, pid: str, detail: Detail, *, need: Need | None = None,
                  errors: Iterable[str] = ()) -> None:
    """One widget for a declared detail, with the plan's prompt and any validation error under it."""
    k = key(pid, detail.id)
    help_text = esc(detail.help) if detail.help else None
    shown = esc(label(detail))
    if detail.type == "yes_no":
        _pick(shown, YES_NO, k, help_text)
    elif detail.type == "choice":
        _pick(shown, {c.id: c.meaning for c in detail.choices}, k, help_text)
    elif detail.type in ("number", "integer"):
        whole = detail.type == "integer"
        bounds = {name: (int(v) if whole else float(v)) for name, v in (("min_value", detail.min), ("max_value", detail.max))
                  if v is not None}
        st.number_input(shown, value=None, step=1 if whole else 0.5, key=k, help=help_text,
                        placeholder=NOT_RECORDED, **bounds)
    else:
        _treatments(kb, pid, detail, shown, help_text)
    if need is not None:
        st.caption(":blue[:material/arrow_upward: " + esc(need_text(need)) + "]")
    for message in errors:
        st.error(esc(message), icon=":material/error:")


def _treatments(kb: KnowledgeBase, pid: str, detail: Detail, shown: str, help_text: str | None) -> None:
    """Treatments already given: a multiselect of the presentation's options, then an outcome for each."""
    options = kb.presentations[pid].options
    chosen = st.multiselect(shown, options, format_func=lambda oid: kb.options[oid].name, key=key(pid, detail.id),
                            help=help_text, placeholder="none recorded")
    for oid in chosen:
        _pick(f"Outcome of {esc(kb.options[oid].name)}", OUTCOME_WORDS, outcome_key(pid, detail.id, oid))


def condition_from_state(kb: KnowledgeBase, pid: str, state: Any) -> dict[str, Any]:
    """The input for one presentation from the widgets' values; details not recorded are left out.

    A treatment chosen without an outcome is sent as it is, so that the input check names it
    instead of the form dropping it silently.
    """
    out: dict[str, Any] = {"presentation": pid}
    for detail in kb.details[pid]:
        value = state.get(key(pid, detail.id))
        if detail.type == "treatments":
            given = []
            for oid in value or ():
                outcome = state.get(outcome_key(pid, detail.id, oid), NOT_RECORDED)
                given.append({"treatment": oid, **({"outcome": outcome} if outcome != NOT_RECORDED else {})})
            if given:
                out[detail.id] = given
        elif value is not None and value != NOT_RECORDED:
            out[detail.id] = value
    return out


def input_from_state(kb: KnowledgeBase, state: Any) -> dict[str, Any]:
    age = state.get("age.value")
    return {
        **({"age": {"value": age, "unit": state.get("age.unit", "years")}} if age is not None else {}),
        "conditions": [condition_from_state(kb, pid, state) for pid in state.get("presentations", [])],
    }


def state_from_case(kb: KnowledgeBase, case_input: dict[str, Any]) -> dict[str, Any]:
    """Widget values that reproduce a teaching case's input (the inverse of input_from_state)."""
    age = case_input.get("age")
    values: dict[str, Any] = {
        "age.value": float(age["value"]) if age else None,
        "age.unit": age.get("unit", "years") if age else "years",
        "presentations": [c["presentation"] for c in case_input.get("conditions", []) if c.get("presentation") in kb.presentations],
    }
    for cond in case_input.get("conditions", []):
        pid = cond.get("presentation")
        if pid not in kb.presentations:
            continue
        for detail in kb.details[pid]:
            value = cond.get(detail.id)
            if detail.type == "treatments":
                given = {p["treatment"]: p.get("outcome") for p in value or ()}
                values[key(pid, detail.id)] = [oid for oid in given if oid in kb.presentations[pid].options]
                for oid in kb.presentations[pid].options:
                    values[outcome_key(pid, detail.id, oid)] = given.get(oid) or NOT_RECORDED
            elif detail.type in ("number", "integer"):
                values[key(pid, detail.id)] = None if value is None else int(value) if detail.type == "integer" else float(value)
            else:
                values[key(pid, detail.id)] = NOT_RECORDED if value is None else value
    return values


def errors_by_place(raw: dict[str, Any], errors: list[tuple[str, str]], kb: KnowledgeBase) -> dict[str, list[str]]:
    """Sort the input check's (field path, reason) pairs by where the form shows them.

    Places: `key(pid, detail)` beside a detail, "age" beside the age, `pid` under a presentation's
    heading, "" for anything else (shown above the Assess button).
    """
    conds = raw.get("conditions", [])
    placed: dict[str, list[str]] = {}
    for loc, message in errors:
        parts = loc.split(".") if loc else []
        place = ""
        if parts[:1] == ["age"]:
            place = "age"
        elif len(parts) >= 2 and parts[0] == "conditions" and parts[1].isdigit() and int(parts[1]) < len(conds):
            cond = conds[int(parts[1])]
            pid = cond.get("presentation", "")
            if len(parts) == 2:
                place = pid
            elif kb.detail(pid, parts[2]) is not None:
                place = key(pid, parts[2])
                message = _treatment_message(kb, cond, parts, message)
        placed.setdefault(place, []).append(message if place else f"{loc or 'input'}: {message}")
    return placed


def _treatment_message(kb: KnowledgeBase, cond: dict[str, Any], parts: list[str], message: str) -> str:
    """'Pneumatic dilation, outcome: Field required' for an error inside the list of treatments."""
    if len(parts) < 4 or not parts[3].isdigit():
        return message
    items = cond.get(parts[2]) or []
    index = int(parts[3])
    treatment = items[index].get("treatment") if index < len(items) and isinstance(items[index], dict) else None
    name = kb.options[treatment].name if treatment in kb.options else f"item {index + 1}"
    field = " ".join(parts[4:]) or "treatment"
    return f"{name}, {field}: {message}"
