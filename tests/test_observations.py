"""Number details read from Observations by LOINC code (models/observations.py), and in the service.

The mechanism is tested with the LVOT gradient and a fixture code in memory: FIXTURE is "00000-0", which
no LOINC code is (LOINC numbers have no leading zero); no LOINC code for an LVOT gradient could be verified.
The real codes in data (serum bicarbonate 1963-8, chloride 2075-0, potassium 2823-3 for pyloric stenosis,
each verified with its display: see data/citations.yaml) are tested with a generated record at the end.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest

from models import observations as obslib
from models.cds_hooks import CdsResponse
from models.knowledge import LoincSource
from rules import default_context
from service.app import create_app
from tests.cds import dev_settings, local_client

TODAY = date(2026, 1, 15)
FIXTURE = "00000-0"
HOCM, DETAIL = "hypertrophic_obstructive_cardiomyopathy", "lvot_gradient_mmhg"
PATIENT = "pat-obs"


def with_loinc(kb: Any, window: int = 365) -> Any:
    how = LoincSource(code=FIXTURE, display="fixture", ucum="mm[Hg]", max_age_days=window, source="tests/test_observations.py")
    details = dict(kb.details)
    details[HOCM] = tuple(d.model_copy(update={"loinc": (how,)}) if d.id == DETAIL else d for d in details[HOCM])
    return dataclasses.replace(kb, details=details)


def observation(value: Any, days_ago: int = 10, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{PATIENT}"},
        "code": {"coding": [{"system": obslib.LOINC, "code": FIXTURE}]},
        "effectiveDateTime": (TODAY - timedelta(days=days_ago)).isoformat(),
        "valueQuantity": {"value": value, "unit": "mmHg", "system": obslib.UCUM, "code": "mm[Hg]"},
    }
    resource.update(extra)
    return resource


@pytest.fixture(scope="module")
def kb() -> Any:
    return with_loinc(default_context()[0])


def read(kb: Any, *resources: dict[str, Any]) -> Any:
    found = obslib.read(resources, obslib.wanted({HOCM: kb.details[HOCM]}), TODAY)
    return found.get(HOCM, {}).get(DETAIL)


def test_a_recent_plain_value_is_read_and_the_latest_wins(kb: Any) -> None:
    got = read(kb, observation(40, days_ago=100), observation(55, days_ago=5), observation(70, days_ago=50))
    assert got is not None and got.value == 55 and got.when == TODAY - timedelta(days=5)


@pytest.mark.parametrize(
    "resource",
    [
        observation(50, days_ago=400),  # older than the window: not recorded
        observation(50, days_ago=-3),  # in the future
        observation(50, status="preliminary"),
        observation(50, valueQuantity={"value": 50, "code": "kPa", "system": obslib.UCUM}),
        observation(50, valueQuantity={"value": 50, "comparator": ">", "code": "mm[Hg]"}),
        observation(500),  # outside the detail's bounds
        observation(True),
        observation(50, effectiveDateTime="2025-12"),  # not given to the day
        observation(50, code={"coding": [{"code": FIXTURE}]}),  # no system: not guessed
    ],
    ids=["stale", "future", "preliminary", "other-unit", "comparator", "out-of-bounds", "boolean", "month-only", "no-system"],
)
def test_anything_not_plain_is_not_recorded(kb: Any, resource: dict[str, Any]) -> None:
    assert read(kb, resource) is None


def test_the_oid_form_of_loinc_is_read(kb: Any) -> None:
    oid = observation(45, code={"coding": [{"system": "urn:oid:2.16.840.1.113883.6.1", "code": FIXTURE}]})
    assert read(kb, oid).value == 45


def test_the_service_reads_the_value_into_the_plan_and_says_so(kb: Any, tmp_path: Any) -> None:
    engine = default_context()[1]
    body = {
        "hook": "patient-view",
        "hookInstance": "5f1e9c1a-0d7b-4a4e-9c55-2b1a3c4d5e6f",
        "context": {"userId": "Practitioner/1", "patientId": PATIENT},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": PATIENT, "birthDate": "1970-01-01"},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
                "resourceType": "Condition", "subject": {"reference": f"Patient/{PATIENT}"},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I42.1"}]}}}]},
            "observations": {"resourceType": "Bundle", "type": "searchset",
                             "entry": [{"resource": observation(62)}, {"resource": observation(30, days_ago=900)}]},
        },
    }
    app = create_app((kb, engine), today=lambda: TODAY, settings=dev_settings(tmp_path))
    with local_client(app) as client:
        response = client.post("/cds-services/myotomy-procedures", json=body)
        assert response.status_code == 200, response.text
        (card,) = CdsResponse.model_validate(response.json()).cards
        label = next(d.label for d in kb.details[HOCM] if d.id == DETAIL)
        assert f"From an Observation: {label} 62 mmHg (LOINC {FIXTURE}" in card.detail
        not_held = next(line for line in card.detail.splitlines() if "Not held" in line)
        assert label not in not_held
        body["prefetch"]["observations"]["entry"] = [{"resource": observation(62, days_ago=900)}]
        (stale,) = CdsResponse.model_validate(client.post("/cds-services/myotomy-procedures", json=body).json()).cards
        assert "From an Observation" not in stale.detail


def test_no_detail_in_data_declares_an_unverified_loinc_code() -> None:
    kb, _ = default_context()
    for details in kb.details.values():
        for detail in details:
            for how in detail.loinc:
                assert how.source.startswith("http") or how.source in kb.citations, detail.id


# --- the real LOINC codes in data: pyloric stenosis electrolytes, with a generated infant record ---------
IHPS = "infantile_hypertrophic_pyloric_stenosis"
ELECTROLYTES = {"serum_bicarbonate": ("1963-8", 31), "serum_chloride": ("2075-0", 88), "serum_potassium": ("2823-3", 3.1)}


def lab(code: str, value: float, days_ago: int = 0, unit: str = "mmol/L", **extra: Any) -> dict[str, Any]:
    """One serum electrolyte Observation as a record system sends it (LOINC coding with its display)."""
    resource = {
        "resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{PATIENT}"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": obslib.LOINC, "code": code}]},
        "effectiveDateTime": f"{(TODAY - timedelta(days=days_ago)).isoformat()}T06:30:00Z",
        "valueQuantity": {"value": value, "unit": unit, "system": obslib.UCUM, "code": unit},
    }
    resource.update(extra)
    return resource


def test_pyloric_stenosis_declares_the_verified_electrolyte_codes() -> None:
    kb, _ = default_context()
    declared = {d.id: [(h.code, h.ucum) for h in d.loinc] for d in kb.details[IHPS] if d.loinc}
    assert declared == {detail: [(code, "mmol/L")] for detail, (code, _) in ELECTROLYTES.items()}


def test_pyloric_stenosis_electrolytes_are_read_by_their_real_codes() -> None:
    kb, _ = default_context()
    asked = obslib.wanted({IHPS: kb.details[IHPS]})
    records = [lab(code, value, days_ago=1) for code, value in ELECTROLYTES.values()]
    records += [lab("1963-8", 24, days_ago=5),  # older than the 2-day window: not read
                lab("2028-9", 30),  # total CO2: another LOINC concept, not declared, not read as bicarbonate
                lab("2823-3", 3.4, unit="meq/L")]  # another unit: not read
    found = obslib.read(records, asked, TODAY)[IHPS]
    assert {k: (v.code, v.value) for k, v in found.items()} == {k: (c, float(v)) for k, (c, v) in ELECTROLYTES.items()}
    assert obslib.read([lab("1963-8", 24, days_ago=3)], asked, TODAY) == {}


def test_a_generated_infant_record_shows_its_electrolytes_on_the_card(tmp_path: Any) -> None:
    kb, engine = default_context()
    entries = [{"resource": lab(code, value, days_ago=1)} for code, value in ELECTROLYTES.values()]
    entries += [{"resource": lab("2951-2", 134, days_ago=1)}]  # sodium: no detail asks for it
    body = {
        "hook": "patient-view",
        "hookInstance": "0b6f3c1e-2d4a-4f7b-8e9c-1a2b3c4d5e6f",
        "context": {"userId": "Practitioner/1", "patientId": PATIENT},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": PATIENT, "birthDate": (TODAY - timedelta(weeks=5)).isoformat()},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
                "resourceType": "Condition", "subject": {"reference": f"Patient/{PATIENT}"},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Q40.0"}]}}}]},
            "observations": {"resourceType": "Bundle", "type": "searchset", "entry": entries},
        },
    }
    app = create_app((kb, engine), today=lambda: TODAY, settings=dev_settings(tmp_path))
    with local_client(app) as client:
        response = client.post("/cds-services/myotomy-procedures", json=body)
        assert response.status_code == 200, response.text
        (card,) = CdsResponse.model_validate(response.json()).cards
    day = (TODAY - timedelta(days=1)).isoformat()
    labels = {d.id: d.label for d in kb.details[IHPS]}
    for detail, (code, value) in ELECTROLYTES.items():
        assert f"From an Observation: {labels[detail]} {value:g} mmol/L (LOINC {code}, {day})" in card.detail
