"""What the service keeps: feedback in the database across restarts, the issued cards that feedback is
checked against, seen tokens, and the card-uuid key. Nothing kept names the patient."""

from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from rules import default_context
from service.app import SERVICE_ID, create_app
from service.card_ids import KEY_FILE, load_or_create_key
from service.storage import IssuedCard, Storage
from tests.cds import dev_settings, local_client

URL = f"/cds-services/{SERVICE_ID}"
PATIENT = "pat-4711"
BIRTH = "1961-03-14"
ACHALASIA = "achalasia/stop:possible_pseudoachalasia"  # born 1961: a stop flag, one critical card
DYSTONIA = "cervical_dystonia/plan"
CODES = ("K22.0", "G24.3")  # two presentations, so two cards


def request(patient: str = PATIENT) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": patient},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": patient, "birthDate": BIRTH},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
                "resourceType": "Condition", "subject": {"reference": f"Patient/{patient}"},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]}}}
                for code in CODES]},
        },
    }


def app_on(data_dir: Path, **overrides: Any) -> Any:
    return local_client(create_app(default_context(), settings=dev_settings(data_dir, **overrides)))


def feedback(card: str, outcome: str = "overridden", **extra: Any) -> dict[str, Any]:
    return {"feedback": [{"card": card, "outcome": outcome, "outcomeTimestamp": "2026-01-15T10:00:00Z", **extra}]}


def test_feedback_survives_a_restart_and_keeps_what_the_message_carries(tmp_path: Path) -> None:
    with app_on(tmp_path) as first:
        cards = first.post(URL, json=request()).json()["cards"]
        card = cards[0]["uuid"]
        reason = {"reason": {"system": "urn:example:reasons", "code": "done-elsewhere", "display": "Done elsewhere"},
                  "userComment": "manometry done at another hospital"}
        assert first.post(f"{URL}/feedback", json=feedback(card, overrideReason=reason)).json() == {"received": 1}

    with app_on(tmp_path) as second:  # a new app instance on the same database file
        assert second.get(f"{URL}/feedback").json() == {"received": 1, "cards": [{"about": ACHALASIA, "overridden": 1}]}
        # a card issued before the restart still takes feedback, and keeps its uuid for the same patient
        assert second.post(f"{URL}/feedback", json=feedback(cards[1]["uuid"], "accepted")).json() == {"received": 1}
        assert [c["uuid"] for c in second.post(URL, json=request()).json()["cards"]] == [c["uuid"] for c in cards]

    engine = create_engine(f"sqlite:///{tmp_path / 'cds.sqlite3'}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM feedback ORDER BY id")).mappings().all()
    engine.dispose()
    assert [dict(r) for r in rows] == [
        {"id": 1, "card": card, "about": ACHALASIA, "outcome": "overridden",
         "outcome_timestamp": "2026-01-15T10:00:00Z", "accepted_suggestions": None,
         "override_system": "urn:example:reasons", "override_code": "done-elsewhere",
         "override_display": "Done elsewhere", "override_comment": "manometry done at another hospital"},
        {"id": 2, "card": cards[1]["uuid"], "about": DYSTONIA,
         "outcome": "accepted", "outcome_timestamp": "2026-01-15T10:00:00Z", "accepted_suggestions": None,
         "override_system": None, "override_code": None, "override_display": None, "override_comment": None},
    ]


def test_nothing_kept_names_the_patient(tmp_path: Path) -> None:
    with app_on(tmp_path) as client:
        cards = client.post(URL, json=request()).json()["cards"]
        client.post(f"{URL}/feedback", json=feedback(cards[0]["uuid"]))
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.is_file())  # database, WAL, key
    for private in (PATIENT, BIRTH, *CODES, "Practitioner/1"):
        assert private.encode() not in stored, private


