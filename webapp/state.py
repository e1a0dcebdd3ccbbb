"""The form in the URL: a link carries the presentations and every detail entered, and opens the same plan.

One query parameter per entered value, named so a reader can check it:

    ?p=achalasia&age=45&achalasia.subtype=type_iii&achalasia.diagnosis_confirmed=yes
     &achalasia.prior_treatments.pneumatic_dilation=failed

`p` repeats for several presentations; `age_unit` is given when it is not years; yes/no details are
yes/no; a detail left blank is left out. The names are the details each presentation declares
(`kb.details[pid]`). Reading is strict: an unknown parameter, presentation, detail or choice, or a number
that is not one, is reported in words and never dropped silently. A number out of range is read as it
is, and the input check refuses it as it would from the form.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from models.loader import KnowledgeBase
from models.presentation import OUTCOME_WORDS
from webapp.form import AGE_UNITS, state_from_input

PRESENTATION = "p"
AGE = "age"
AGE_UNIT = "age_unit"
PRINT = "print"  # the print view, read by the app, not part of the form
YES_NO = {"yes": True, "no": False}


def _number_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def to_query(kb: KnowledgeBase, raw: dict[str, Any]) -> dict[str, str | list[str]]:
    """Query parameters for an input (as the form, a link or a teaching case gives it)."""
    query: dict[str, str | list[str]] = {}
    conditions = raw.get("conditions") or []
    if conditions:
        query[PRESENTATION] = [str(c.get("presentation")) for c in conditions]
    age = raw.get("age")
    if age:
        query[AGE] = _number_text(age.get("value"))
        if age.get("unit", "years") != "years":
            query[AGE_UNIT] = str(age["unit"])
    for cond in conditions:
        pid = cond.get("presentation")
        for field, value in cond.items():
            if field == "presentation" or value is None:
                continue
            detail = kb.detail(pid, field) if pid in kb.presentations else None
            if detail is not None and detail.type == "treatments":
                for given in value:
                    query[f"{pid}.{field}.{given['treatment']}"] = str(given.get("outcome"))
            elif isinstance(value, bool):
                query[f"{pid}.{field}"] = "yes" if value else "no"
            else:
                query[f"{pid}.{field}"] = _number_text(value)
    return query


def read(query_params: Any) -> dict[str, list[str]]:
    """Every parameter with all its values, from st.query_params (or a plain mapping, as in tests)."""
    if hasattr(query_params, "get_all"):
        return {k: list(query_params.get_all(k)) for k in query_params}
    return {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in dict(query_params).items()}


def from_query(kb: KnowledgeBase, params: Mapping[str, list[str]]) -> tuple[dict[str, Any], list[str]]:
    """(the input, the problems in words) from query parameters; the input holds what could be read."""
    problems: list[str] = []
    pids: list[str] = []
    for pid in params.get(PRESENTATION, []):
        if pid in kb.presentations:
            if pid not in pids:
                pids.append(pid)
        else:
            problems.append(f"p={pid}: not a presentation this knowledge base knows")
    conditions: dict[str, dict[str, Any]] = {pid: {"presentation": pid} for pid in pids}

    for name, values in params.items():
        if name in (PRESENTATION, AGE, AGE_UNIT, PRINT):
            continue
        values = [v for v in values if v != ""]  # an empty value means "not recorded"
        if not values:
            continue
        if len(values) > 1:
            problems.append(f"{name}: given {len(values)} times ({', '.join(values)}); give it once")
            continue
        text = values[0]
        pid, _, rest = name.partition(".")
        if pid not in kb.presentations or not rest:
            problems.append(f"{name}={text}: not a parameter of this form")
            continue
        pname = kb.presentations[pid].name
        if pid not in conditions:
            problems.append(f"{name}={text}: {pname} is not among the presentations (p)")
            continue
        field, _, treatment = rest.partition(".")
        detail = kb.detail(pid, field)
        if detail is None or (detail.type == "treatments") != bool(treatment):
            problems.append(f"{name}={text}: not a detail of {pname}")
            continue
        if detail.type == "treatments":
            if treatment not in kb.presentations[pid].options:
                problems.append(f"{name}={text}: not a treatment of {pname}")
            elif text not in OUTCOME_WORDS:
                problems.append(f"{name}={text}: the outcome is one of {', '.join(OUTCOME_WORDS)}")
            else:
                conditions[pid].setdefault(field, []).append({"treatment": treatment, "outcome": text})
            continue
        value, problem = _value(detail, text)
        if problem:
            problems.append(f"{name}={text}: {problem}")
        else:
            conditions[pid][field] = value

    raw: dict[str, Any] = {}
    age_text = [v for v in params.get(AGE, []) if v != ""]
    unit_text = [v for v in params.get(AGE_UNIT, []) if v != ""]
    unit = unit_text[0] if len(unit_text) == 1 else "years"
    if len(age_text) > 1 or len(unit_text) > 1:
        problems.append(f"{AGE}, {AGE_UNIT}: give each once")
    elif unit not in AGE_UNITS:
        problems.append(f"{AGE_UNIT}={unit}: the unit is one of {', '.join(AGE_UNITS)}")
    elif age_text:
        number = _float(age_text[0])
        if number is None:
            problems.append(f"{AGE}={age_text[0]}: not a number")
        else:
            raw["age"] = {"value": number, "unit": unit}
    if not pids:
        problems.append("no presentation is named (p=…), so there is nothing to assess")
    raw["conditions"] = list(conditions.values())
    return raw, problems


def _float(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _value(detail: Any, text: str) -> tuple[Any, str | None]:
    if detail.type == "yes_no":
        return (YES_NO[text], None) if text in YES_NO else (None, "not yes or no")
    if detail.type == "choice":
        allowed = [c.id for c in detail.choices]
        return (text, None) if text in allowed else (None, f"not one of {', '.join(allowed)}")
    number = _float(text)
    if number is None:
        return None, "not a number"
    if detail.type == "integer":
        return (int(number), None) if number.is_integer() else (None, "not a whole number")
    return number, None


# --- Loading an input into the form (a teaching case, Next/Previous, a link) -------------------------
#
# A load writes every widget's value into session state before the widgets exist in a run. Streamlit
# lets a value set in the running script win over the browser's, but if that run is interrupted by
# another request from the browser (which still shows the old form), the next run would take the
# browser's stale values: the case is lost, the details form is empty and Assess is disabled. So a
# load stays pending, and is applied again at the start of each run, until a run has drawn the form
# with it (`form_drawn`).

PENDING = "pending_load"
CASE_KEY = "teaching_case"


def request_load(session: Any, kb: KnowledgeBase, raw: dict[str, Any], *, assess: bool, case: str | None = None) -> None:
    """Ask for `raw` to fill the form (and to be assessed at once when `assess`); `case` is the teaching case shown."""
    session[PENDING] = {"values": {**state_from_input(kb, raw), CASE_KEY: case}, "input": raw if assess else None}


def apply_pending(session: Any, now: Any) -> bool:
    """At the start of a run, before any widget: put a pending load into the widgets' state. True if one was."""
    pending = session.get(PENDING)
    if not pending:
        return False
    session.update(pending["values"])
    if pending["input"] is not None:
        session["assessment_input"] = pending["input"]
        session["assessed_at"] = now
        session["scroll_to_results"] = True
    else:
        session.pop("assessment_input", None)
    session["revealed"] = False
    return True


def form_drawn(session: Any) -> None:
    """Every input widget of this run has been created with the loaded values: the load is done."""
    session.pop(PENDING, None)


def same_input(kb: KnowledgeBase, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two inputs describe the same patient (45 and 45.0 alike); False if either is invalid."""
    try:
        return kb.input_model.model_validate(a).model_dump() == kb.input_model.model_validate(b).model_dump()
    except ValueError:
        return False
