"""The CDS Hooks service through the ASGI test client: discovery, FHIR input, cards, bad requests.

Presentations come from the loaded knowledge base, so every presentation with an ICD-10-CM code
is covered as others add them; achalasia is also tested by name. Every answer is checked against
the CDS Hooks models in models/cds_hooks.py. The app runs in local development mode (no token,
calls from 127.0.0.1) with its database in a temporary directory; tokens are tested in
test_service_auth.py, the database in test_service_storage.py.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.cds_hooks import Card, CdsResponse, Discovery, ErrorBody
from models.loader import load, load_cases
from models.plan import Evidence, Plan
from rules import RuleExecutionError, assess, default_context
from service import cards as cardlib
from service.app import PREFETCH, SERVICE_ID, create_app
from models.terminology import ICD10_WHO, ICD10CM, SNOMED_CT, SYSTEM_NAMES, Terminology
from service.fhir_input import FhirReading, age_from_birth_date, code_map, condition_input
from tests.cds import dev_settings, issued_uuid, local_client

TODAY = date(2026, 1, 15)
URL = f"/cds-services/{SERVICE_ID}"
FIXTURE = Path(__file__).parent / "fixtures" / "patient-view-achalasia.json"
PATIENT = "pat-9"
HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"

_KB = load()  # at collection, to parametrize over what the knowledge base holds now
# (presentation, system, listed code) for every code that maps to one presentation alone
CODED = [
    (pid, item.system, item.code)
    for item in Terminology(_KB.presentations).listings()
    if len(item.presentations) == 1
    for pid in item.presentations
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cds-data")


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Any:
    with local_client(create_app(default_context(), today=lambda: TODAY, settings=dev_settings(data_dir))) as c:
        yield c


@pytest.fixture(scope="module")
def uuid_of(data_dir: Path) -> Any:
    """uuid_of('achalasia', 'plan') -> the card's uuid for PATIENT."""
    h = default_context()[0].content_hash
    return lambda pid, item, patient=PATIENT: issued_uuid(data_dir, patient, f"{pid}/{item}", h)


def metrics(client: TestClient) -> dict[str, int]:
    return client.app.state.holder["state"].metrics.snapshot()


def concrete(code: str) -> str:
    """A code under a listed one: 'H50.0-' (H50.0 and below) -> 'H50.00'; 'K22.0' stays."""
    return code[:-1] + "0" if code.endswith("-") else code


def condition(code: str, system: str = ICD10CM, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": {"coding": [{"system": system, "code": code}]},
        **extra,
    }


def bundle(*resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources], **extra}


def request(*conditions: dict[str, Any], birth: str | None = "1980-06-01", **prefetch: Any) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": PATIENT}
    if birth is not None:
        patient["birthDate"] = birth
    return {
        "hook": "patient-view",
        "hookInstance": HOOK_INSTANCE,
        "context": {"userId": "Practitioner/1", "patientId": PATIENT},
        "prefetch": {"patient": patient, "conditions": bundle(*conditions), **prefetch},
    }


def cards_of(response: Any) -> list[Card]:
    assert response.status_code == 200, response.text
    return list(CdsResponse.model_validate(response.json()).cards)


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return ErrorBody.model_validate(response.json()).error


def kb_hash() -> str:
    return default_context()[0].content_hash


def stands(plan: Plan, pid: str, severity: str) -> list[Any]:
    return [f for f in plan.standing_flags if f.presentation == pid and f.severity == severity]


def has_something_to_say(plan: Plan, pid: str) -> bool:
    return any(
        item.presentation == pid for item in (*plan.standing_flags, *plan.steps, *plan.options, *plan.needs)
    )


def reading_for(case_input: dict[str, Any], kb: Any) -> FhirReading:
    """A reading as if the record had coded each presentation of a teaching case."""
    pids = [c["presentation"] for c in case_input["conditions"]]
    return FhirReading(
        presentation=case_input,
        mapped_codes={p: tuple(f"ICD-10-CM {c.code}" for c in kb.presentations[p].codes.icd10cm[:1]) for p in pids},
        not_held={p: condition_input(p, kb)[1] for p in pids},
    )


def cards_for(case_input: dict[str, Any], kb: Any) -> tuple[Plan, list[Card]]:
    plan = assess(case_input)
    return plan, cardlib.build_cards(plan, reading_for(case_input, kb), [], kb)


CASES = [case for _, case in load_cases(_KB)]


# Discovery


def test_discovery_lists_one_patient_view_service_with_its_prefetch(client: TestClient) -> None:
    found = Discovery.model_validate(client.get("/cds-services").json())
    service, *orders = found.services
    assert {(s.id, s.hook) for s in orders} == {("myotomy-order-select", "order-select"),
                                                 ("myotomy-order-sign", "order-sign")}
    assert (service.id, service.hook) == (SERVICE_ID, "patient-view")
    assert service.prefetch == PREFETCH and set(PREFETCH) == {"patient", "conditions", "observations"}
    assert "SNOMED CT" in service.description and "ICD-10-CM" in service.description


# Each presentation from FHIR input


def _age_for(pid: str) -> tuple[str, dict[str, Any]]:
    """A birth date inside the presentation's age limit, with the age the engine should get."""
    max_years = _KB.presentations[pid].max_age_years
    if max_years is not None and max_years <= 1:
        born = TODAY - timedelta(weeks=6)
        return born.isoformat(), {"value": 6.0, "unit": "weeks"}
    return "1980-06-01", {"value": 45, "unit": "years"}


