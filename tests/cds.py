"""Helpers for the CDS Hooks service tests: an app in local development mode, and card uuids as issued."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.card_ids import load_or_create_key, patient_card_uuid, patient_hash
from service.settings import Settings

LOCAL = "http://127.0.0.1"  # the Host the test client sends; insecure dev mode accepts loopback names only


def dev_settings(data_dir: Path, **overrides: Any) -> Settings:
    """No tokens needed (CDS_INSECURE_DEV=1 on 127.0.0.1), the database in `data_dir`."""
    return Settings(insecure_dev=True, bind_host="127.0.0.1", data_dir=data_dir, **overrides)


def local_client(app: FastAPI, **kwargs: Any) -> TestClient:
    """A test client that calls from 127.0.0.1 to 127.0.0.1, as a process on this machine would."""
    return TestClient(app, base_url=LOCAL, client=("127.0.0.1", 50000), **kwargs)


def issued_uuid(data_dir: Path, patient_id: str, about: str, kb_hash: str) -> UUID:
    """The uuid the service gives the card about `about` (e.g. 'achalasia/plan') for this patient."""
    return patient_card_uuid(patient_hash(load_or_create_key(data_dir), patient_id), about, kb_hash)
