"""Realistic synthetic FHIR R4 records, seeded: for the service's speed tests and for cohort screens.

`cohort(n, seed)` gives `n` patients (no real person: names and ids are made up), each with
- a Patient (birth date; some deceased, by flag or by date);
- Conditions coded in SNOMED CT, ICD-10-CM or WHO ICD-10 (some with both codings, some by OID): a
  presentation of the knowledge base for most patients, drawn from the codes the terminology lists,
  and common problems it does not map (hypertension and the like); some resolved, refuted or
  entered in error;
- a few hundred Observations (LOINC-coded laboratory values over the last years), more for some;
- unused resources the service must tolerate: a MedicationRequest, a malformed Observation, an entry
  with no resource.
`search_bundle` wraps resources in a searchset Bundle; `pages` cuts one into linked pages, as a FHIR
server answers a search (the pages other than the first are served by a stub in the tests).
Imports nothing of the web service, so a cohort screen can use it as it is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from models.loader import KnowledgeBase
from models.terminology import ICD10_WHO, ICD10CM, SNOMED_CT, Terminology

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
LOINC = "http://loinc.org"
OIDS = {SNOMED_CT: "urn:oid:2.16.840.1.113883.6.96", ICD10CM: "urn:oid:2.16.840.1.113883.6.90"}
# Common problems this knowledge base does not map: noise a real problem list holds. Pairs from the
# TERM-CANON source (data/citations.yaml) and I10 from the project's example fixture.
UNMAPPED = [
    (ICD10CM, "I10", "Essential (primary) hypertension"),
    (SNOMED_CT, "13644009", "Hypercholesterolemia"),
    (SNOMED_CT, "46635009", "Diabetes mellitus type 1"),
    (ICD10CM, "I25.10", "Coronary artery disease"),
    (SNOMED_CT, "53741008", "Coronary arteriosclerosis"),
]
# LOINC codes of common laboratory values (TERM-CANON source): what fills a real record, not what
# the knowledge reads.
LABS = [
    ("2823-3", "Potassium", "mmol/L", 3.2, 5.4),
    ("2951-2", "Sodium", "mmol/L", 132, 146),
    ("2075-0", "Chloride", "mmol/L", 95, 109),
    ("2028-9", "Carbon dioxide, total", "mmol/L", 20, 32),
    ("2160-0", "Creatinine", "mg/dL", 0.5, 1.4),
    ("718-7", "Hemoglobin", "g/dL", 10, 17),
    ("777-3", "Platelets", "10*3/uL", 140, 420),
]


@dataclass
class Record:
    """One synthetic patient: the resources a record system would hold for the chart."""

    patient: dict[str, Any]
    conditions: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    others: list[dict[str, Any]] = field(default_factory=list)  # tolerated, never read
    presentations: tuple[str, ...] = ()  # what the coded conditions should map to (for tests)

    @property
    def id(self) -> str:
        return str(self.patient["id"])


def _coding(system: str, code: str, display: str, rng: random.Random) -> dict[str, Any]:
    if system in OIDS and rng.random() < 0.1:
        system = OIDS[system]
    coding = {"system": system, "code": code}
    if rng.random() < 0.8:
        coding["display"] = display
    return coding


def _condition(pid: str, n: int, codings: list[dict[str, Any]], status: str, verification: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"{pid}-c{n}",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verification}]},
        "code": {"coding": codings},
        "subject": {"reference": f"Patient/{pid}"},
        "recordedDate": "2024-05-01",
    }


def _observation(pid: str, n: int, lab: tuple[str, str, str, float, float], when: date, rng: random.Random) -> dict:
    code, name, unit, low, high = lab
    return {
        "resourceType": "Observation",
        "id": f"{pid}-o{n}",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": name}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {"value": round(rng.uniform(low, high), 1), "unit": unit,
                          "system": "http://unitsofmeasure.org", "code": unit},
    }


def _age_for(kb: KnowledgeBase, pid: str, today: date, rng: random.Random) -> date:
    limit = kb.presentations[pid].max_age_years
    if limit is not None and limit <= 1:
        return today - timedelta(weeks=rng.randint(3, 10))
    if limit is not None:
        return today - timedelta(days=rng.randint(365, max(366, int(limit * 365) - 1)))
    return today - timedelta(days=rng.randint(20 * 365, 85 * 365))


def record(
    kb: KnowledgeBase, n: int, rng: random.Random, today: date, observations: int | None = None
) -> Record:
    """One patient. `observations` fixes the count (else a few hundred, sometimes more)."""
    terms = Terminology(kb.presentations)
    listed = [item for item in terms.listings() if len(item.presentations) == 1]
    pid = f"synth-{n:05d}"
    chosen = rng.choice(listed) if rng.random() < 0.85 else None
    presentation = chosen.presentations[0] if chosen else None
    if presentation:
        born = _age_for(kb, presentation, today, rng)
    else:
        born = today - timedelta(days=rng.randint(365, 90 * 365))
    patient: dict[str, Any] = {"resourceType": "Patient", "id": pid, "birthDate": born.isoformat(),
                               "name": [{"family": f"Synthetic{n}", "given": ["Test"]}],
                               "gender": rng.choice(["female", "male", "other", "unknown"])}
    roll = rng.random()
    if roll < 0.03:
        patient["deceasedBoolean"] = True
    elif roll < 0.05:
        patient["deceasedDateTime"] = (today - timedelta(days=rng.randint(1, 400))).isoformat()
    else:
        patient["deceasedBoolean"] = False
    out = Record(patient)
    count = 0
    if chosen is not None:
        code = chosen.code.rstrip("-") + ("0" if chosen.code.endswith("-") else "")
        codings = [_coding(chosen.system, code, chosen.display, rng)]
        same = [i for i in terms.codes_for(presentation, SNOMED_CT if chosen.system != SNOMED_CT else ICD10CM)
                if len(i.presentations) == 1]
        if same and rng.random() < 0.4:  # coded twice, as many systems record a problem
            other = same[0]
            codings.append(_coding(other.system, other.code.rstrip("-") + ("0" if other.code.endswith("-") else ""),
                                   other.display, rng))
        out.conditions.append(_condition(pid, count, codings, "active", "confirmed"))
        out.presentations = (presentation,)
        count += 1
    for system, code, display in rng.sample(UNMAPPED, rng.randint(0, 3)):
        out.conditions.append(_condition(pid, count, [_coding(system, code, display, rng)], "active", "confirmed"))
        count += 1
    if rng.random() < 0.3:  # an old problem, resolved or refuted: not part of the current picture
        item = rng.choice(listed)
        status, verification = rng.choice([("resolved", "confirmed"), ("active", "refuted"),
                                           ("active", "entered-in-error")])
        code = item.code.rstrip("-") + ("0" if item.code.endswith("-") else "")
        codings = [_coding(item.system, code, item.display, rng)]
        out.conditions.append(_condition(pid, count, codings, status, verification))
    total = observations if observations is not None else (rng.randint(150, 400) if rng.random() < 0.9 else 2000)
    for k in range(total):
        when = today - timedelta(days=rng.randint(0, 1500))
        out.observations.append(_observation(pid, k, rng.choice(LABS), when, rng))
    out.observations.append({"resourceType": "Observation", "id": f"{pid}-bad", "status": "final",
                             "code": "not a CodeableConcept", "valueQuantity": {"value": "high"}})
    out.others.append({"resourceType": "MedicationRequest", "id": f"{pid}-m1", "status": "active",
                       "intent": "order", "subject": {"reference": f"Patient/{pid}"}})
    return out


def cohort(kb: KnowledgeBase, n: int = 120, seed: int = 7, today: date | None = None) -> list[Record]:
    """`n` synthetic patients, the same for the same seed."""
    rng = random.Random(seed)
    day = today or date(2026, 1, 15)
    return [record(kb, i, rng, day) for i in range(n)]


def search_bundle(resources: list[dict[str, Any]], self_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
                              "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}
    if self_url:
        bundle["link"] = [{"relation": "self", "url": self_url}]
    return bundle


def pages(resources: list[dict[str, Any]], size: int, base: str, search: str) -> list[dict[str, Any]]:
    """The search result as linked pages; page k's `next` is `{base}/{search}&_page=k+1`."""
    chunks = [resources[i : i + size] for i in range(0, len(resources), size)] or [[]]
    out = []
    for k, chunk in enumerate(chunks):
        page = search_bundle(chunk, f"{base}/{search}&_page={k}")
        page["total"] = len(resources)
        if k + 1 < len(chunks):
            page["link"].append({"relation": "next", "url": f"{base}/{search}&_page={k + 1}"})
        out.append(page)
    return out


def hook_request(rec: Record, *, observations: bool = True, extra: bool = True) -> dict[str, Any]:
    """A patient-view call with the whole record prefetched, plus unused resources when `extra`."""
    conditions = search_bundle(rec.conditions)
    if extra:
        conditions["entry"] += [{"resource": r} for r in rec.others] + [{"fullUrl": "urn:uuid:no-resource"}]
    prefetch: dict[str, Any] = {"patient": rec.patient, "conditions": conditions}
    if observations:
        prefetch["observations"] = search_bundle(rec.observations)
    return {
        "hook": "patient-view",
        "hookInstance": "6a3e1f4e-2f0c-4d6b-9a55-1d2c3b4a5f60",
        "context": {"userId": "Practitioner/synthetic", "patientId": rec.id},
        "prefetch": prefetch,
    }


__all__ = ["Record", "cohort", "record", "search_bundle", "pages", "hook_request", "ICD10_WHO"]
