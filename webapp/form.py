"""The input form, built from the details each presentation declares (`kb.details[pid]`).

Which details show, their words, tooltips, units, bounds and choices are knowledge, so a new detail
needs no UI code. Widget values live in st.session_state under `key(pid, detail)`; the input sent to
assess() is built from them and, for a teaching case or a link, they are built from its input.

Age and every detail sit in one st.form, read when Assess is pressed, so a value typed just before the
click is the value assessed (a field outside the form reruns the page on blur and can swallow the click).
Number fields carry no bounds in the browser: a browser-side bound makes an out-of-range value look
typed while the last valid one is silently kept. The range is in the help; the input model checks it
and a value out of range is refused, named by its field, in the form and at the top of the results (`input_errors`).
"""

from __future__ import annotations

from typing import Any, Iterable

import streamlit as st

from models.knowledge import Detail
from models.loader import KnowledgeBase
from models.plan import Need
from models.presentation import MAX_AGE_YEARS, OUTCOME_WORDS
from webapp import mirror
from webapp.text import esc, h, listing

NOT_RECORDED = "not recorded"
AGE_UNITS = ["years", "months", "weeks", "days"]
YES_NO = {True: "yes", False: "no"}
AGE_KEY, AGE_UNIT_KEY, PRESENTATIONS_KEY = "age.value", "age.unit", "presentations"
AGE_PLACE, AGE_MARKS_KEY = "age", "age_marks"  # the place of the age's messages (`errors_by_place`), its container


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
    together = f" together with {listing(need.together_labels)}" if need.together_labels else ""
    return f"Record {need.label}{together}: it decides {listing(need.decides_names, 'between')}."


def detail_widget(kb: KnowledgeBase, pid: str, detail: Detail) -> None:
    """One widget for a declared detail (its prompts and messages go to its presentation's place, `marks`)."""
    k = key(pid, detail.id)
    help_text = esc(detail.help) if detail.help else None
    shown = esc(label(detail))
    if detail.type == "yes_no":
        _pick(shown, YES_NO, k, help_text)
    elif detail.type == "choice":
        _pick(shown, {c.id: c.meaning for c in detail.choices}, k, help_text)
    elif detail.type in ("number", "integer"):
        whole = detail.type == "integer"
        help_text = " ".join(t for t in (help_text, esc(range_text(detail))) if t) or None
        st.number_input(shown, value=None, step=1 if whole else 0.5, key=k, help=help_text, placeholder=NOT_RECORDED)
    else:
        _treatments(kb, pid, detail, shown, help_text)


def marks(needs: Iterable[Need] = (), errors: Iterable[str] = ()) -> str:
    """For the top of a presentation's details (or under the age): the plan's "record this" prompts, then the
    check's messages, each naming its field, as HTML ('' when there is nothing to say). The answer carries it
    and the browser copies it into the form (webapp/mirror.py): one place per presentation, not one per field."""
    needs, errors = list(needs), list(errors)
    asks = "".join(f'<p class="mx-ask">{h(need_text(n))}</p>' for n in needs)
    refused = f'<div class="mx-refused">{"".join(f"<p>{h(m)}</p>" for m in errors)}</div>' if errors else ""
    return asks + refused


def _number(value: float | None) -> str:
    return "…" if value is None else f"{value:g}"


def range_text(detail: Detail) -> str:
    """'Range: 0 to 1000.' for a number detail with bounds (checked on the server, not in the browser)."""
    if detail.min is None and detail.max is None:
        return ""
    return f"Range: {_number(detail.min)} to {_number(detail.max)}{f' {detail.unit}' if detail.unit else ''}."


def age_widgets() -> None:
    """Age and its unit, inside the form: read with everything else when Assess is pressed; under the age,
    the place for its check's messages (`marks`, copied there from the answer)."""
    a1, a2 = st.columns([2, 1])
    with a1:
        st.number_input("Age", value=None, step=1.0, key=AGE_KEY, placeholder=NOT_RECORDED,
                        help=f"Infants: choose weeks or days. Range: 0 to {MAX_AGE_YEARS} years.")
        with st.container(key=AGE_MARKS_KEY):  # no space of its own while empty (webapp/results.py's style sheet)
            mirror.anchor(AGE_PLACE)
    a2.selectbox("Unit", AGE_UNITS, key=AGE_UNIT_KEY)


def _treatments(kb: KnowledgeBase, pid: str, detail: Detail, shown: str, help_text: str | None) -> None:
    """Treatments already given: the outcome of each of the presentation's options ('not recorded' = not given
    or not known). One picker per option, so the form needs no rerun to ask for an outcome."""
    st.markdown(f"**{shown}**", help=help_text)
    cols = st.columns(2)  # the form is half the page wide on a wide screen
    for index, oid in enumerate(kb.presentations[pid].options):
        with cols[index % 2]:
            _pick(esc(kb.options[oid].name), OUTCOME_WORDS, outcome_key(pid, detail.id, oid))


