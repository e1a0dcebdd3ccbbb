"""The CDS Hooks service: a record system asks `assess()` for advice and gets cards back.

`uvicorn service.app:app` (or `make serve`) serves it. Endpoints (CDS Hooks 2.0):
- GET  /cds-services                 discovery: one patient-view service and its prefetch
- POST /cds-services/{id}            the service call: cards, red flags first
- POST /cds-services/{id}/feedback   a card accepted or overridden (kept in memory)
- GET  /cds-services/{id}/feedback   counts per card (no patient data)
Status codes: 400 malformed JSON or request, wrong hook, unsupported FHIR version or malformed
FHIR; 404 unknown service or card; 412 prefetch the service needs is missing (it never fetches
from the record itself); 413 body over the limit; 415 not JSON. A client's mistake is never a
500. Nothing from a request is logged or written to disk.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.cds_hooks import (
    CdsRequest,
    CdsResponse,
    CdsService,
    Discovery,
    ErrorBody,
    FeedbackRequest,
    PatientViewContext,
)
from models.loader import KnowledgeBase
from models.presentation import Presentation
from rules import InputError, RuleExecutionError, assess, default_context
from rules.engine import Engine
from service import cards as cardlib
from service.feedback import FeedbackStore
from service.fhir_input import CodeMap, FhirInputError, FhirReading, PrefetchMissing, code_map, read_prefetch

SERVICE_ID = "myotomy-procedures"
HOOK = "patient-view"
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
}
MAX_BODY_BYTES = 4 * 1024 * 1024
FHIR_VERSIONS = ("4.0",)  # FHIR R4; the mime-type parameter carries major.minor (FHIR R4 http.html#version)
MAX_PRESENTATIONS: int = next(
    m.max_length for m in Presentation.model_fields["conditions"].metadata if getattr(m, "max_length", None)
)

log = logging.getLogger("myotomy_cds.service")


class ServiceError(Exception):
    """A request this service answers with a 4xx status and a message that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class _State:
    kb: KnowledgeBase
    engine: Engine
    codes: CodeMap
    known_codes: list[str]
    known_cards: dict[Any, str]
    feedback: FeedbackStore


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(ErrorBody(error=message).to_json(), status_code=status)


def _first_error(error: ValidationError, prefix: str = "") -> str:
    first = error.errors()[0]
    loc = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "")
    reason = first["msg"].removeprefix("Value error, ")
    return f"{loc}: {reason}" if loc else reason


