"""The CDS Hooks service as a record system meets it: a real uvicorn process on a localhost port.

The request is the FHIR R4 example in tests/fixtures/ (a synthetic patient: achalasia coded K22.0,
hypertension, a resolved pneumonia, two vital-sign observations). Answers are checked against the
CDS Hooks models in models/cds_hooks.py, and the server's own output is checked for patient data.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx2 as httpx
import pytest

from models.cds_hooks import CdsResponse, Discovery, ErrorBody
from rules.knowledge_base import load
from service.app import SERVICE_ID
from tests.cds import issued_uuid
from tests.servers import ServerFailed, answers_ok, free_port, running

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
    assert [(s.id, s.hook) for s in found.services] == [(SERVICE_ID, "patient-view")]


def test_fhir_bundle_example_gets_the_expected_cards(server: tuple[str, Path, Path]) -> None:
    base, log, data_dir = server
    response = _post(base, f"/cds-services/{SERVICE_ID}", FIXTURE.read_bytes())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    raw = response.json()
    answer = CdsResponse.model_validate(raw)  # summary < 140, indicator values, required fields, no null or empty
    h = load().content_hash
    patient = json.loads(FIXTURE.read_text())["context"]["patientId"]
    assert [(c.uuid, c.indicator) for c in answer.cards] == [
        (issued_uuid(data_dir, patient, "achalasia/red_flag:diagnosis_not_confirmed", h), "warning"),
        (issued_uuid(data_dir, patient, "achalasia/red_flag:malignancy_not_excluded", h), "warning"),
        (issued_uuid(data_dir, patient, "achalasia/red_flag:possible_pseudoachalasia", h), "warning"),
        (issued_uuid(data_dir, patient, "achalasia/inputs_missing", h), "info"),
    ]
    flags = answer.cards[:3]
    assert all(c.source.url and c.source.url.startswith("https://") for c in flags)
    assert all("**Work-up first**" in c.detail and "**Sources**" in c.detail for c in flags)
    assert "`subtype`" in answer.cards[3].detail and "`diagnosis_confirmed`" in answer.cards[3].detail
    assert "Observations: 2 received" in answer.cards[3].detail
    assert all("I10" not in c.detail and "J18.9" not in c.detail for c in answer.cards)  # no card about them

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
    assert {"about": "achalasia/red_flag:diagnosis_not_confirmed", "overridden": 1} in summary["cards"]
