"""What the service keeps between calls and across restarts, through SQLAlchemy (any database it supports).

Three tables, none with patient data:
- `feedback`: what a CDS Hooks feedback message carries (card uuid, outcome, outcomeTimestamp, the
  accepted suggestion ids, the override reason's coding and the clinician's `userComment`), plus
  what the card was about in the knowledge base (`achalasia/plan`, `achalasia/stop:<flag>`), from `issued_cards`.
  The free-text `userComment` is kept because the standard's message carries it; it may name a
  patient, so the database is to be protected as clinical data.
- `issued_cards`: the card uuids this service has issued -> what each is about and its suggestion
  uuids, so that feedback can be checked (unknown card, `acceptedSuggestions` missing). A card uuid
  is keyed by a secret (see card_ids.py), so it says nothing about the patient. Bounded: the oldest
  rows go beyond MAX_ISSUED_CARDS.
- `seen_tokens`: a hash of each accepted token's issuer and `jti` until the token expires, so a
  replayed token is refused by every worker process and after a restart.

The default is an SQLite file in the data directory (CDS_DATA_DIR); CDS_DATABASE_URL names another.
The schema is created at start-up if missing (no migrations yet: this is a prototype).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

MAX_ISSUED_CARDS = 200_000
PRUNE_EVERY = 500  # writes between two prunings of issued_cards and seen_tokens

metadata = MetaData()

feedback_table = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card", String(36), nullable=False, index=True),
    Column("about", String(200), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("outcome_timestamp", String(40), nullable=False),
    Column("accepted_suggestions", JSON(none_as_null=True), nullable=True),
    Column("override_system", Text, nullable=True),
    Column("override_code", Text, nullable=True),
    Column("override_display", Text, nullable=True),
    Column("override_comment", Text, nullable=True),
)

issued_cards_table = Table(
    "issued_cards",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("about", String(200), nullable=False),
    Column("suggestions", JSON, nullable=False),
)

seen_tokens_table = Table(
    "seen_tokens",
    metadata,
    Column("token", String(64), primary_key=True),  # sha256 of iss and jti
    Column("expires_at", Float, nullable=False, index=True),
)


@dataclass(frozen=True)
class IssuedCard:
    uuid: str
    about: str
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedbackRow:
    card: str
    about: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...] | None = None
    override_system: str | None = None
    override_code: str | None = None
    override_display: str | None = None
    override_comment: str | None = None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Storage:
    def __init__(self, url: str) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        self.engine: Engine = create_engine(
            url, connect_args={"timeout": 30} if is_sqlite else {}, pool_pre_ping=not is_sqlite
        )
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._writes = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    def _count_write(self) -> bool:
        """True once every PRUNE_EVERY writes: time to drop old rows."""
        with self._lock:
            self._writes += 1
            return self._writes % PRUNE_EVERY == 0

    # Issued cards

    def record_issued(self, cards: Sequence[IssuedCard]) -> None:
        """Remember issued cards; a card issued before (same uuid) is left as it is."""
        if not cards:
            return
        wanted = {c.uuid: c for c in cards}
        with self.engine.begin() as conn:
            known = set(
                conn.execute(select(issued_cards_table.c.uuid).where(issued_cards_table.c.uuid.in_(wanted))).scalars()
            )
            new = [
                {"uuid": c.uuid, "about": c.about, "suggestions": list(c.suggestions)}
                for u, c in wanted.items()
                if u not in known
            ]
            if not new:
                return
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(issued_cards_table), new)
        except IntegrityError:  # another worker recorded one of them in between: one by one
            for row in new:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(insert(issued_cards_table), row)
                except IntegrityError:
                    pass
        if self._count_write():
            self.prune_issued()

    def prune_issued(self, keep: int = MAX_ISSUED_CARDS) -> None:
        with self.engine.begin() as conn:
            last = conn.execute(select(func.max(issued_cards_table.c.seq))).scalar()
            if last is not None and last > keep:
                conn.execute(delete(issued_cards_table).where(issued_cards_table.c.seq <= last - keep))

    def issued(self, uuids: Iterable[str]) -> dict[str, IssuedCard]:
        wanted = list(dict.fromkeys(uuids))
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(issued_cards_table.c.uuid, issued_cards_table.c.about, issued_cards_table.c.suggestions).where(
                    issued_cards_table.c.uuid.in_(wanted)
                )
            ).all()
        return {r.uuid: IssuedCard(r.uuid, r.about, tuple(r.suggestions or ())) for r in rows}

    # Feedback

    def add_feedback(self, rows: Sequence[FeedbackRow]) -> None:
        """All or none."""
        if not rows:
            return
        values = [
            {
                "card": r.card,
                "about": r.about,
                "outcome": r.outcome,
                "outcome_timestamp": r.outcome_timestamp,
                "accepted_suggestions": list(r.accepted_suggestions) if r.accepted_suggestions is not None else None,
                "override_system": r.override_system,
                "override_code": r.override_code,
                "override_display": r.override_display,
                "override_comment": r.override_comment,
            }
            for r in rows
        ]
        with self.engine.begin() as conn:
            conn.execute(insert(feedback_table), values)

    def feedback(self) -> list[FeedbackRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(feedback_table).order_by(feedback_table.c.id)).mappings().all()
        return [
            FeedbackRow(
                card=r["card"],
                about=r["about"],
                outcome=r["outcome"],
                outcome_timestamp=r["outcome_timestamp"],
                accepted_suggestions=None if r["accepted_suggestions"] is None else tuple(r["accepted_suggestions"]),
                override_system=r["override_system"],
                override_code=r["override_code"],
                override_display=r["override_display"],
                override_comment=r["override_comment"],
            )
            for r in rows
        ]

    def feedback_counts(self) -> list[tuple[str, str, int]]:
        """(what the card was about, outcome, count), by about then outcome."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(feedback_table.c.about, feedback_table.c.outcome, func.count())
                .group_by(feedback_table.c.about, feedback_table.c.outcome)
                .order_by(feedback_table.c.about, feedback_table.c.outcome)
            ).all()
        return [(r[0], r[1], int(r[2])) for r in rows]

    # Tokens

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """Record a token's (iss, jti) until it expires; False if it was seen before (a replay)."""
        token = hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()
        now = time.time()
        try:
            with self.engine.begin() as conn:
                # An expired entry may be reused: its token is refused for its exp anyway.
                conn.execute(
                    delete(seen_tokens_table).where(
                        seen_tokens_table.c.token == token, seen_tokens_table.c.expires_at < now
                    )
                )
                conn.execute(insert(seen_tokens_table), {"token": token, "expires_at": float(expires_at)})
        except IntegrityError:
            return False
        if self._count_write():
            with self.engine.begin() as conn:
                conn.execute(delete(seen_tokens_table).where(seen_tokens_table.c.expires_at < now))
        return True