@pytest.mark.parametrize(("pid", "system", "code"), CODED, ids=[f"{p}-{SYSTEM_NAMES[s]}-{c}" for p, s, c in CODED])
def test_each_coded_presentation_maps_and_is_assessed(
    client: TestClient, uuid_of: Any, pid: str, system: str, code: str
) -> None:
    kb, _ = default_context()
    birth, age = _age_for(pid)
    cards = cards_of(client.post(URL, json=request(condition(concrete(code), system=system), birth=birth)))
    plan = assess({"age": age, "conditions": [{"presentation": pid}]})
    stops = stands(plan, pid, "stop")
    if stops:  # one critical card that says stop and the urgent action; no option card
        (card,) = cards
        assert card.uuid == uuid_of(pid, cardlib.stop_key(stops[0].id))
        assert card.indicator == "critical" and card.summary.startswith("Stop")
    elif has_something_to_say(plan, pid):
        (card,) = cards
        assert card.uuid == uuid_of(pid, cardlib.PLAN)
        assert card.indicator == ("warning" if stands(plan, pid, "do_first") else "info")
        assert all(f"Record **{need.label}**" in card.detail for need in plan.needs)
    else:  # no guidance: {"cards": []}
        assert cards == []
        return
    assert card.summary.startswith(("Stop", kb.presentations[pid].name.split(" (")[0]))
    assert concrete(code) in card.detail and "**Sources**" in card.detail


def test_a_code_listed_for_two_presentations_maps_to_none(client: TestClient) -> None:
    """ICD-10-CM K22.5 (diverticulum of oesophagus, acquired) covers Zenker and epiphrenic diverticula."""
    before = metrics(client).get("conditions_not_mapped", 0)
    assert cards_of(client.post(URL, json=request(condition("K22.5")))) == []
    assert metrics(client)["conditions_not_mapped"] == before + 1
    zenker = condition("399291005", system=SNOMED_CT)  # SNOMED CT Zenker's diverticulum says which
    alone = cards_of(client.post(URL, json=request(zenker)))
    assert alone and cards_of(client.post(URL, json=request(condition("K22.5"), zenker))) == alone


def test_every_coded_presentation_at_once_gives_the_same_cards_as_each_alone(client: TestClient) -> None:
    unique = [(p, c) for p, s, c in CODED if s == ICD10CM]
    first = {p: c for p, c in reversed(unique)}  # one code per presentation
    adults = [p for p in first if (_KB.presentations[p].max_age_years or 99) > 1][:8]
    everything = request(*(condition(concrete(first[p])) for p in adults))
    together = {c.uuid for c in cards_of(client.post(URL, json=everything))}
    alone: set[Any] = set()
    for p in adults:
        alone |= {c.uuid for c in cards_of(client.post(URL, json=request(condition(concrete(first[p])))))}
    assert together == alone


# Achalasia by name


def test_achalasia_from_icd10_only_gives_one_plan_card_with_its_first_step(client: TestClient, uuid_of: Any) -> None:
    (card,) = cards_of(client.post(URL, json=request(condition("K22.0"), birth="1980-06-01")))
    assert card.uuid == uuid_of("achalasia", cardlib.PLAN)
    assert card.indicator == "warning"  # two do-first flags stand: diagnosis not confirmed, malignancy not excluded
    assert card.summary.startswith("Oesophageal achalasia: first esophageal high-resolution manometry")
    detail = card.detail
    assert "**Check or correct first**" in detail and "esophagogastroduodenoscopy" in detail
    assert "**Diagnosis not confirmed**" in detail and "**Malignancy not excluded**" in detail
    assert "Record **Fitness for anaesthesia and surgery**: it decides between Pneumatic dilation" in detail
    assert "Record **Takes opioids**" in detail
    assert card.source.url is not None and card.source.url in detail and "**Sources**" in detail
    for said in ("age 45 years on 2026-01-15, from birth date 1980-06-01", "Subtype", "Diagnosis confirmed",
                 "ICD-10-CM K22.0", "Observations: 0 received", "verification status is not read"):
        assert said in detail


def test_achalasia_at_65_stops_with_one_critical_card_and_no_options(client: TestClient, uuid_of: Any) -> None:
    (card,) = cards_of(client.post(URL, json=request(condition("K22.0"), birth="1960-06-01")))
    assert card.uuid == uuid_of("achalasia", cardlib.stop_key("possible_pseudoachalasia"))
    assert card.indicator == "critical"
    assert card.summary.startswith(
        "Stop (Oesophageal achalasia): possible pseudoachalasia. Urgent: esophagogastroduodenoscopy"
    )
    assert "endoscopic ultrasound" in card.detail and "CT of chest and abdomen" in card.detail
    assert "**Also standing**" in card.detail and "**Diagnosis not confirmed**" in card.detail
    assert "**Treatment options" not in card.detail


def test_achalasia_without_birth_date_is_assessed_and_says_the_age_is_missing(client: TestClient) -> None:
    (card,) = cards_of(client.post(URL, json=request(condition("K22.0"), birth=None)))
    assert "Age: the Patient resource has no birth date." in card.detail


def test_achalasia_cards_are_stable_across_requests(client: TestClient) -> None:
    one = client.post(URL, json=request(condition("K22.0"))).json()
    other = request(condition("K22.0"))
    other["hookInstance"] = "0b5c9a3e-7f63-4d5e-8e22-3c1f1d0b6a77"
    assert client.post(URL, json=other).json() == one