def _parse(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ServiceError(400, _first_error(error, prefix)) from None


def _media_type(request: Request) -> None:
    """JSON only; a `fhirVersion` parameter, if given, must name FHIR R4."""
    header = request.headers.get("content-type")
    if header is None:
        return
    kind, *params = [part.strip() for part in header.split(";")]
    kind = kind.lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise ServiceError(415, f"send the request as application/json, not {kind or 'an empty type'}")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "fhirversion":
            version = value.strip().strip('"')
            if not version.startswith(FHIR_VERSIONS):
                raise ServiceError(400, f"unsupported FHIR version {version!r}: this service reads FHIR R4 (4.0)")


async def _body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ServiceError(413, f"request body of {int(declared)} bytes is over the limit of {limit} bytes")
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServiceError(413, f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ServiceError(400, "request body is empty: expected a JSON object")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(raw, parse_constant=no_constants)
    except UnicodeDecodeError:
        raise ServiceError(400, "request body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ServiceError(400, f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    except ValueError as error:
        raise ServiceError(400, f"malformed JSON: {error}") from None
    except RecursionError:
        raise ServiceError(400, "malformed JSON: nested too deeply") from None


def _service(service_id: str) -> None:
    if service_id != SERVICE_ID:
        raise ServiceError(404, f"unknown CDS service {service_id!r}; this server offers {SERVICE_ID!r}")


def _assess(state: _State, reading: FhirReading) -> tuple[Any, list[cardlib.NotAssessed]]:
    """Assess what the record maps to; a presentation the engine refuses is reported, not dropped."""
    if reading.presentation is None:
        return None, []
    age = reading.presentation.get("age")
    accepted, refused = [], []
    for condition in reading.presentation["conditions"]:
        one = {**({"age": age} if age else {}), "conditions": [condition]}
        try:
            assess(one, context=(state.kb, state.engine))  # alone first, so one refusal does not hide the others
        except InputError as error:
            reasons = tuple(msg for _, msg in error.errors)
            refused.append(cardlib.NotAssessed(condition["presentation"], reasons))
            continue
        if len(accepted) < MAX_PRESENTATIONS:
            accepted.append(condition)
        else:
            refused.append(
                cardlib.NotAssessed(
                    condition["presentation"], (f"more than {MAX_PRESENTATIONS} presentations at once",)
                )
            )
    if not accepted:
        return None, refused
    presentation = {**({"age": age} if age else {}), "conditions": accepted}
    return assess(presentation, context=(state.kb, state.engine)), refused


def create_app(
    context: tuple[KnowledgeBase, Engine] | None = None,
    *,
    today: Callable[[], date] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The ASGI app. `context` defaults to the process-wide knowledge base and engine, built at start-up."""
    clock = today or (lambda: datetime.now(timezone.utc).date())
    holder: dict[str, _State] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Built here, before any request thread: durable-rules registration is racy (see engine.py).
        kb, engine = context or default_context()
        codes = code_map(kb)
        holder["state"] = _State(kb, engine, codes, codes.described(kb), cardlib.known_cards(kb), FeedbackStore())
        yield

    app = FastAPI(
        title="Myotomy decision support: CDS Hooks service",
        description="Decision support for clinicians, not a diagnosis or an order. Prototype.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def state() -> _State:
        return holder["state"]

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, error: ServiceError) -> JSONResponse:
        return _error(error.status, error.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail) or "error")

    @app.get("/cds-services")
    async def discovery() -> JSONResponse:
        kb = state().kb
        codes = "; ".join(state().known_codes) or "none"
        service = CdsService(
            hook=HOOK,
            id=SERVICE_ID,
            title="Myotomy-type procedures: candidates, red flags and work-up",
            description=(
                "For a patient whose record codes a presentation of this knowledge base (ICD-10-CM: "
                f"{codes}), lists the candidate myotomy-type procedures with their basis, red flags first. "
                f"Knowledge base {kb.version}. Decision support for clinicians, not a diagnosis or an order; "
                "prototype, not validated for clinical use."
            ),
            prefetch=PREFETCH,
        )
        return JSONResponse(Discovery(services=(service,)).to_json())

    async def _guarded(handler: Callable[[], Awaitable[JSONResponse]]) -> JSONResponse:
        """A ServiceError is the client's (4xx); anything else is ours, logged by type only (no request content)."""
        try:
            return await handler()
        except ServiceError:
            raise
        except RuleExecutionError:
            log.error("a rule failed during an assessment")
            return _error(500, "a rule failed while assessing; no advice is given rather than partial advice")
        except Exception as error:
            log.error("internal error: %s", type(error).__name__)
            return _error(500, "internal error; no advice is given")

    async def _json_object(service_id: str, request: Request) -> dict[str, Any]:
        _service(service_id)
        _media_type(request)
        raw = await _body(request, max_body_bytes)
        if not isinstance(raw, dict):
            raise ServiceError(400, f"expected a JSON object, got {type(raw).__name__}")
        return raw

    @app.post("/cds-services/{service_id}")
    async def call(service_id: str, request: Request) -> JSONResponse:
        async def handle() -> JSONResponse:
            body: CdsRequest = _parse(CdsRequest, await _json_object(service_id, request))
            if body.hook != HOOK:
                raise ServiceError(400, f"wrong hook {body.hook!r}: service {SERVICE_ID!r} answers {HOOK!r}")
            hook_context: PatientViewContext = _parse(PatientViewContext, body.context, "context")
            st = state()
            try:
                reading = read_prefetch(body.prefetch, hook_context.patientId, st.kb, st.codes, clock())
            except PrefetchMissing as error:
                raise ServiceError(412, str(error)) from None
            except FhirInputError as error:
                raise ServiceError(400, str(error)) from None
            assessment, refused = await run_in_threadpool(_assess, st, reading)
            cards = cardlib.build_cards(assessment, reading, refused, st.kb, st.known_codes)
            return JSONResponse(CdsResponse(cards=tuple(cards)).to_json())

        return await _guarded(handle)

    @app.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request) -> JSONResponse:
        async def handle() -> JSONResponse:
            body: FeedbackRequest = _parse(FeedbackRequest, await _json_object(service_id, request))
            known = state().known_cards
            items = []
            for index, item in enumerate(body.feedback):
                if item.card not in known:
                    raise ServiceError(
                        404, f"feedback.{index}.card: unknown card {item.card} (not issued by this knowledge base)"
                    )
                items.append((item, known[item.card]))
            state().feedback.add(items)
            return JSONResponse({"received": len(items)})

        return await _guarded(handle)

    @app.get("/cds-services/{service_id}/feedback")
    async def feedback_summary(service_id: str) -> JSONResponse:
        _service(service_id)
        summary = state().feedback.summary()
        body: dict[str, Any] = {"received": sum(row.get("accepted", 0) + row.get("overridden", 0) for row in summary)}
        if summary:  # no empty values, as in the CDS Hooks answers
            body["cards"] = summary
        return JSONResponse(body)

    app.state.holder = holder
    return app


app = create_app()
