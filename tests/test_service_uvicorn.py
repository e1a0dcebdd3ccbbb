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
from models.loader import load
from service import cards as cardlib
from service.app import SERVICE_ID
from tests.servers import ServerFailed, answers_ok, free_port, running

FIXTURE = Path(__file__).parent / "fixtures" / "patient-view-achalasia.json"
START_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, file holding the server's output); the process is stopped afterwards."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    command = [sys.executable, "-m", "uvicorn", "service.app:app", "--host", "127.0.0.1", "--port", str(port)]
    try:
        with running(command, answers_ok(f"{base}/cds-services"), log, timeout=START_TIMEOUT_S,
                     env={**os.environ, "PYTHONUNBUFFERED": "1"}):
            yield base, log
    except ServerFailed as error:
        pytest.fail(str(error))


def _post(base: str, path: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{base}{path}", content=body, headers={"content-type": "application/json"}, timeout=30)


def test_discovery_over_http(server: tuple[str, Path]) -> None:
    base, _ = server
    found = Discovery.model_validate(httpx.get(f"{base}/cds-services", timeout=10).json())
    assert [(s.id, s.hook) for s in found.services] == [(SERVICE_ID, "patient-view")]


def test_fhir_bundle_example_gets_the_expected_cards(server: tuple[str, Path]) -> None:
    base, log = server
    response = _post(base, f"/cds-services/{SERVICE_ID}", FIXTURE.read_bytes())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    raw = response.json()
    answer = CdsResponse.model_validate(raw)  # summary < 140, indicator values, required fields, no null or empty
    h = load().content_hash
    # born 1961: possible pseudoachalasia is a stop flag, so one critical card and no option
    assert [(c.uuid, c.indicator) for c in answer.cards] == [
        (cardlib.card_uuid("achalasia", cardlib.stop_key("possible_pseudoachalasia"), h), "critical"),
        (cardlib.card_uuid(cardlib.UNMAPPED, cardlib.NOT_MAPPED, h), "info"),
    ]
    stop, not_mapped = answer.cards
    assert stop.summary.startswith("Stop (Oesophageal achalasia): possible pseudoachalasia. Urgent: ")
    assert stop.source.url and stop.source.url.startswith("https://")
    assert "**Stop: urgent action before anything else**" in stop.detail and "**Sources**" in stop.detail
    assert "Subtype" in stop.detail and "Diagnosis confirmed" in stop.detail
    assert "Observations: 2 received" in stop.detail
    assert "I10" in not_mapped.detail and "J18.9" in not_mapped.detail

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
def test_bad_requests_over_http(server: tuple[str, Path], path: str, body: bytes, status: int, message: str) -> None:
    base, _ = server
    response = _post(base, path, body)
    assert response.status_code == status, response.text
    assert message in ErrorBody.model_validate(response.json()).error


def test_feedback_over_http(server: tuple[str, Path]) -> None:
    base, _ = server
    cards = _post(base, f"/cds-services/{SERVICE_ID}", FIXTURE.read_bytes()).json()["cards"]
    card = cards[0]["uuid"]
    sent = {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:00:00Z"}]}
    response = _post(base, f"/cds-services/{SERVICE_ID}/feedback", json.dumps(sent).encode())
    assert response.status_code == 200 and response.json() == {"received": 1}
    summary = httpx.get(f"{base}/cds-services/{SERVICE_ID}/feedback", timeout=10).json()
    assert {"card": card, "about": "achalasia/stop:possible_pseudoachalasia", "overridden": 1} in summary["cards"]
