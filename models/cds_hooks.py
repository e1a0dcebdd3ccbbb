"""The CDS Hooks contract (specification 2.0): discovery, request, response and feedback.

Written once and used twice: the service builds its answers with these models, and the tests
check every answer against them. The specification's JSON rules are part of the models: no
`null` and no empty value (`""`, `[]`, `{}`) anywhere, except an empty `cards` list, which means
"no guidance". A card's summary is under 140 characters; its indicator is info, warning or
critical; a source always has a label.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Text = Annotated[str, StringConstraints(min_length=1)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
Summary = Annotated[str, StringConstraints(min_length=1, max_length=139)]
Indicator = Literal["info", "warning", "critical"]
_ISO_INSTANT = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"
Timestamp = Annotated[str, StringConstraints(pattern=_ISO_INSTANT)]


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


class _Json(BaseModel):
    """Base for the models: a null or empty value is an error, not something to omit silently."""

    model_config = ConfigDict(frozen=True)
    may_be_empty: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_null_or_empty(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if _empty(value) and key not in cls.may_be_empty:
                    shown = "null" if value is None else json.dumps(value)
                    raise ValueError(f"{key!r} is {shown}: CDS Hooks forbids null and empty values; omit it")
        return data

    def to_json(self) -> dict[str, Any]:
        """The JSON object to send: optional fields without a value are left out."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class _Out(_Json):
    """What this service sends: no field beyond the specification's."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Coding(_Out):
    code: Text
    system: Text
    display: Text | None = None


class Source(_Out):
    label: Text
    url: Url | None = None
    icon: Url | None = None
    topic: Coding | None = None


class Link(_Out):
    label: Text
    url: Url
    type: Literal["absolute", "smart"]
    appContext: Text | None = None


class Action(_Out):
    type: Literal["create", "update", "delete"]
    description: Text
    resource: dict[str, Any] | None = None
    resourceId: Text | None = None


class CardSuggestion(_Out):
    label: Text
    uuid: UUID | None = None
    isRecommended: bool | None = None
    actions: tuple[Action, ...] | None = Field(None, min_length=1)


class Card(_Out):
    uuid: UUID | None = None
    summary: Summary
    detail: Text | None = None
    indicator: Indicator
    source: Source
    suggestions: tuple[CardSuggestion, ...] | None = Field(None, min_length=1)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: tuple[Coding, ...] | None = Field(None, min_length=1)
    links: tuple[Link, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _selection_with_suggestions(self) -> "Card":
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when a card has suggestions")
        for reason in self.overrideReasons or ():
            if reason.display is None:
                raise ValueError("an override reason needs a display")
        return self


class CdsResponse(_Out):
    """The answer to a service call; an empty `cards` list means no guidance."""

    may_be_empty: ClassVar[frozenset[str]] = frozenset({"cards"})
    cards: tuple[Card, ...]
    systemActions: tuple[Action, ...] | None = Field(None, min_length=1)


class CdsService(_Out):
    hook: Text
    title: Text | None = None
    description: Text
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+$")]
    prefetch: dict[str, Text] | None = None
    usageRequirements: Text | None = None


class Discovery(_Out):
    may_be_empty: ClassVar[frozenset[str]] = frozenset({"services"})
    services: tuple[CdsService, ...]


class ErrorBody(_Out):
    """This service's body for a 4xx or 5xx answer (the specification leaves it open)."""

    error: Text


# What a CDS Client sends. Fields the specification does not define are ignored, not refused.


class _In(_Json):
    model_config = ConfigDict(frozen=True, extra="ignore")


class FhirAuthorization(_In):
    access_token: Text
    token_type: Literal["Bearer"]
    expires_in: int
    scope: Text
    subject: Text


class PatientViewContext(_In):
    """The patient-view hook's context: who is looking at which chart."""

    userId: Text
    patientId: Text
    encounterId: Text | None = None


class OrderSignContext(_In):
    """The order-sign hook's context: the draft orders about to be signed (a FHIR Bundle)."""

    userId: Text
    patientId: Text
    encounterId: Text | None = None
    draftOrders: dict[str, Any]


class OrderSelectContext(OrderSignContext):
    """The order-select hook's context: the orders just selected, among the draft orders."""

    selections: tuple[Text, ...] = Field(min_length=1)


class CdsRequest(_In):
    hook: Text
    hookInstance: UUID
    fhirServer: Url | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    # A prefetch value may be null ("the client has no data for this key"), so it is not checked here.
    prefetch: dict[str, Any] | None = None

    may_be_empty: ClassVar[frozenset[str]] = frozenset({"prefetch"})

    @model_validator(mode="after")
    def _server_with_authorization(self) -> "CdsRequest":
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        return self


class OverrideReason(_In):
    reason: Coding | None = None
    userComment: str | None = None


class AcceptedSuggestion(_In):
    id: Text


class FeedbackItem(_In):
    card: UUID
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: tuple[AcceptedSuggestion, ...] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: Timestamp


class FeedbackRequest(_In):
    feedback: tuple[FeedbackItem, ...] = Field(min_length=1, max_length=1000)
