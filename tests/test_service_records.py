"""The service on realistic synthetic records (benchmarks/records.py), and paged prefetch.

Paged results are completed from a stub FHIR server on 127.0.0.1 (a thread in this process), which
checks the bearer token the service sends.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from benchmarks import records
from models.terminology import ICD10CM, SNOMED_CT, system_of
from rules import default_context
from service import fhir_fetch
from service.app import SERVICE_ID, create_app
from service.fhir_input import code_map, read_prefetch
from tests.cds import dev_settings, local_client

TODAY = date(2026, 1, 15)
URL = f"/cds-services/{SERVICE_ID}"
TOKEN = "synthetic-access-token"


@pytest.fixture(scope="module")
def kb() -> Any:
    return default_context()[0]


@pytest.fixture(scope="module")
def cohort(kb: Any) -> list[records.Record]:
    return records.cohort(kb, 120, seed=7, today=TODAY)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    app = create_app(default_context(), today=lambda: TODAY, settings=dev_settings(tmp_path_factory.mktemp("rec")))
    with local_client(app) as c:
        yield c


class Stub:
    """A FHIR server on 127.0.0.1 serving fixed bodies by path and query; records what it was sent."""

    def __init__(self) -> None:
        self.bodies: dict[str, Any] = {}
        self.seen: list[tuple[str, str | None]] = []
        self.delay = 0.0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                stub.seen.append((self.path, self.headers.get("Authorization")))
                time.sleep(stub.delay)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.send_response(401)
                    self.end_headers()
                    return
                body = stub.bodies.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/fhir+json")
                self.end_headers()
                if body is not None:
                    self.wfile.write(json.dumps(body).encode())

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"

    def serve(self, bundle_pages: list[dict[str, Any]]) -> None:
        for page in bundle_pages:
            url = next(link["url"] for link in page["link"] if link["relation"] == "self")
            self.bodies[url.removeprefix(self.base.removesuffix("/fhir"))] = page


@pytest.fixture()
def stub() -> Iterator[Stub]:
    server = Stub()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def access(base: str, patient: str) -> dict[str, Any]:
    return {
        "fhirServer": base,
        "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                              "scope": "patient/Condition.read", "subject": "myotomy-cds"},
    }


def a_patient_with(cohort: list[records.Record], *, min_conditions: int = 2) -> records.Record:
    return next(r for r in cohort if r.presentations and len(r.conditions) >= min_conditions
                and not r.patient.get("deceasedBoolean") and "deceasedDateTime" not in r.patient)


# The generator


def test_the_generator_is_seeded_and_realistic(kb: Any, cohort: list[records.Record]) -> None:
    assert len(cohort) >= 100
    again = records.cohort(kb, 120, seed=7, today=TODAY)
    assert [r.patient for r in again] == [r.patient for r in cohort]
    systems = {system_of(c["system"]) for r in cohort for cond in r.conditions for c in cond["code"]["coding"]}
    assert {SNOMED_CT, ICD10CM} <= systems
    assert any(c["system"].startswith("urn:oid:") for r in cohort for cond in r.conditions for c in cond["code"]["coding"])
    assert sum(bool(r.patient.get("deceasedBoolean") or r.patient.get("deceasedDateTime")) for r in cohort) >= 2
    assert all(len(r.observations) >= 150 for r in cohort)
    assert all(any(o.get("code") == "not a CodeableConcept" for o in r.observations) for r in cohort)
    assert len({p for r in cohort for p in r.presentations}) >= 10


def test_every_record_reads_to_what_it_codes(kb: Any, cohort: list[records.Record]) -> None:
    terms = code_map(kb)
    for rec in cohort:
        reading = read_prefetch(records.hook_request(rec)["prefetch"], rec.id, kb, terms, TODAY)
        assert tuple(reading.mapped_codes) == rec.presentations, rec.id
        assert reading.deceased == bool(rec.patient.get("deceasedBoolean") or rec.patient.get("deceasedDateTime"))
        assert reading.observations == len(rec.observations) and reading.skipped >= 2  # unused resources counted


def test_every_record_is_answered_and_the_dead_get_no_cards(client: Any, cohort: list[records.Record]) -> None:
    for rec in cohort:
        response = client.post(URL, json=records.hook_request(rec))
        assert response.status_code == 200, (rec.id, response.text)
        if rec.patient.get("deceasedBoolean") or rec.patient.get("deceasedDateTime"):
            assert response.json() == {"cards": []}


# Paged prefetch


def test_a_paged_prefetch_without_server_access_is_412(client: Any, cohort: list[records.Record]) -> None:
    rec = a_patient_with(cohort)
    body = records.hook_request(rec, observations=False)
    body["prefetch"]["conditions"] = records.pages(rec.conditions, 1, "https://ehr.example.org/fhir",
                                                   f"Condition?patient={rec.id}")[0]
    response = client.post(URL, json=body)
    assert response.status_code == 412 and "fhirServer" in response.json()["error"]


# The knowledge reads some details from Observations, so a call with server access and no
# `observations` prefetch has them searched on the server too: these calls send them prefetched.


def test_the_next_pages_are_read_from_the_server_with_the_token(
    client: Any, cohort: list[records.Record], stub: Stub
) -> None:
    rec = a_patient_with(cohort)
    whole = client.post(URL, json=records.hook_request(rec, extra=False)).json()
    paged = records.pages(rec.conditions, 1, stub.base, f"Condition?patient={rec.id}")
    assert len(paged) >= 2
    stub.serve(paged)
    body = records.hook_request(rec, extra=False)
    body["prefetch"]["conditions"] = paged[0]
    body.update(access(stub.base, rec.id))
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == whole
    assert len(stub.seen) == len(paged) - 1 and all(auth == f"Bearer {TOKEN}" for _, auth in stub.seen)


def test_a_missing_key_is_searched_for_on_the_server(client: Any, cohort: list[records.Record], stub: Stub) -> None:
    rec = a_patient_with(cohort, min_conditions=1)
    whole = client.post(URL, json=records.hook_request(rec, extra=False)).json()
    stub.bodies[f"/fhir/Condition?patient={rec.id}"] = records.search_bundle(rec.conditions)
    body = records.hook_request(rec, extra=False)
    del body["prefetch"]["conditions"]
    body.update(access(stub.base, rec.id))
    response = client.post(URL, json=body)
    assert response.status_code == 200 and response.json() == whole


@pytest.mark.parametrize("problem", ["outside", "too-many-pages", "slow", "refused", "not-https"])
def test_server_problems_are_clear_errors(
    client: Any, cohort: list[records.Record], stub: Stub, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    rec = a_patient_with(cohort)
    paged = records.pages(rec.conditions, 1, stub.base, f"Condition?patient={rec.id}")
    stub.serve(paged)
    body = records.hook_request(rec, extra=False)
    body["prefetch"]["conditions"] = paged[0]
    body.update(access(stub.base, rec.id))
    expected = 502
    if problem == "outside":
        paged[0]["link"][-1]["url"] = "http://127.0.0.1:9/elsewhere?page=2"
    elif problem == "too-many-pages":
        monkeypatch.setattr(fhir_fetch, "MAX_PAGES", 1)
    elif problem == "slow":
        monkeypatch.setattr(fhir_fetch, "FETCH_TIMEOUT_S", 0.2)
        stub.delay = 1.0
    elif problem == "refused":
        body["fhirAuthorization"]["access_token"] = "wrong"
    else:
        body["fhirServer"] = "http://ehr.example.org/fhir"
        expected = 400
    response = client.post(URL, json=body)
    assert response.status_code == expected, response.text
    assert TOKEN not in response.text and response.json()["error"]
    if problem == "outside":
        assert stub.seen == []  # the token never left for another address
