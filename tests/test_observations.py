"""Number details read from Observations by LOINC code (models/observations.py), and in the service.

No detail in data declares a LOINC code yet: none could be verified with the search tool for a declared
detail (LVOT gradient, GMFCS level), and the electrolytes of pyloric stenosis are not one value. These
tests give the LVOT gradient a LOINC entry in memory: FIXTURE is "00000-0", which no LOINC code is (LOINC
numbers have no leading zero).
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
