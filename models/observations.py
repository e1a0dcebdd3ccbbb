"""Number details read from FHIR Observations by LOINC code, as the knowledge declares (`loinc:` of a detail).

Read from the JSON as it came, so an Observation no detail asks for is never parsed into a model. A
value is used only when everything about it is plain: a LOINC coding (by URI or OID) the detail lists,
status final, amended or corrected, a valueQuantity whose UCUM code is the one declared, a number within
the detail's bounds (a whole number for an integer detail), and an effective date (or `issued`) no
later than the call and within the declared window. The most recent such value wins; anything else is
"not recorded". Needs no web framework, so a cohort screen reads Observations the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable, Mapping

from models.knowledge import Detail, LoincSource

LOINC = "http://loinc.org"
LOINC_SYSTEMS = frozenset({LOINC, "urn:oid:2.16.840.1.113883.6.1"})
UCUM = "http://unitsofmeasure.org"
READ_STATUSES = frozenset({"final", "amended", "corrected"})


@dataclass(frozen=True)
class Observed:
    """A detail's value as read from one Observation."""

    detail: Detail
    value: float | int
    code: str
    when: date

    def shown(self) -> str:
        unit = f" {self.detail.unit}" if self.detail.unit else ""
        return f"{self.detail.label} {self.value:g}{unit} (LOINC {self.code}, {self.when.isoformat()})"


Wanted = dict[str, list[tuple[str, Detail, LoincSource]]]  # LOINC code -> (presentation, detail, how)


def wanted(details: Mapping[str, Iterable[Detail]]) -> Wanted:
    """The LOINC codes the given presentations' details declare."""
    out: Wanted = {}
    for pid, items in details.items():
        for detail in items:
            for how in detail.loinc:
                out.setdefault(how.code, []).append((pid, detail, how))
    return out


def _day(value: Any) -> date | None:
    """The date of a FHIR dateTime or instant given at least to the day; None otherwise."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _when(resource: dict[str, Any]) -> date | None:
    period = resource.get("effectivePeriod")
    for value in (
        resource.get("effectiveDateTime"),
        resource.get("effectiveInstant"),
        period.get("end") if isinstance(period, dict) else None,
        period.get("start") if isinstance(period, dict) else None,
        resource.get("issued"),
    ):
        day = _day(value)
        if day is not None:
            return day
    return None


def _value(resource: dict[str, Any], detail: Detail, how: LoincSource) -> float | int | None:
    quantity = resource.get("valueQuantity")
    if not isinstance(quantity, dict) or quantity.get("comparator") is not None:
        return None
    value, code, system = quantity.get("value"), quantity.get("code"), quantity.get("system")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or code != how.ucum:
        return None
    if system is not None and system != UCUM:
        return None
    if (detail.min is not None and value < detail.min) or (detail.max is not None and value > detail.max):
        return None
    if detail.type == "integer":
        return int(value) if float(value).is_integer() else None
    return float(value)


def read(observations: Iterable[dict[str, Any]], asked: Wanted, today: date) -> dict[str, dict[str, Observed]]:
    """presentation -> detail id -> the most recent plain value within its window."""
    found: dict[str, dict[str, Observed]] = {}
    if not asked:
        return found
    for resource in observations:
        concept = resource.get("code")
        codings = concept.get("coding") if isinstance(concept, dict) else None
        if not isinstance(codings, list):
            continue
        codes = [c.get("code") for c in codings if isinstance(c, dict) and c.get("system") in LOINC_SYSTEMS]
        hits = [item for code in codes if isinstance(code, str) for item in asked.get(code, ())]
        if not hits or resource.get("status") not in READ_STATUSES:
            continue
        when = _when(resource)
        if when is None or when > today:
            continue
        for pid, detail, how in hits:
            if (today - when).days > how.max_age_days:
                continue
            value = _value(resource, detail, how)
            if value is None:
                continue
            current = found.setdefault(pid, {}).get(detail.id)
            if current is None or when > current.when:
                found[pid][detail.id] = Observed(detail, value, how.code, when)
    return found
