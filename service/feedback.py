"""Feedback on cards, kept in memory for the life of the process.

Only what says how the advice fared is kept: the card uuid (patient-independent, see cards.py),
what the card was about, the outcome, its time and an override reason's code. A clinician's free
text comment (`overrideReason.userComment`) may name the patient, so it is never stored.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from models.cds_hooks import FeedbackItem

MAX_RECORDS = 100_000  # oldest dropped beyond this, so memory stays bounded


@dataclass(frozen=True)
class Record:
    card: UUID
    about: str
    outcome: str
    outcome_timestamp: str
    override_reason: tuple[str, str] | None  # (system, code)


class FeedbackStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Record] = []

    def add(self, items: list[tuple[FeedbackItem, str]]) -> None:
        """Record (feedback, what its card is about) pairs, all or none."""
        records = [
            Record(
                card=item.card,
                about=about,
                outcome=item.outcome,
                outcome_timestamp=item.outcomeTimestamp,
                override_reason=(item.overrideReason.reason.system, item.overrideReason.reason.code)
                if item.overrideReason and item.overrideReason.reason
                else None,
            )
            for item, about in items
        ]
        with self._lock:
            self._records.extend(records)
            del self._records[:-MAX_RECORDS]

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def summary(self) -> list[dict[str, Any]]:
        """Counts per card and outcome, for whoever maintains the knowledge."""
        counts: dict[tuple[UUID, str], Counter[str]] = {}
        for record in self.records():
            counts.setdefault((record.card, record.about), Counter())[record.outcome] += 1
        return [
            {"card": str(card), "about": about, **{k: v for k, v in sorted(c.items())}}
            for (card, about), c in sorted(counts.items(), key=lambda kv: kv[0][1])
        ]
