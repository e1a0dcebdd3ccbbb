"""Feedback on cards (CDS Hooks 2.0 "Feedback"), checked against the cards issued and kept in the database.

What is kept is what the feedback message carries: the card uuid, the outcome and its time, the
ids of the accepted suggestions, and the override reason (its coding and the clinician's
`userComment`), with what the card was about in the knowledge base. A card uuid is per patient
but keyed by a secret (card_ids.py), so no row names or identifies a patient; a `userComment` is
free text and may, which is why the database is to be protected as clinical data.

Checked before anything is stored (all items or none):
- the card must have been issued by this service (404 otherwise);
- `accepted` on a card with suggestions must carry `acceptedSuggestions` (the specification
  requires them for accepted outcomes), each naming one of that card's suggestions (400).
"""

from __future__ import annotations

from typing import Any

from models.cds_hooks import FeedbackRequest
from service.storage import FeedbackRow, Storage


class FeedbackError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def rows_for(request: FeedbackRequest, storage: Storage) -> list[FeedbackRow]:
    """The rows to store for `request`; FeedbackError (404 or 400) names the first item that is wrong."""
    issued = storage.issued(str(item.card) for item in request.feedback)
    rows = []
    for index, item in enumerate(request.feedback):
        where = f"feedback.{index}"
        card = issued.get(str(item.card))
        if card is None:
            raise FeedbackError(404, f"{where}.card: unknown card {item.card} (not issued by this service)")
        accepted = tuple(s.id for s in item.acceptedSuggestions or ())
        if item.outcome == "accepted" and card.suggestions and not accepted:
            raise FeedbackError(
                400,
                f"{where}.acceptedSuggestions: required when the outcome is accepted on a card with suggestions "
                "(CDS Hooks 2.0): name the suggestion uuids the user accepted",
            )
        if accepted and not card.suggestions:
            raise FeedbackError(400, f"{where}.acceptedSuggestions: card {item.card} has no suggestions")
        offered = {s for s in card.suggestions if s}
        unknown = [a for a in accepted if a not in offered]
        if unknown and len(offered) == len(card.suggestions):  # every suggestion has a uuid to compare with
            raise FeedbackError(
                400, f"{where}.acceptedSuggestions: {unknown[0]!r} is not a suggestion of card {item.card}"
            )
        reason = item.overrideReason
        coding = reason.reason if reason is not None else None
        rows.append(
            FeedbackRow(
                card=str(item.card),
                about=card.about,
                outcome=item.outcome,
                outcome_timestamp=item.outcomeTimestamp,
                accepted_suggestions=accepted or None,
                override_system=coding.system if coding else None,
                override_code=coding.code if coding else None,
                override_display=coding.display if coding else None,
                override_comment=reason.userComment if reason is not None else None,
            )
        )
    return rows


def summary(storage: Storage) -> dict[str, Any]:
    """Counts per card subject and outcome, for whoever maintains the knowledge; no empty values."""
    per_about: dict[str, dict[str, Any]] = {}
    total = 0
    for about, outcome, count in storage.feedback_counts():
        per_about.setdefault(about, {"about": about})[outcome] = count
        total += count
    body: dict[str, Any] = {"received": total}
    if per_about:
        body["cards"] = list(per_about.values())
    return body