def _for_patient(patient_id: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    body = request(*(dict(c, subject={"reference": f"Patient/{patient_id}"}) for c in conditions))
    body["context"]["patientId"] = patient_id
    body["prefetch"]["patient"]["id"] = patient_id
    return body


def test_card_uuids_differ_per_patient_and_per_card(client: TestClient, uuid_of: Any) -> None:
    one = cards_of(client.post(URL, json=_for_patient("pat-a", condition("K22.0"))))
    other = cards_of(client.post(URL, json=_for_patient("pat-b", condition("K22.0"))))
    assert [c.summary for c in one] == [c.summary for c in other]  # the same advice
    assert len({c.uuid for c in one} | {c.uuid for c in other}) == len(one) + len(other)  # never the same uuid
    assert [c.uuid for c in one] == [uuid_of("achalasia", cardlib.PLAN, patient="pat-a")]
    # keyed by the service's secret: a uuid cannot be recomputed from the patient id alone
    h = kb_hash()
    assert cardlib.card_uuid("achalasia", cardlib.PLAN, h) not in {c.uuid for c in one}


def test_a_deceased_patient_gets_no_cards(client: TestClient) -> None:
    assert cards_of(client.post(URL, json=request(condition("K22.0"))))  # alive: advice
    for deceased in ({"deceasedBoolean": True}, {"deceasedDateTime": "2025-12-01"}):
        body = request(condition("K22.0"))
        body["prefetch"]["patient"].update(deceased)
        before = metrics(client).get("deceased_patients", 0)
        assert cards_of(client.post(URL, json=body)) == []
        assert metrics(client)["deceased_patients"] == before + 1
    body = request(condition("K22.0"))
    body["prefetch"]["patient"]["deceasedBoolean"] = False
    assert cards_of(client.post(URL, json=body))


CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@pytest.mark.parametrize(
    "resource",
    [
        condition("111111111", system=SNOMED_CT),
        condition("I10", system=ICD10_WHO),
        condition("45564002"),  # a SNOMED CT code sent as ICD-10-CM: not read
        condition("45564002", system=""),  # no system: not guessed
        condition("I10"),
        condition("K22.0 [click](https://evil.example)"),
        {"resourceType": "Condition", "subject": {"reference": f"Patient/{PATIENT}"}, "code": {"text": "dysphagia"}},
    ],
    ids=["snomed", "who-icd10", "wrong-system", "no-system", "other-code", "malformed-code", "text-only"],
)
def test_conditions_that_do_not_map_give_no_cards_and_are_counted(client: TestClient, resource: dict) -> None:
    before = metrics(client).get("conditions_not_mapped", 0)
    assert cards_of(client.post(URL, json=request(resource))) == []  # no guidance: {"cards": []}
    assert metrics(client)["conditions_not_mapped"] == before + 1


@pytest.mark.parametrize(
    "status",
    [
        {"clinicalStatus": {"coding": [{"system": CLINICAL, "code": "resolved"}]}},
        {"clinicalStatus": {"coding": [{"system": CLINICAL, "code": "inactive"}]}},
        {"clinicalStatus": {"coding": [{"system": CLINICAL, "code": "remission"}]}},
        {"clinicalStatus": {"coding": [{"code": "resolved"}]}},
        {"clinicalStatus": {"coding": [{"system": "urn:local", "code": "x"},
                                       {"system": CLINICAL, "code": "resolved"}]}},
        {"verificationStatus": {"coding": [{"system": VERIFICATION, "code": "refuted"}]}},
        {"verificationStatus": {"coding": [{"system": VERIFICATION, "code": "entered-in-error"}]}},
    ],
    ids=["resolved", "inactive", "remission", "no-system", "second-coding", "refuted", "entered-in-error"],
)
def test_conditions_not_current_are_ignored(client: TestClient, status: dict) -> None:
    before = metrics(client).get("conditions_not_current", 0)
    assert cards_of(client.post(URL, json=request(condition("K22.0", **status)))) == []
    assert metrics(client)["conditions_not_current"] == before + 1


def test_current_statuses_are_read(client: TestClient) -> None:
    plain = cards_of(client.post(URL, json=request(condition("K22.0"))))
    for status in (
        {"clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]}},
        {"clinicalStatus": {"coding": [{"system": CLINICAL, "code": "recurrence"}]}},
        {"verificationStatus": {"coding": [{"system": VERIFICATION, "code": "provisional"}]}},
        {"clinicalStatus": {"coding": [{"system": "urn:local", "code": "resolved"}]}},  # another system's word
    ):
        assert cards_of(client.post(URL, json=request(condition("K22.0", **status)))) == plain


def test_included_entries_are_not_read_as_matches(client: TestClient) -> None:
    body = request(condition("K22.0"))
    body["prefetch"]["conditions"]["entry"].append(
        {"resource": {"resourceType": "Patient", "id": PATIENT}, "search": {"mode": "include"}}
    )
    assert cards_of(client.post(URL, json=body)) == cards_of(client.post(URL, json=request(condition("K22.0"))))


def test_two_entries_with_one_code_give_one_presentation(client: TestClient) -> None:
    twice = cards_of(client.post(URL, json=request(condition("K22.0"), condition("K22.0"))))
    once = cards_of(client.post(URL, json=request(condition("K22.0"))))
    assert twice == once


def test_record_text_never_reaches_a_card(client: TestClient) -> None:
    sneaky = condition("K22.0")
    sneaky["code"]["coding"][0]["display"] = "[click](https://evil.example) | <b>x</b>"
    sneaky["code"]["text"] = "<script>x</script>"
    cards = cards_of(client.post(URL, json=request(sneaky)))
    assert cards == cards_of(client.post(URL, json=request(condition("K22.0"))))
    text = json.dumps([c.model_dump(mode="json") for c in cards])
    assert "evil.example" not in text and "<b>" not in text and "<script>" not in text


def test_infant_presentation_needs_an_age_and_says_so(client: TestClient, uuid_of: Any) -> None:
    infants = [(p, c) for p, s, c in CODED
               if s == ICD10CM and _KB.presentations[p].requires_age and _KB.presentations[p].max_age_years]
    if not infants:
        pytest.skip("no presentation in the knowledge base both requires an age and has an age limit")
    pid, code = infants[0]
    cards = cards_of(client.post(URL, json=request(condition(concrete(code)), birth=None)))
    (card,) = cards
    assert card.indicator == "warning" and card.uuid == uuid_of(pid, cardlib.NOT_ASSESSED)
    assert "age is required" in card.detail and "no birth date" in card.detail
    (adult,) = cards_of(client.post(URL, json=request(condition(concrete(code)), birth="1980-06-01")))
    assert adult.uuid == card.uuid and "is not a diagnosis at 45 years" in adult.detail


def test_no_conditions_at_all_gives_no_cards(client: TestClient) -> None:
    assert cards_of(client.post(URL, json=request())) == []
    nulled = request()
    nulled["prefetch"]["conditions"] = None  # the client holds no data for the key
    assert cards_of(client.post(URL, json=nulled)) == []


def test_the_fixture_bundle_gives_the_expected_cards(client: TestClient, uuid_of: Any) -> None:
    before = metrics(client)
    cards = cards_of(client.post(URL, content=FIXTURE.read_bytes(), headers={"content-type": "application/json"}))
    patient = json.loads(FIXTURE.read_text())["context"]["patientId"]
    assert [(c.uuid, c.indicator) for c in cards] == [
        (uuid_of("achalasia", cardlib.stop_key("possible_pseudoachalasia"), patient=patient), "critical"),
    ]
    assert "Observations: 2 received" in cards[0].detail and "age 64 years" in cards[0].detail
    assert all("I10" not in c.detail and "J18.9" not in c.detail for c in cards)  # hypertension, old pneumonia
    after = metrics(client)
    assert after["conditions_not_mapped"] - before.get("conditions_not_mapped", 0) == 1  # I10
    assert after["conditions_not_current"] - before.get("conditions_not_current", 0) == 1  # resolved J18.9


# Age from the birth date


@pytest.mark.parametrize(
    ("birth", "age"),
    [
        (date(2025, 12, 25), {"value": 3.0, "unit": "weeks"}),
        (date(2025, 1, 16), {"value": 52.0, "unit": "weeks"}),
        (date(2025, 1, 15), {"value": 1, "unit": "years"}),
        (date(1961, 1, 16), {"value": 64, "unit": "years"}),
        ("1961-06", {"value": 64, "unit": "years"}),
        ("1961", None),
        ("2025-12", None),
        (date(2026, 1, 16), None),
        (date(1900, 1, 1), None),
        (None, None),
    ],
)
def test_age_from_birth_date(birth: Any, age: dict | None) -> None:
    got, note = age_from_birth_date(birth, TODAY)
    assert got == age and note
    if age is None:
        assert "not used" in note or "no birth date" in note


def test_leap_day_birthday_counts_on_the_first_of_march() -> None:
    assert age_from_birth_date(date(2000, 2, 29), date(2025, 2, 28))[0] == {"value": 24, "unit": "years"}
    assert age_from_birth_date(date(2000, 2, 29), date(2025, 3, 1))[0] == {"value": 25, "unit": "years"}


# The code map


def test_code_map_picks_the_most_specific_listed_code() -> None:
    from types import SimpleNamespace

    from models.knowledge import Codes

    def pres(pid: str, **codes: Any) -> Any:
        return SimpleNamespace(id=pid, name=pid, codes=Codes.model_validate(codes))

    def entry(code: str) -> dict[str, str]:
        return {"code": code, "display": "x" * 3, "source": "test"}

    terms = Terminology({"broad": pres("broad", icd10cm=[entry("H50")]),
                         "narrow": pres("narrow", icd10cm=[entry("H50.0-")]),
                         "a": pres("a", icd10cm=[entry("K22.0")], snomed=[entry("45564002")])})
    assert terms.lookup(ICD10CM, "H50.00").presentations == ("narrow",)
    assert terms.lookup(ICD10CM, "H50.1").presentations == ("broad",)
    assert terms.lookup("urn:oid:2.16.840.1.113883.6.90", "k22.0").presentations == ("a",)
    assert terms.lookup(ICD10CM, "K22.4") is None and terms.lookup(ICD10CM, "K2") is None
    assert terms.lookup(SNOMED_CT, "45564002").presentations == ("a",)
    assert terms.lookup("urn:oid:2.16.840.1.113883.6.96", "45564002").presentations == ("a",)
    assert terms.lookup(SNOMED_CT, "455640021") is None  # SNOMED CT is matched exactly, never by prefix
    assert terms.lookup(None, "K22.0") is None and terms.lookup(ICD10_WHO, "K22.0") is None


def test_code_map_is_built_from_the_knowledge_base(kb: Any) -> None:
    built = code_map(kb)
    for pid, system, code in CODED:
        listing = built.lookup(system, concrete(code))
        assert listing is not None and listing.code == code and listing.presentations == (pid,)


def test_input_is_built_over_the_declared_details(kb: Any) -> None:
    """No declared detail has a record code yet: each is listed as not held, none is guessed."""
    for pid in kb.presentations:
        condition, not_held = condition_input(pid, kb)
        assert condition == {"presentation": pid} and not_held == kb.details[pid]
        kb.condition_models[pid].model_validate(condition)


# Cards from an assessment


def test_every_teaching_case_renders_valid_cards_the_service_knows(kb: Any) -> None:
    known = cardlib.known_cards(kb)
    for case in CASES:
        plan, cards = cards_for(case.input, kb)
        CdsResponse(cards=tuple(cards))  # summaries under 140 characters, no empty values
        assert all(c.uuid in known for c in cards), case.id
        assert [c.indicator for c in cards] == sorted((c.indicator for c in cards), key=cardlib.INDICATOR_ORDER.index)
        for card in cards:
            assert plan.disclaimer in card.detail


def test_stop_flag_gives_one_critical_card_that_holds_the_options_back(kb: Any) -> None:
    stopped = [case for case in CASES if assess(case.input).stopped]
    assert stopped, "no teaching case raises a stop flag"
    for case in stopped:
        plan, cards = cards_for(case.input, kb)
        pid = case.input["conditions"][0]["presentation"]
        stop = stands(plan, pid, "stop")[0]
        (card,) = [c for c in cards if c.uuid in {cardlib.card_uuid(pid, k, kb.content_hash) for k in
                                                   (cardlib.PLAN, cardlib.stop_key(stop.id))}]
        assert card.indicator == "critical" and card.summary.startswith("Stop")
        assert cardlib._words(stop.id) in card.summary
        urgent = next(s for s in plan.steps if s.kind == "urgent" and s.presentation == pid)
        if urgent.workup:
            assert "Urgent: " in card.summary
            assert all(t.meaning in card.detail for t in urgent.workup)
        for why in plan.why_not:
            if why.withheld_by:  # held back, never offered as a choice
                assert f"- {why.name}" in card.detail.split("**Held back until then**")[1]
        assert "**Treatment options" not in card.detail


def test_do_first_flag_makes_the_plan_card_a_warning(kb: Any) -> None:
    seen = {"warning": 0, "info": 0}
    for case in CASES:
        plan, cards = cards_for(case.input, kb)
        if plan.stopped:
            continue
        pid = case.input["conditions"][0]["presentation"]
        if not cardlib._Part(pid, plan.presentations[0].name, plan).has_something_to_say():
            continue  # e.g. every flag cleared and nothing offered: no card (its work-up is not asked again)
        (card,) = [c for c in cards if c.uuid == cardlib.card_uuid(pid, cardlib.PLAN, kb.content_hash)]
        expected = "warning" if stands(plan, pid, "do_first") else "info"
        assert card.indicator == expected, case.id
        seen[expected] += 1
        for flag in stands(plan, pid, "do_first"):
            assert f"**{cardlib._words(flag.id).capitalize()}**" in card.detail
    assert seen["warning"] and seen["info"]


def test_plan_card_gives_steps_strengths_evidence_needs_and_sources(kb: Any) -> None:
    case = next(c for c in CASES if c.id == "achalasia_type_iii_on_opioids")
    plan, (card,) = cards_for(case.input, kb)
    assert card.summary == (
        "Oesophageal achalasia: first Stop opioids where possible, then repeat manometry (+1 more); "
        "then POEM (preferred)"
    )
    detail = card.detail
    first, treatment = detail.index("**Check or correct first**"), detail.index("**Treatment options")
    assert first < detail.index("**Stop opioids where possible, then repeat manometry: preferred.**") < treatment
    assert treatment < detail.index("**Per-oral endoscopic myotomy (POEM): preferred.**")
    assert "**Laparoscopic Heller myotomy with partial fundoplication (Dor or Toupet): alternative.**" in detail
    assert "Evidence: not graded in the knowledge base." in detail
    for need in plan.needs:
        assert f"Record **{need.label}**: it decides" in detail
    assert "**Cleared**" in detail and "malignancy excluded on endoscopy" in detail
    first_citation = plan.flags[0].basis.citations[0] if stands(plan, "achalasia", "do_first") else None
    assert first_citation is not None and card.source.label.startswith(first_citation.key + ":")
    assert card.source.url == first_citation.url
    assert all(f"[{ref.key}]" in detail.split("**Sources**")[1] for o in plan.options for ref in o.basis.citations)


def test_evidence_grading_and_uncertainty_are_shown_as_given(kb: Any) -> None:
    case = next(c for c in CASES if c.id == "achalasia_type_iii_poem_preferred")
    plan = assess(case.input)
    poem = next(o for o in plan.options if o.id == "poem")
    graded = poem.basis.model_copy(update={
        "evidence": (Evidence(source="ACG20", system="GRADE", recommendation="strong", certainty="moderate"),),
        "uncertain": True,
    })
    options = tuple(o.model_copy(update={"basis": graded}) if o.id == "poem" else o for o in plan.options)
    (card,) = cardlib.build_cards(plan.model_copy(update={"options": options}), reading_for(case.input, kb), [], kb)
    assert "Evidence: GRADE, strong, certainty moderate [ACG20]; uncertain" in card.detail


def test_shared_decision_shows_both_options_and_what_tips_it(kb: Any) -> None:
    shared = [case for case in CASES if assess(case.input).shared_decisions]
    if not shared:
        pytest.skip("no teaching case gives a shared decision")
    plan, cards = cards_for(shared[0].input, kb)
    decision = plan.shared_decisions[0]
    card = next(c for c in cards if c.uuid == cardlib.card_uuid(decision.presentation, cardlib.PLAN, kb.content_hash))
    assert "**Shared decision**" in card.detail and all(tip in card.detail for tip in decision.tips)


def test_no_card_when_the_plan_has_nothing_to_say(kb: Any) -> None:
    plan = assess({"age": {"value": 45}, "conditions": [{"presentation": "achalasia"}]})
    empty = plan.model_copy(update={"flags": (), "steps": (), "options": (), "needs": (), "stopped": False})
    reading = reading_for({"conditions": [{"presentation": "achalasia"}]}, kb)
    assert cardlib.build_cards(empty, reading, [], kb) == []


def test_known_cards_cover_every_card_issued(client: TestClient) -> None:
    known = set(cardlib.known_cards(default_context()[0]).values())
    cards = cards_of(client.post(URL, content=FIXTURE.read_bytes(), headers={"content-type": "application/json"}))
    issued = client.app.state.holder["state"].storage.issued(str(c.uuid) for c in cards)
    assert len(issued) == len(cards) and {i.about for i in issued.values()} <= known


# The response schema can fail


@pytest.mark.parametrize(
    "card",
    [
        {"summary": "x" * 140, "indicator": "info", "source": {"label": "s"}},
        {"summary": "ok", "indicator": "urgent", "source": {"label": "s"}},
        {"summary": "ok", "indicator": "info"},
        {"summary": "ok", "indicator": "info", "source": {"label": ""}},
        {"summary": "ok", "indicator": "info", "source": {"label": "s", "url": None}},
        {"summary": "ok", "indicator": "info", "source": {"label": "s"}, "links": []},
        {"summary": "ok", "indicator": "info", "source": {"label": "s"}, "detail": ""},
        {"summary": "ok", "indicator": "info", "source": {"label": "s"}, "extra": 1},
    ],
    ids=["long-summary", "indicator", "no-source", "empty-label", "null-url", "empty-links", "empty-detail", "extra"],
)
def test_schema_rejects_what_cds_hooks_forbids(card: dict) -> None:
    with pytest.raises(ValidationError):
        CdsResponse.model_validate({"cards": [card]})


def test_schema_allows_an_empty_cards_list_only() -> None:
    assert CdsResponse.model_validate({"cards": []}).cards == ()
    with pytest.raises(ValidationError):
        CdsResponse.model_validate({"cards": None})


# Bad requests: the status the specification gives, a message that says why, never a 500


def _stu3() -> dict:
    return request(condition("K22.0", clinicalStatus="active"))  # STU3: a code, R4: a CodeableConcept


def _without(key: str) -> dict:
    body = request(condition("K22.0"))
    del body["prefetch"][key]
    return body


def _other_patient() -> dict:
    other = condition("K22.0")
    other["subject"] = {"reference": "Patient/someone-else"}
    return request(other)


def _patient_id_mismatch() -> dict:
    body = request(condition("K22.0"))
    body["prefetch"]["patient"]["id"] = "someone-else"
    return body


def _set(path: list[str], value: Any) -> dict:
    body = request(condition("K22.0"))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


def _paged() -> dict:
    body = request(condition("K22.0"))
    body["prefetch"]["conditions"]["link"] = [{"relation": "next", "url": "https://ehr.example.org/fhir?page=2"}]
    return body


BAD_JSON = [
    (b"{bad", 400, "malformed JSON at line 1"),
    (b"", 400, "body is empty"),
    (b"[1, 2]", 400, "expected a JSON object"),
    (bytes(range(128, 256)), 400, "not UTF-8"),
    (b"[" * 100_000, 400, "nested too deeply"),
    (b'{"hook": NaN}', 400, "NaN is not valid JSON"),
]


@pytest.mark.parametrize(
    ("body", "status", "message"), BAD_JSON, ids=["json", "empty", "array", "bytes", "nested", "nan"]
)
def test_malformed_bodies(client: TestClient, body: bytes, status: int, message: str) -> None:
    response = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert message in error_of(response, status)


BAD_REQUESTS = [
    (lambda: _set(["hook"], "order-sign"), 400, "wrong hook 'order-sign'"),
    (lambda: _set(["hookInstance"], "not-a-uuid"), 400, "hookInstance"),
    (lambda: {k: v for k, v in request().items() if k != "context"}, 400, "context: Field required"),
    (lambda: _set(["context", "patientId"], ""), 400, "patientId"),
    (lambda: _set(["context"], {"userId": "Practitioner/1"}), 400, "context.patientId: Field required"),
    (lambda: _set(["fhirServer"], None), 400, "'fhirServer' is null"),
    (lambda: _set(["fhirAuthorization"], {"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                          "scope": "patient/*.read", "subject": "cds"}), 400,
     "fhirServer is required when fhirAuthorization is given"),
    (_stu3, 400, "prefetch.conditions.entry.0.resource.clinicalStatus"),
    (lambda: _set(["prefetch", "conditions", "entry", 0, "resource", "code"], "K22.0"), 400,
     "prefetch.conditions.entry.0.resource.code"),
    (lambda: _set(["prefetch", "conditions", "entry", 0, "resource", "subject"], 7), 400,
     "prefetch.conditions.entry.0.resource.subject"),
    (lambda: _set(["prefetch", "conditions"], {"resourceType": "Condition"}), 400, "expected 'Bundle'"),
    (lambda: _set(["prefetch", "conditions", "entry"], {"resource": {}}), 400, "expected a list of entries"),
    (lambda: _set(["prefetch", "patient", "birthDate"], "1980-13-45"), 400, "prefetch.patient.birthDate"),
    (lambda: _set(["prefetch", "patient", "resourceType"], "Practitioner"), 400, "expected 'Patient'"),
    (lambda: _set(["prefetch", "patient"], "Patient/1"), 400, "expected a FHIR resource"),
    (_other_patient, 400, "Patient/someone-else is not the patient in context"),
    (_patient_id_mismatch, 400, "is not the patient in context"),
    (lambda: _set(["prefetch"], {}), 412, "'patient', 'conditions' missing"),
    (lambda: {k: v for k, v in request().items() if k != "prefetch"}, 412, "fhirServer with fhirAuthorization"),
    (lambda: _without("conditions"), 412, "prefetch 'conditions' missing"),
    (lambda: _set(["prefetch", "patient"], None), 412, "'patient' is null"),
    (_paged, 412, "'next' link"),
]


@pytest.mark.parametrize(
    ("make", "status", "message"),
    BAD_REQUESTS,
    ids=["hook", "hook-instance", "no-context", "empty-patient-id", "no-patient-id", "null", "auth-no-server",
         "stu3", "code-not-concept", "subject-not-reference", "not-a-bundle", "entry-not-a-list",
         "birth-date", "resource-type", "not-a-resource", "other-patient",
         "patient-id", "empty-prefetch", "no-prefetch", "no-conditions", "null-patient", "paged"],
)
def test_bad_requests(client: TestClient, make: Any, status: int, message: str) -> None:
    assert message in error_of(client.post(URL, json=make()), status)


def test_observations_are_read_counted_and_not_mapped(client: TestClient) -> None:
    weight = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
    }
    with_obs = cards_of(client.post(URL, json=request(condition("K22.0"), observations=bundle(weight))))
    without = cards_of(client.post(URL, json=request(condition("K22.0"))))
    (read,), (plain,) = with_obs, without
    assert "Observations: 1 received; none is read" in read.detail and "Observations: 0 received" in plain.detail
    assert (read.uuid, read.summary, read.indicator) == (plain.uuid, plain.summary, plain.indicator)
    elsewhere = {**weight, "subject": {"reference": "Patient/someone-else"}}
    assert "not the patient in context" in error_of(
        client.post(URL, json=request(condition("K22.0"), observations=bundle(elsewhere))), 400
    )


def test_resources_the_service_does_not_read_are_skipped_and_counted(client: TestClient) -> None:
    """An odd resource among many never turns the call into a 400: only what is read is validated."""
    good = {
        "resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{PATIENT}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    }
    odd = [
        {**good, "status": 12, "valueQuantity": "heavy"},  # malformed, but never read
        {**good, "triggeredBy": [{"observation": {"reference": "Observation/1"}, "type": "reflex"}]},  # R5 element
    ]
    clean = request(condition("K22.0"), condition("Q40.0"), observations=bundle(*([good] * 202)))
    body = request(condition("K22.0"), observations=bundle(*([good] * 200), *odd))
    body["prefetch"]["observations"]["entry"] += [None, {"resource": "Observation/1"}, {"fullUrl": "x"}]
    body["prefetch"]["conditions"]["entry"] += [
        {"resource": {"resourceType": "Nope"}},
        {"resource": {"resourceType": "Patient", "id": PATIENT}},
        {"resource": {**condition("G24.3"), "modifierExtension": [{"url": "urn:x", "valueBoolean": True}]}},
        {"resource": {**condition("Q40.0"), "onsetDateTime": "not a date", "assertedDate": "2020-01-01"}},
    ]
    before = metrics(client).get("resources_skipped", 0)
    cards = cards_of(client.post(URL, json=body))
    assert metrics(client)["resources_skipped"] == before + 3 + 3  # 3 entries of observations, 3 of conditions
    # the same answer as the clean record: Q40.0 is read (its unread elements are not validated)
    assert cards == cards_of(client.post(URL, json=clean))
    assert "Observations: 202 received" in next(c.detail for c in cards if "achalasia" in c.summary)


def test_a_condition_with_a_modifier_extension_is_not_read(client: TestClient) -> None:
    negated = condition("K22.0", modifierExtension=[{"url": "urn:example:not-present", "valueBoolean": True}])
    assert cards_of(client.post(URL, json=request(negated))) == []


def test_unknown_service_is_404(client: TestClient) -> None:
    assert "unknown CDS service 'nope'" in error_of(client.post("/cds-services/nope", json=request()), 404)
    assert "unknown CDS service" in error_of(client.post("/cds-services/nope/feedback", json={}), 404)


@pytest.mark.parametrize(
    ("content_type", "status", "message"),
    [
        ("application/json; fhirVersion=5.0", 400, "unsupported FHIR version '5.0'"),
        ("application/json; fhirVersion=3.0", 400, "unsupported FHIR version '3.0'"),
        ("application/json; fhirVersion=4.0", 200, ""),
        ("application/fhir+json; charset=utf-8", 200, ""),
        ("text/plain", 415, "application/json"),
    ],
)
def test_media_type_and_fhir_version(client: TestClient, content_type: str, status: int, message: str) -> None:
    response = client.post(URL, content=json.dumps(request(condition("K22.0"))), headers={"content-type": content_type})
    if status == 200:
        assert cards_of(response)
    else:
        assert message in error_of(response, status)


def test_oversized_bodies_are_413(tmp_path: Path) -> None:
    app = create_app(default_context(), max_body_bytes=2000, settings=dev_settings(tmp_path))
    with local_client(app) as small:
        declared = small.post(URL, content=b" " * 2001, headers={"content-type": "application/json"})
        assert "over the limit of 2000 bytes" in error_of(declared, 413)
        chunks = iter([b" " * 1500, b" " * 1500])  # no Content-Length: counted as it streams
        streamed = small.post(URL, content=chunks, headers={"content-type": "application/json"})
        assert "over the limit" in error_of(streamed, 413)
        assert cards_of(small.post(URL, json=request(condition("K22.0"))))  # under the limit: answered


def test_default_limit_is_four_mebibytes(client: TestClient) -> None:
    body = json.dumps(request(condition("K22.0"))).encode()
    padded = body[:-1] + b" " * (4 * 1024 * 1024 - len(body)) + b"}"
    assert len(padded) == 4 * 1024 * 1024
    assert cards_of(client.post(URL, content=padded, headers={"content-type": "application/json"}))
    assert "over the limit" in error_of(
        client.post(URL, content=padded + b" ", headers={"content-type": "application/json"}), 413
    )


def test_wrong_method_is_405_with_a_message(client: TestClient) -> None:
    assert error_of(client.get(URL), 405)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
PATHS: list[list[Any]] = [[], ["prefetch"], ["prefetch", "patient"], ["prefetch", "conditions"], ["context"],
                          ["prefetch", "conditions", "entry", 0, "resource"], ["prefetch", "conditions", "entry", 0]]
KEYS = st.sampled_from(["hook", "hookInstance", "context", "prefetch", "patient", "conditions", "observations",
                        "resourceType", "entry", "birthDate", "id", "subject", "code", "link", "patientId", "userId",
                        "clinicalStatus", "resource", "type"]) | st.text(max_size=8)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), key=KEYS, value=JSON)
def test_no_client_mistake_gives_a_500(client: TestClient, path: list[str], key: str, value: Any) -> None:
    body = request(condition("K22.0"))
    target: Any = body
    for step in path:
        target = target[step]
    target[key] = value
    response = client.post(URL, json=body)
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        cards_of(response)
    else:
        error_of(response, response.status_code)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON)
def test_no_arbitrary_json_gives_a_500(client: TestClient, value: Any) -> None:
    response = client.post(URL, json=value)
    assert 400 <= response.status_code < 500, response.text


# Feedback (the database, restarts and acceptedSuggestions: test_service_storage.py)


def test_feedback_is_recorded_with_what_the_card_was_about(tmp_path: Path) -> None:
    with local_client(create_app(default_context(), today=lambda: TODAY, settings=dev_settings(tmp_path))) as fresh:
        cards = cards_of(fresh.post(URL, json=request(condition("K22.0"))))
        card = str(cards[0].uuid)
        sent = {
            "feedback": [
                {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:00:00Z",
                 "overrideReason": {"reason": {"system": "urn:example", "code": "manometry-done", "display": "Done"},
                                    "userComment": "manometry was done elsewhere"}},
                {"card": card, "outcome": "accepted", "outcomeTimestamp": "2026-01-15T10:01:00Z"},
            ]
        }
        assert fresh.post(f"{URL}/feedback", json=sent).json() == {"received": 2}
        summary = fresh.get(f"{URL}/feedback").json()
        assert summary == {
            "received": 2,
            "cards": [{"about": "achalasia/plan", "accepted": 1, "overridden": 1}],
        }
        rows = fresh.app.state.holder["state"].storage.feedback()
        assert (rows[0].override_code, rows[0].override_display, rows[0].override_comment) == (
            "manometry-done", "Done", "manometry was done elsewhere")
        assert PATIENT not in repr(rows)


def test_feedback_summary_is_never_empty_valued(tmp_path: Path) -> None:
    with local_client(create_app(default_context(), settings=dev_settings(tmp_path))) as fresh:
        assert fresh.get(f"{URL}/feedback").json() == {"received": 0}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"feedback": []}, 400, "feedback"),
        ({"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-01-15T10:00:00Z"}]}, 400, "card"),
        ({"feedback": [{"card": "6e5aecb8-bdc5-4a0c-a8ae-865c30cf8dd9", "outcome": "accepted",
                        "outcomeTimestamp": "2026-01-15T10:00:00Z"}]}, 404, "unknown card"),
        ({"feedback": [{"card": "6e5aecb8-bdc5-4a0c-a8ae-865c30cf8dd9", "outcome": "liked",
                        "outcomeTimestamp": "2026-01-15T10:00:00Z"}]}, 400, "outcome"),
        ({"feedback": [{"card": "6e5aecb8-bdc5-4a0c-a8ae-865c30cf8dd9", "outcome": "accepted"}]}, 400,
         "outcomeTimestamp: Field required"),
    ],
    ids=["empty", "card-not-uuid", "unknown-card", "outcome", "no-timestamp"],
)
def test_bad_feedback(client: TestClient, body: dict, status: int, message: str) -> None:
    assert message in error_of(client.post(f"{URL}/feedback", json=body), status)


def test_a_failing_rule_is_a_500_that_gives_no_partial_advice(kb: Any, tmp_path: Path) -> None:
    class BrokenEngine:
        def fire(self, presentation: str, facts: dict[str, Any]) -> list[str]:
            raise RuleExecutionError("rule x failed")

    app = create_app((kb, BrokenEngine()), settings=dev_settings(tmp_path))  # type: ignore[arg-type]
    with local_client(app) as broken:
        assert "no advice is given" in error_of(broken.post(URL, json=request(condition("K22.0"))), 500)
        assert cards_of(broken.post(URL, json=request(condition("I10")))) == []  # nothing to assess: answered