def test_accepted_on_a_card_with_suggestions_needs_accepted_suggestions(tmp_path: Path) -> None:
    with app_on(tmp_path) as client:
        storage: Storage = client.app.state.holder["state"].storage
        with_suggestions = "11111111-1111-4111-8111-111111111111"
        without = "22222222-2222-4222-8222-222222222222"
        storage.record_issued([IssuedCard(with_suggestions, "x/plan", ("sug-1", "sug-2")),
                               IssuedCard(without, "y/plan")])

        def post(body: dict[str, Any]) -> Any:
            return client.post(f"{URL}/feedback", json=body)

        missing = post(feedback(with_suggestions, "accepted"))
        assert missing.status_code == 400 and "acceptedSuggestions: required" in missing.json()["error"]
        unknown = post(feedback(with_suggestions, "accepted", acceptedSuggestions=[{"id": "sug-9"}]))
        assert unknown.status_code == 400 and "'sug-9' is not a suggestion" in unknown.json()["error"]
        none_offered = post(feedback(without, "accepted", acceptedSuggestions=[{"id": "sug-1"}]))
        assert none_offered.status_code == 400 and "has no suggestions" in none_offered.json()["error"]
        # all or none: one bad item, nothing stored
        mixed = {"feedback": [*feedback(without, "accepted")["feedback"],
                              *feedback(with_suggestions, "accepted")["feedback"]]}
        assert post(mixed).status_code == 400 and storage.feedback() == []

        assert post(feedback(without, "accepted")).json() == {"received": 1}  # no suggestions: none needed
        assert post(feedback(with_suggestions, "accepted", acceptedSuggestions=[{"id": "sug-2"}])).status_code == 200
        assert post(feedback(with_suggestions, "overridden")).status_code == 200
        assert [(r.outcome, r.accepted_suggestions) for r in storage.feedback()] == [
            ("accepted", None), ("accepted", ("sug-2",)), ("overridden", None)]


def test_a_database_url_names_another_database(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "feedback.db"
    elsewhere.parent.mkdir()
    with app_on(tmp_path / "data", database_url=f"sqlite:///{elsewhere}") as client:
        cards = client.post(URL, json=request()).json()["cards"]
        assert client.post(f"{URL}/feedback", json=feedback(cards[0]["uuid"])).status_code == 200
    assert elsewhere.exists() and not (tmp_path / "data" / "cds.sqlite3").exists()
    assert (tmp_path / "data" / KEY_FILE).exists()  # the card-uuid key stays in the data directory


def test_the_card_uuid_key_is_made_once_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "new")
    assert len(key) == 32 and load_or_create_key(tmp_path / "new") == key
    assert stat.S_IMODE((tmp_path / "new" / KEY_FILE).stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path / "other") != key


def test_issued_cards_are_bounded(tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        storage.record_issued([IssuedCard(f"00000000-0000-4000-8000-{i:012d}", "x/y") for i in range(30)])
        storage.record_issued([IssuedCard("00000000-0000-4000-8000-000000000029", "x/y")])  # again: no new row
        storage.prune_issued(keep=10)
        kept = storage.issued(f"00000000-0000-4000-8000-{i:012d}" for i in range(30))
        assert sorted(kept) == [f"00000000-0000-4000-8000-{i:012d}" for i in range(20, 30)]
    finally:
        storage.close()


def test_a_token_id_is_remembered_until_it_expires(tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        later = time.time() + 300
        assert storage.first_use("https://ehr.example/", "jti-1", later)
        assert not storage.first_use("https://ehr.example/", "jti-1", later)
        assert storage.first_use("https://other.example/", "jti-1", later)  # per issuer
        assert storage.first_use("https://ehr.example/", "jti-old", time.time() - 1)
        assert storage.first_use("https://ehr.example/", "jti-old", later)  # its token has expired anyway
    finally:
        storage.close()


@pytest.mark.parametrize("outcome", ["accepted", "overridden"])
def test_feedback_from_a_second_app_on_the_same_database(tmp_path: Path, outcome: str) -> None:
    """Two workers share one database: a card issued by one takes feedback through the other."""
    with app_on(tmp_path) as one, app_on(tmp_path) as two:
        card = one.post(URL, json=request()).json()["cards"][0]["uuid"]
        assert two.post(f"{URL}/feedback", json=feedback(card, outcome)).json() == {"received": 1}
        assert one.get(f"{URL}/feedback").json()["received"] == 1
