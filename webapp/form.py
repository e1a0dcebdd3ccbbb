"""The input form, derived from the `Condition` model and the knowledge base.

Which fields show for a presentation is knowledge (`details` in data/presentations/), and each
widget follows the field's type, so a new detail needs no UI code.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

import streamlit as st

from models.presentation import Condition, Outcome
from rules.knowledge_base import KnowledgeBase

NOT_RECORDED = "not recorded"
AGE_UNITS = ["years", "months", "weeks", "days"]
OUTCOMES = list(typing.get_args(Outcome))


def key(presentation: str, field: str) -> str:
    return f"detail.{presentation}.{field}"


_ACRONYMS = {"gej": "GEJ", "lvot": "LVOT", "gmfcs": "GMFCS", "mmhg": "mmHg", "cm": "cm"}


def label(field: str) -> str:
    words = [_ACRONYMS.get(w, w) for w in field.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _kind(field: str) -> tuple[str, list[Any]]:
    """('bool'|'choice'|'int'|'float', choices) for a Condition field."""
    annotation = Condition.model_fields[field].annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    inner = args[0] if len(args) == 1 else annotation
    if typing.get_origin(inner) is Literal:
        return "choice", list(typing.get_args(inner))
    if inner is bool:
        return "bool", []
    if inner is int:
        return "int", []
    return "float", []


def _bounds(field: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for meta in Condition.model_fields[field].metadata:
        for attr, name in (("ge", "min_value"), ("gt", "min_value"), ("le", "max_value"), ("lt", "max_value")):
            if getattr(meta, attr, None) is not None:
                out[name] = getattr(meta, attr)
    return out


def detail_widget(kb: KnowledgeBase, presentation: str, field: str) -> None:
    """One widget; its value stays in st.session_state under key(presentation, field)."""
    k = key(presentation, field)
    help_text = Condition.model_fields[field].description
    if field == "subtype":
        st.selectbox(label(field), [NOT_RECORDED, *kb.presentations[presentation].subtypes], key=k, help=help_text)
        return
    kind, choices = _kind(field)
    if kind == "bool":
        st.selectbox(label(field), [NOT_RECORDED, "yes", "no"], key=k, help=help_text)
    elif kind == "choice":
        st.selectbox(label(field), [NOT_RECORDED, *choices], key=k, help=help_text)
    else:
        step = 1 if kind == "int" else 0.5
        bounds = {n: (int(v) if kind == "int" else float(v)) for n, v in _bounds(field).items()}
        st.number_input(label(field), value=None, step=step, key=k, help=help_text, placeholder=NOT_RECORDED, **bounds)


def prior_treatment_widgets(kb: KnowledgeBase, presentation: str) -> None:
    """One outcome choice per treatment of the presentation: static widgets, so they work in a form."""
    pdef = kb.presentations[presentation]
    st.markdown("**Prior treatments and their outcome**")
    cols = st.columns(3)
    for index, treatment in enumerate((*pdef.procedures, *pdef.first_line)):
        with cols[index % 3]:
            st.selectbox(kb.procedures[treatment].name, [NOT_RECORDED, *OUTCOMES], key=key(presentation, f"prior.{treatment}"))


def condition_from_state(kb: KnowledgeBase, presentation: str, state: Any) -> dict[str, Any]:
    """The input dict for one presentation from the widgets' values; unrecorded fields are left out."""
    out: dict[str, Any] = {"presentation": presentation}
    pdef = kb.presentations[presentation]
    for field in pdef.details:
        if field == "prior_treatments":
            priors = []
            for treatment in (*pdef.procedures, *pdef.first_line):
                outcome = state.get(key(presentation, f"prior.{treatment}"), NOT_RECORDED)
                if outcome != NOT_RECORDED:
                    priors.append({"treatment": treatment, "outcome": outcome})
            if priors:
                out["prior_treatments"] = priors
            continue
        value = state.get(key(presentation, field))
        if value is None or value == NOT_RECORDED:
            continue
        if field != "subtype" and _kind(field)[0] == "bool":
            value = value == "yes"
        out[field] = value
    return out


def state_from_case(kb: KnowledgeBase, case_input: dict[str, Any]) -> dict[str, Any]:
    """Widget values that reproduce a teaching case's input (the inverse of condition_from_state)."""
    values: dict[str, Any] = {}
    age = case_input.get("age")
    values["age.value"] = float(age["value"]) if age else None
    values["age.unit"] = age.get("unit", "years") if age else "years"
    values["presentations"] = [c["presentation"] for c in case_input.get("conditions", [])]
    for cond in case_input.get("conditions", []):
        pid = cond["presentation"]
        pdef = kb.presentations.get(pid)
        if pdef is None:
            continue
        for field in pdef.details:
            if field == "prior_treatments":
                given = {p["treatment"]: p["outcome"] for p in cond.get("prior_treatments", [])}
                for treatment in (*pdef.procedures, *pdef.first_line):
                    values[key(pid, f"prior.{treatment}")] = given.get(treatment, NOT_RECORDED)
                continue
            value = cond.get(field)
            if value is None:
                values[key(pid, field)] = None if _kind(field)[0] in ("int", "float") and field != "subtype" else NOT_RECORDED
            elif isinstance(value, bool):
                values[key(pid, field)] = "yes" if value else "no"
            else:
                values[key(pid, field)] = value
    return values
