"""Record codes -> presentations: the one place that knows which coded diagnosis means which presentation.

Each presentation declares its value set in data (`codes:` of presentation.yaml: SNOMED CT, ICD-10-CM,
WHO ICD-10, each code with its display and where it was verified). This module matches a record's
codings against them, so the CDS Hooks service and a cohort screen read records the same way; it
needs no web framework.

Rules, each there so that nothing is guessed:
- A coding is matched by its system URI (the FHIR URI or its OID form); a code without a system, or
  of another system, is not read.
- ICD-10 codes (CM and WHO) cover their subcodes: the most specific listed code wins (`H50.0-` covers
  H50.00). A SNOMED CT code matches itself and the descendants listed with it in data: no SNOMED CT
  release ships with this project, so subsumption is never computed.
- A code listed for more than one presentation (ICD-10-CM K22.5 covers Zenker and epiphrenic
  diverticula) maps to none: the record does not say which.
- A condition whose codings point to different presentations maps to none, for the same reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from models.knowledge import ListedCode, PresentationDef

SNOMED_CT = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10_WHO = "http://hl7.org/fhir/sid/icd-10"
# The OID forms (HL7 OID registry) name the same systems.
SYSTEMS: dict[str, str] = {
    SNOMED_CT: SNOMED_CT,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED_CT,
    ICD10CM: ICD10CM,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    ICD10_WHO: ICD10_WHO,
    "urn:oid:2.16.840.1.113883.6.3": ICD10_WHO,
}
SYSTEM_NAMES = {SNOMED_CT: "SNOMED CT", ICD10CM: "ICD-10-CM", ICD10_WHO: "ICD-10 (WHO)"}
FIELD_OF = {SNOMED_CT: "snomed", ICD10CM: "icd10cm", ICD10_WHO: "icd10_who"}
# A record code is read only in the shape of its system, so record text never reaches a card as a code.
ICD_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$", re.IGNORECASE)
SCTID_SHAPE = re.compile(r"^[1-9][0-9]{5,17}$")


def system_of(uri: str | None) -> str | None:
    """The canonical URI of a system this module reads, or None (no system, or another one)."""
    return SYSTEMS.get(uri.strip()) if uri else None


def _icd_key(code: str) -> str:
    return code.strip().upper().replace(".", "").rstrip("-")


@dataclass(frozen=True)
class Listing:
    """A listed code and the presentations that list it."""

    system: str
    code: str  # as listed, e.g. "H50.0-"
    display: str
    presentations: tuple[str, ...]

    @property
    def shown(self) -> str:
        return f"{SYSTEM_NAMES[self.system]} {self.code}"


@dataclass(frozen=True)
class Mapped:
    """A condition that maps to one presentation, with the code that decided it."""

    presentation: str
    code: str  # "SNOMED CT 45564002", "ICD-10-CM K22.0"


@dataclass(frozen=True)
class Unmapped:
    """A condition that maps to no presentation, and why."""

    reason: str


class Terminology:
    """The value sets of every presentation, indexed for matching."""

    def __init__(self, presentations: Mapping[str, PresentationDef]) -> None:
        listed: dict[str, dict[str, tuple[ListedCode, list[str]]]] = {s: {} for s in SYSTEM_NAMES}
        for pdef in presentations.values():
            for system, field in FIELD_OF.items():
                for entry in getattr(pdef.codes, field):
                    if system == SNOMED_CT:
                        keys = [entry.code, *(d.code for d in entry.descendants)]
                    else:
                        keys = [_icd_key(entry.code)]
                    for key in keys:
                        _, pids = listed[system].setdefault(key, (entry, []))
                        if pdef.id not in pids:
                            pids.append(pdef.id)
        self._listed = {
            system: {key: Listing(system, e.code, e.display, tuple(p)) for key, (e, p) in table.items()}
            for system, table in listed.items()
        }
        self._names = {pid: pdef.name for pid, pdef in presentations.items()}

    def lookup(self, system: str | None, code: str) -> Listing | None:
        """The listing a record code falls under (the most specific for ICD-10), or None."""
        canonical = system_of(system)
        if canonical is None or not isinstance(code, str):
            return None
        code = code.strip()
        table = self._listed[canonical]
        if canonical == SNOMED_CT:
            return table.get(code) if SCTID_SHAPE.match(code) else None
        if not ICD_SHAPE.match(code):
            return None
        wanted = _icd_key(code)
        for length in range(len(wanted), -1, -1):  # the longest listed prefix: a few dict look-ups, not a scan of the table
            found = table.get(wanted[:length])
            if found is not None:
                return found
        return None

    def resolve(self, codings: Iterable[tuple[str | None, str]]) -> Mapped | Unmapped:
        """One condition's codings (system, code) -> the presentation they name, or why none."""
        codings = [(s, c) for s, c in codings if c]
        found: dict[str, str] = {}
        ambiguous: list[str] = []
        for system, code in codings:
            listing = self.lookup(system, code)
            if listing is None:
                continue
            if len(listing.presentations) > 1:
                names = ", ".join(self._names[p] for p in listing.presentations)
                ambiguous.append(f"{listing.shown} is listed for more than one presentation ({names})")
            else:
                found.setdefault(listing.presentations[0], f"{SYSTEM_NAMES[listing.system]} {code.strip()}")
        if ambiguous or len(found) > 1:
            names = ", ".join(self._names[p] for p in found)
            why = "; ".join(ambiguous) or f"its codes map to different presentations ({names})"
            return Unmapped(f"{why}; the record does not say which, so none is assumed")
        if found:
            pid, code = next(iter(found.items()))
            return Mapped(pid, code)
        return Unmapped(self._why_not(codings))

    def _why_not(self, codings: list[tuple[str | None, str]]) -> str:
        if not codings:
            return "the condition carries no code"
        systems = {system_of(s) for s, _ in codings}
        if systems == {None}:
            if all(not s for s, _ in codings):
                return "its codes carry no system, and a code without a system is not guessed"
            return "this service reads SNOMED CT, ICD-10-CM and ICD-10 codes only"
        return "no presentation of this knowledge base lists these codes"

    def listings(self) -> list[Listing]:
        """Every listed code (descendants folded into their entry), by system then code."""
        seen: dict[tuple[str, str], Listing] = {}
        for system, table in self._listed.items():
            for listing in table.values():
                seen.setdefault((system, listing.code), listing)
        return sorted(seen.values(), key=lambda item: (list(SYSTEM_NAMES).index(item.system), item.code))

    def codes_for(self, pid: str, system: str) -> list[Listing]:
        return [item for item in self.listings() if item.system == system and pid in item.presentations]


def markdown_table(presentations: Mapping[str, PresentationDef]) -> str:
    """The README's table of which codes map to which presentation, generated from data."""
    terms = Terminology(presentations)
    lines = ["| Presentation | SNOMED CT | ICD-10-CM | ICD-10 (WHO) |", "| --- | --- | --- | --- |"]
    for pid, pdef in presentations.items():
        cells = []
        for system in SYSTEM_NAMES:
            items = terms.codes_for(pid, system)
            shown = []
            for item in items:
                mark = " (ambiguous: maps to none)" if len(item.presentations) > 1 else ""
                shown.append(f"{item.code} {item.display}{mark}")
            cells.append("; ".join(shown) or "none verified")
        lines.append(f"| {pdef.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m models.terminology: the README table, from data
    from models.loader import load

    print(markdown_table(load().presentations))
