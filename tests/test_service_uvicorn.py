"""The CDS Hooks service as a record system meets it: a real uvicorn process on a localhost port.

The request is the FHIR R4 example in tests/fixtures/ (a synthetic patient: achalasia coded K22.0,
hypertension, a resolved pneumonia, two vital-sign observations). Answers are checked against the
CDS Hooks models in models/cds_hooks.py, and the server's own output is checked for patient data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from models.cds_hooks import CdsResponse, Discovery, ErrorBody
from models.loader import load
from service import cards as cardlib
from service.app import SERVICE_ID
from tests.cds import issued_uuid
from tests.servers import ROOT, ServerFailed, answers_ok, free_port, running

FIXTURE = Path(__file__).parent / "fixtures" / "patient-view-achalasia.json"
START_TIMEOUT_S = 90


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a plain `uvicorn service.app:app`: ours without any CDS_ variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    return {**env, "PYTHONUNBUFFERED": "1", "CDS_DATA_DIR": str(data_dir), **extra}


def uvicorn(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "service.app:app", "--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, file holding the server's output, data directory); the process is stopped afterwards.

    Local development mode, as `make serve` runs it: no token, loopback only."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    data_dir = tmp_path_factory.mktemp("uvicorn-data")
    env = service_env(data_dir, CDS_INSECURE_DEV="1", CDS_BIND_HOST="127.0.0.1")
    try:
        with running(uvicorn(port), answers_ok(f"{base}/cds-services"), log, timeout=START_TIMEOUT_S, env=env):
            yield base, log, data_dir
    except ServerFailed as error:
        pytest.fail(str(error))


def _post(base: str, path: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{base}{path}", content=body, headers={"content-type": "application/json"}, timeout=30)


def test_discovery_over_http(server: tuple[str, Path, Path]) -> None:
    base, _, _ = server
    found = Discovery.model_validate(httpx.get(f"{base}/cds-services", timeout=10).json())
    assert [(s.id, s.hook) for s in found.services] == [
        (SERVICE_ID, "patient-view"), ("myotomy-order-select", "order-select"), ("myotomy-order-sign", "order-sign")
    ]


def test_fhir_bundle_example_gets_the_expected_cards(server: tuple[str, Path, Path]) -> None:
    base, log, data_dir = server
    response = _post(base, f"/cds-services/{SERVICE_ID}", FIXTURE.read_bytes())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    raw = response.json()
    answer = CdsResponse.model_validate(raw)  # summary < 140, indicator values, required fields, no null or empty
    h = load().content_hash
    patient = json.loads(FIXTURE.read_text())["context"]["patientId"]
    # born 1961: possible pseudoachalasia is a stop flag, so one critical card and no option;
    # the unmapped I10 and the resolved J18.9 give no card (counted only)
    stop_key = f"achalasia/{cardlib.stop_key('possible_pseudoachalasia')}"
    assert [(c.uuid, c.indicator) for c in answer.cards] == [(issued_uuid(data_dir, patient, stop_key, h), "critical")]
    (stop,) = answer.cards
    assert stop.summary.startswith("Stop (Oesophageal achalasia): possible pseudoachalasia. Urgent: ")
    assert stop.source.url and stop.source.url.startswith("https://")
    assert "**Stop: urgent action before anything else**" in stop.detail and "**Sources**" in stop.detail
    assert "Subtype" in stop.detail and "Diagnosis confirmed" in stop.detail
    assert "Observations: 2 received" in stop.detail
    assert "I10" not in stop.detail and "J18.9" not in stop.detail  # no card about them

    def walk(value: Any) -> Iterator[Any]:
        yield value
        if isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    assert all(v not in (None, "", {}) and v != [] for v in walk(raw["cards"]))

    time.sleep(0.3)  # let the access log line reach the file
    output = log.read_text()
    assert f'"POST /cds-services/{SERVICE_ID} HTTP/1.1" 200' in output  # the log is captured, and holds this
    for private in ("1961-03-14", "Achalasia of cardia", "pat-001", "Synthetic"):
        assert private not in output, f"server output holds patient data: {private!r}"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (f"/cds-services/{SERVICE_ID}", b"{not json", 400, "malformed JSON"),
        ("/cds-services/unknown", b"{}", 404, "unknown CDS service"),
        (f"/cds-services/{SERVICE_ID}", json.dumps({**json.loads(FIXTURE.read_text()), "hook": "order-sign"}).encode(),
         400, "wrong hook"),
        (f"/cds-services/{SERVICE_ID}", json.dumps({**json.loads(FIXTURE.read_text()), "prefetch": {}}).encode(),
         412, "missing"),
        (f"/cds-services/{SERVICE_ID}", b" " * (4 * 1024 * 1024 + 1), 413, "over the limit"),
    ],
    ids=["json", "service", "hook", "prefetch", "size"],
)
def test_bad_requests_over_http(
    server: tuple[str, Path, Path], path: str, body: bytes, status: int, message: str
) -> None:
    base, _, _ = server
    response = _post(base, path, body)
    assert response.status_code == status, response.text
    assert message in ErrorBody.model_validate(response.json()).error


def test_feedback_over_http(server: tuple[str, Path, Path]) -> None:
    base, _, _ = server
    cards = _post(base, f"/cds-services/{SERVICE_ID}", FIXTURE.read_bytes()).json()["cards"]
    card = cards[0]["uuid"]
    sent = {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:00:00Z"}]}
    response = _post(base, f"/cds-services/{SERVICE_ID}/feedback", json.dumps(sent).encode())
    assert response.status_code == 200 and response.json() == {"received": 1}
    summary = httpx.get(f"{base}/cds-services/{SERVICE_ID}/feedback", timeout=10).json()
    assert {"about": "achalasia/stop:possible_pseudoachalasia", "overridden": 1} in summary["cards"]


# Configuration read from the environment by a plain uvicorn start


def test_insecure_dev_mode_off_loopback_stops_the_start_with_a_message(tmp_path: Path) -> None:
    env = service_env(tmp_path, CDS_INSECURE_DEV="1", CDS_BIND_HOST="0.0.0.0")
    done = subprocess.run(uvicorn(free_port()), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=START_TIMEOUT_S)
    assert done.returncode != 0
    assert "CDS_INSECURE_DEV=1 is refused with CDS_BIND_HOST=0.0.0.0" in done.stdout + done.stderr


def test_plain_uvicorn_without_configuration_refuses_service_calls(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(uvicorn(port), answers_ok(f"{base}/cds-services"), tmp_path / "server.log",
                 timeout=START_TIMEOUT_S, env=service_env(tmp_path / "data")):
        response = _post(base, f"/cds-services/{SERVICE_ID}", FIXTURE.read_bytes())
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert "CDS_CLIENTS" in ErrorBody.model_validate(response.json()).error


def test_plain_uvicorn_with_trusted_clients_checks_tokens(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1"}
    clients = tmp_path / "clients.yaml"
    clients.write_text(f"- iss: https://ehr.example.com/\n  jwks: {json.dumps({'keys': [jwk]})}\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(tmp_path / "data", CDS_CLIENTS=str(clients), CDS_BASE_URL=base)
    path = f"/cds-services/{SERVICE_ID}"
    with running(uvicorn(port), answers_ok(f"{base}/cds-services"), tmp_path / "server.log",
                 timeout=START_TIMEOUT_S, env=env):
        assert _post(base, path, FIXTURE.read_bytes()).status_code == 401
        now = int(time.time())
        token = jwt.encode({"iss": "https://ehr.example.com/", "aud": base + path, "exp": now + 300, "iat": now,
                            "jti": str(uuid.uuid4())}, key, algorithm="ES384", headers={"kid": "k1"})
        response = httpx.post(f"{base}{path}", content=FIXTURE.read_bytes(), timeout=30,
                              headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
        assert response.status_code == 200 and CdsResponse.model_validate(response.json()).cards
        again = httpx.post(f"{base}{path}", content=FIXTURE.read_bytes(), timeout=30,
                           headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
        assert again.status_code == 401 and "used before" in again.json()["error"]


# A large call does not hold up other callers


def _large_call(patient: str, size: int) -> bytes:
    """A patient-view call of about `size` bytes: thousands of coded Conditions, each validated by the service."""
    entry = {"resource": {
        "resourceType": "Condition", "subject": {"reference": f"Patient/{patient}"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10",
                             "display": "Essential (primary) hypertension"}]}}}
    count = size // (len(json.dumps(entry)) + 2)
    body = {
        "hook": "patient-view", "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": patient},
        "prefetch": {"patient": {"resourceType": "Patient", "id": patient, "birthDate": "1980-01-01"},
                     "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [entry] * count}},
    }
    return json.dumps(body).encode()


def test_discovery_answers_while_a_large_call_is_being_processed(server: tuple[str, Path, Path]) -> None:
    base, _, _ = server
    large = _large_call("pat-large", 4 * 1024 * 1024 - 64 * 1024)
    assert len(large) <= 4 * 1024 * 1024
    result: dict[str, Any] = {}

    def call() -> None:
        result["start"] = time.monotonic()
        result["response"] = _post(base, f"/cds-services/{SERVICE_ID}", large)
        result["end"] = time.monotonic()

    worker = threading.Thread(target=call)
    worker.start()
    answered: list[tuple[float, float]] = []
    while worker.is_alive():
        sent = time.monotonic()
        response = httpx.get(f"{base}/cds-services", timeout=60)
        assert response.status_code == 200
        answered.append((sent, time.monotonic()))
        time.sleep(0.01)
    worker.join()
    assert result["response"].status_code == 200, result["response"].text
    start, end = result["start"], result["end"]
    # Past the upload (the first fifth of the call, generously), discovery must still answer before the call ends.
    during = [(s, e) for s, e in answered if e < end and s > start + (end - start) / 5]
    assert during, (
        f"no discovery answer while the large call was processed ({end - start:.2f} s; "
        f"{len(answered)} discovery calls, the last answered {answered[-1][1] - start:.2f} s after it began)"
    )
