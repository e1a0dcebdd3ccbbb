"""order-select and order-sign: a draft order checked against the plan from the record.

One option in data declares a verified SNOMED CT procedure code: pyloromyotomy, 57922004 "Laparoscopic
pyloromyotomy" (TERM-SNOMED-ECL); the tests at the end use it on the real knowledge base. The logic for the
other options is tested with codes given in memory: FIXTURE_CODE is deliberately not a SNOMED CT identifier
(its partition digits "99" are not a valid partition), so it can never match a real order.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest

from models.cds_hooks import CdsResponse, Discovery
from models.knowledge import ListedCode
from models.terminology import SNOMED_CT
from rules import assess, default_context
from service import orders as orderlib
from service.app import create_app
from tests.cds import dev_settings, local_client

TODAY = date(2026, 1, 15)
PATIENT = "pat-order"
FIXTURE_CODE = "999999999999"  # not a SNOMED CT concept: see the module docstring
SELECT, SIGN = "/cds-services/myotomy-order-select", "/cds-services/myotomy-order-sign"


def with_codes(kb: Any, codes: dict[str, str]) -> Any:
    """The knowledge base with the given option -> fixture code (each code distinct)."""
    options = dict(kb.options)
    for option_id, code in codes.items():
        entry = ListedCode(code=code, display=f"fixture for {option_id}", source="tests/test_service_orders.py")
        options[option_id] = options[option_id].model_copy(update={"snomed_procedures": (entry,)})
    return dataclasses.replace(kb, options=options)


CODES = {"poem": FIXTURE_CODE, "ponseti_casting": "999999999998", "percutaneous_achilles_tenotomy": "999999999997"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    kb, engine = default_context()
    app = create_app((with_codes(kb, CODES), engine), today=lambda: TODAY,
                     settings=dev_settings(tmp_path_factory.mktemp("orders")))
    with local_client(app) as c:
        yield c


def condition(code: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": f"Patient/{PATIENT}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]}}


def draft(rid: str, code: str, system: str = SNOMED_CT) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": rid, "status": "draft", "intent": "order",
            "code": {"coding": [{"system": system, "code": code}]}, "subject": {"reference": f"Patient/{PATIENT}"}}


def call(hook: str, code: str, birth: str, *orders: dict[str, Any], selections: list[str] | None = None) -> dict:
    context: dict[str, Any] = {"userId": "Practitioner/1", "patientId": PATIENT,
                               "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                               "entry": [{"resource": o} for o in orders]}}
    if hook == "order-select":
        context["selections"] = selections or [f"ServiceRequest/{o['id']}" for o in orders]
    return {
        "hook": hook,
        "hookInstance": "0b9e3a4e-8f3c-4c1e-9d55-6a7b8c9d0e1f",
        "context": context,
        "prefetch": {"patient": {"resourceType": "Patient", "id": PATIENT, "birthDate": birth},
                     "conditions": {"resourceType": "Bundle", "type": "searchset",
                                    "entry": [{"resource": condition(code)}]}},
    }


def cards(client: Any, url: str, body: dict) -> list[Any]:
    response = client.post(url, json=body)
    assert response.status_code == 200, response.text
    return list(CdsResponse.model_validate(response.json()).cards)


def test_discovery_lists_both_order_hooks(client: Any) -> None:
    found = Discovery.model_validate(client.get("/cds-services").json())
    hooks = {s.id: s for s in found.services}
    assert hooks["myotomy-order-select"].hook == "order-select"
    assert hooks["myotomy-order-sign"].hook == "order-sign"
    assert set(hooks["myotomy-order-sign"].prefetch) == {"patient", "conditions"}


@pytest.mark.parametrize(("url", "hook"), [(SELECT, "order-select"), (SIGN, "order-sign")])
def test_an_order_before_the_check_first_work_up_gets_a_warning_with_real_actions(client: Any, url: str, hook: str) -> None:
    """Achalasia coded, nothing else recorded: manometry and endoscopy come first, so POEM waits."""
    (card,) = cards(client, url, call(hook, "K22.0", "1980-06-01", draft("sr-1", FIXTURE_CODE)))
    assert card.indicator == "warning" and "check or correct first" in card.summary
    creates = [a for s in card.suggestions for a in s.actions if a.type == "create"]
    deletes = [a for s in card.suggestions for a in s.actions if a.type == "delete"]
    assert creates and all(a.resource["resourceType"] == "ServiceRequest" and a.resource["status"] == "draft"
                           and a.resource["subject"] == {"reference": f"Patient/{PATIENT}"} for a in creates)
    assert any("manometry" in a.resource["code"]["text"] for a in creates)
    assert [a.resourceId for a in deletes] == ["ServiceRequest/sr-1"]
    assert card.selectionBehavior == "any" and all(s.uuid for s in card.suggestions)


def test_a_stop_flag_gives_a_critical_card(client: Any) -> None:
    """Achalasia over 60: possible pseudoachalasia is a stop flag (see the README example)."""
    (card,) = cards(client, SIGN, call("order-sign", "K22.0", "1955-06-01", draft("sr-2", FIXTURE_CODE)))
    assert card.indicator == "critical" and "stop flag" in card.summary


def test_an_order_that_fits_the_plan_gets_no_card(client: Any) -> None:
    """Clubfoot in an infant: Ponseti casting is the preferred treatment and no flag stands."""
    plan = assess({"age": {"value": 6, "unit": "weeks"}, "conditions": [{"presentation": "clubfoot"}]})
    assert orderlib.verdict(plan, "clubfoot", "ponseti_casting") is None
    body = call("order-sign", "Q66.00", (TODAY.replace(day=1)).isoformat(), draft("sr-3", "999999999998"))
    assert cards(client, SIGN, body) == []


def test_first_line_care_not_recorded_gets_a_warning(client: Any) -> None:
    body = call("order-sign", "Q66.00", TODAY.replace(day=1).isoformat(), draft("sr-4", "999999999997"))
    (card,) = cards(client, SIGN, body)
    assert card.indicator == "warning" and "first-line care is not recorded" in card.detail


def test_orders_that_name_no_listed_procedure_get_no_card(client: Any) -> None:
    for order in (draft("sr-5", "123456789"), draft("sr-6", FIXTURE_CODE, system="http://www.ama-assn.org/go/cpt"),
                  {"resourceType": "MedicationRequest", "id": "mr-1"}, {"resourceType": "ServiceRequest"}):
        assert cards(client, SIGN, call("order-sign", "K22.0", "1980-06-01", order)) == []


def test_order_select_reads_only_the_selected_orders(client: Any) -> None:
    body = call("order-select", "K22.0", "1980-06-01", draft("sr-7", FIXTURE_CODE), draft("sr-8", "123456789"),
                selections=["ServiceRequest/sr-8"])
    assert cards(client, SELECT, body) == []


def test_an_option_no_coded_presentation_offers_gets_no_card(client: Any) -> None:
    """POEM ordered for a patient whose record codes only clubfoot: nothing in the plan speaks to it."""
    assert cards(client, SIGN, call("order-sign", "Q66.00", "2025-12-01", draft("sr-9", FIXTURE_CODE))) == []


def test_a_wrong_hook_or_context_is_400(client: Any) -> None:
    body = call("order-sign", "K22.0", "1980-06-01", draft("sr-1", FIXTURE_CODE))
    assert client.post(SELECT, json=body).status_code == 400  # order-sign body to the order-select service
    del body["context"]["draftOrders"]
    assert client.post(SIGN, json=body).status_code == 400


def test_the_real_knowledge_base_declares_only_verified_procedure_codes() -> None:
    kb, _ = default_context()
    for option in kb.options.values():
        for entry in option.snomed_procedures:
            assert entry.source.startswith("http") or entry.source in kb.citations, option.id


# --- the real code in data: 57922004 Laparoscopic pyloromyotomy ------------------------------------------
LAP_PYLOROMYOTOMY = "57922004"


def test_pyloromyotomy_declares_its_verified_code() -> None:
    kb, _ = default_context()
    assert [(e.code, e.display) for e in kb.options["pyloromyotomy"].snomed_procedures] == [
        (LAP_PYLOROMYOTOMY, "Laparoscopic pyloromyotomy")]


@pytest.mark.parametrize(("url", "hook"), [(SELECT, "order-select"), (SIGN, "order-sign")])
def test_a_laparoscopic_pyloromyotomy_ordered_before_correction_gets_a_card(client: Any, url: str, hook: str) -> None:
    """An infant coded Q40.0 with nothing else recorded: confirmation and correction come first."""
    kb, _ = default_context()
    plan = assess({"age": {"value": 5, "unit": "weeks"},
                   "conditions": [{"presentation": "infantile_hypertrophic_pyloric_stenosis"}]})
    standing = {f.severity for f in plan.standing_flags}
    assert standing & {"stop", "do_first"}, "the plan must hold a stop or check-first flag for this test"
    birth = (TODAY.toordinal() - 35)
    body = call(hook, "Q40.0", date.fromordinal(birth).isoformat(), draft("sr-p1", LAP_PYLOROMYOTOMY))
    (card,) = cards(client, url, body)
    assert card.indicator in ("warning", "critical")
    assert "Ramstedt extramucosal pyloromyotomy" in card.summary + card.detail
    deletes = [a for s in card.suggestions for a in s.actions if a.type == "delete"]
    assert [a.resourceId for a in deletes] == ["ServiceRequest/sr-p1"]
    assert any(a.type == "create" for s in card.suggestions for a in s.actions)


def test_the_real_code_for_another_presentation_gets_no_card(client: Any) -> None:
    """A laparoscopic pyloromyotomy ordered for an adult coded with achalasia: no plan speaks to it."""
    assert cards(client, SIGN, call("order-sign", "K22.0", "1980-06-01", draft("sr-p2", LAP_PYLOROMYOTOMY))) == []
