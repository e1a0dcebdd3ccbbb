"""Card uuids per patient: uuid5 of a keyed hash of the patient id, the card's key and the knowledge-base hash.

cards.py names each card by what it is about (`achalasia/plan`, `achalasia/stop:<flag>`) and the knowledge-base
content hash; here that name is combined with an HMAC-SHA256 of the patient id, so that
- two patients never share a card uuid, and one patient's card keeps its uuid from call to call
  (same patient, same advice, same knowledge base);
- a card uuid (in the feedback database, in a client's logs) cannot be traced back to a patient:
  the hash is keyed by a random secret kept in the data directory (`card-uuid.key`, created on
  first start, readable by the owner only), never by the raw id, which is never logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from uuid import UUID, uuid5

PATIENT_CARD_NAMESPACE = UUID("0f4c3b4e-2a57-4f0e-9a55-6b1e3f5c2d71")  # fixed: changing it changes every uuid
KEY_FILE = "card-uuid.key"


def load_or_create_key(data_dir: Path) -> bytes:
    """The secret in `data_dir/card-uuid.key`; created (mode 0600) if missing. Safe with several workers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
    for _ in range(50):  # another worker may be writing it right now
        text = path.read_text().strip()
        if len(text) == 64:
            return bytes.fromhex(text)
        time.sleep(0.02)
    raise RuntimeError(f"{path}: not a card-uuid key (expected 64 hex digits); remove it to make a new one")


def patient_hash(key: bytes, patient_id: str) -> str:
    return hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


def patient_card_uuid(patient: str, card_key: str, kb_hash: str) -> UUID:
    """`patient` is patient_hash(...); `card_key` what the card is about, e.g. 'achalasia/plan'."""
    return uuid5(PATIENT_CARD_NAMESPACE, f"{patient}/{card_key}/{kb_hash}")