def condition_from_state(kb: KnowledgeBase, pid: str, state: Any) -> dict[str, Any]:
    """The input for one presentation from the widgets' values; details not recorded are left out.

    A treatment is given when its outcome is recorded; "not recorded" leaves it out.
    """
    out: dict[str, Any] = {"presentation": pid}
    for detail in kb.details[pid]:
        value = state.get(key(pid, detail.id))
        if detail.type == "treatments":
            given = []
            for oid in kb.presentations[pid].options:
                outcome = state.get(outcome_key(pid, detail.id, oid), NOT_RECORDED)
                if outcome not in (None, NOT_RECORDED):
                    given.append({"treatment": oid, "outcome": outcome})
            if given:
                out[detail.id] = given
        elif value is not None and value != NOT_RECORDED:
            out[detail.id] = value
    return out


def input_from_state(kb: KnowledgeBase, state: Any) -> dict[str, Any]:
    """The whole input (age and one condition per chosen presentation) from the widgets' values."""
    age = state.get(AGE_KEY)
    return {
        **({"age": {"value": age, "unit": state.get(AGE_UNIT_KEY) or "years"}} if age is not None else {}),
        "conditions": [condition_from_state(kb, pid, state) for pid in state.get(PRESENTATIONS_KEY) or []],
    }


def state_from_input(kb: KnowledgeBase, raw: dict[str, Any]) -> dict[str, Any]:
    """Widget values that reproduce an input (the inverse of input_from_state).

    Every widget of each presentation gets a value, "not recorded" included, so nothing left over from
    an earlier form shows beside the loaded values.
    """
    age = raw.get("age")
    values: dict[str, Any] = {
        AGE_KEY: float(age["value"]) if age else None,
        AGE_UNIT_KEY: age.get("unit", "years") if age else "years",
        PRESENTATIONS_KEY: [c["presentation"] for c in raw.get("conditions", []) if c.get("presentation") in kb.presentations],
    }
    for cond in raw.get("conditions", []):
        pid = cond.get("presentation")
        if pid not in kb.presentations:
            continue
        for detail in kb.details[pid]:
            value = cond.get(detail.id)
            if detail.type == "treatments":
                given = {p.get("treatment"): p.get("outcome") for p in value or ()}
                for oid in kb.presentations[pid].options:
                    values[outcome_key(pid, detail.id, oid)] = given.get(oid) or NOT_RECORDED
            elif detail.type in ("number", "integer"):
                values[key(pid, detail.id)] = None if value is None else int(value) if detail.type == "integer" else float(value)
            else:
                values[key(pid, detail.id)] = NOT_RECORDED if value is None else value
    return values


state_from_case = state_from_input


def errors_by_place(raw: dict[str, Any], errors: list[tuple[str, str]], kb: KnowledgeBase) -> dict[str, list[str]]:
    """Sort the input check's (field path, reason) pairs by where the form shows them.

    Places: "age" under the age, `pid` at the top of a presentation's details (a detail's message named by
    its label), "" for anything else (shown only at the top of the answer).
    """
    conds = raw.get("conditions", [])
    placed: dict[str, list[str]] = {}
    for loc, message in errors:
        parts = loc.split(".") if loc else []
        place = ""
        if parts[:1] == ["age"]:
            place = AGE_PLACE
        elif len(parts) >= 2 and parts[0] == "conditions" and parts[1].isdigit() and int(parts[1]) < len(conds):
            cond = conds[int(parts[1])]
            pid = cond.get("presentation", "")
            if len(parts) == 2:
                place = pid
            elif (detail := kb.detail(pid, parts[2])) is not None:
                place = pid
                message = f"{label(detail)}: {_treatment_message(kb, cond, parts, message)}"
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


def input_errors(kb: KnowledgeBase, raw: dict[str, Any], errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(the field in words, the reason) for each input error, for the "Not assessed" message.

    pydantic also reports an invalid condition as "conditions: ... at least 1 item" once the condition
    itself is rejected; that echo names no field and is left out.
    """
    named = any(loc.startswith("conditions.") for loc, _ in errors)
    return [(where(kb, raw, loc), message) for loc, message in errors
            if not (named and loc == "conditions" and "at least 1 item" in message)]


def where(kb: KnowledgeBase, raw: dict[str, Any], loc: str) -> str:
    """An input error's place in words: 'Age', 'Oesophageal achalasia · Symptom duration'."""
    parts = loc.split(".") if loc else []
    if parts[:1] == ["age"]:
        return "Age"
    conds = raw.get("conditions", [])
    if len(parts) >= 2 and parts[0] == "conditions" and parts[1].isdigit() and int(parts[1]) < len(conds):
        pid = conds[int(parts[1])].get("presentation")
        name = kb.presentations[pid].name if pid in kb.presentations else str(pid)
        if len(parts) == 2:
            return name
        detail = kb.detail(pid, parts[2]) if pid in kb.presentations else None
        return f"{name} · {detail.label if detail else parts[2]}"
    return loc or "input"
