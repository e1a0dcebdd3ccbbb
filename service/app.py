"""The CDS Hooks service: a record system asks `assess()` for advice and gets cards back.

`uvicorn service.app:app` (or `make serve`) serves it, configured from the environment
(service/settings.py). Endpoints (CDS Hooks 2.0):
- GET  /cds-services                 discovery: one patient-view service and its prefetch (open)
- POST /cds-services/{id}            the service call: cards, critical first; `{"cards": []}` when
                                     there is no guidance
- POST /cds-services/{id}/feedback   a card accepted or overridden (kept in the database)
- GET  /cds-services/{id}/feedback   counts per card subject and outcome (no patient data)
Every endpoint but discovery needs a JWT bearer token from a trusted client (service/auth.py),
unless CDS_INSECURE_DEV=1 on a loopback address. Status codes: 400 malformed JSON or request,
wrong hook, unsupported FHIR version, or malformed FHIR in what the service reads; 401 no token
or a token refused (the message says why); 404 unknown service or card; 412 prefetch the service
needs is missing and no fhirServer access was given to read it; 502 the record's FHIR server could
not give what was missing (unreachable, refused, over the page limit); 413 body over the limit; 415 not JSON;
503 a trusted client's JWK Set could not be fetched. A client's mistake is never a 500. The body is
read on the event loop and everything after it (JSON, FHIR, the rules, the database) runs in the
thread pool, so a large call never holds up another caller. Nothing from a request is logged; only
feedback, issued card uuids and seen token ids are stored (service/storage.py).
"""

from __future__ import annotations

import gc
import json
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from models.cds_hooks import (
    Card,
    CdsRequest,
    CdsResponse,
    CdsService,
    Discovery,
    ErrorBody,
    FeedbackRequest,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
)
from models.loader import KnowledgeBase
from rules import RuleExecutionError, default_context
from rules.engine import Engine
from service import cards as cardlib
from service import feedback as feedbacklib
from service.auth import AuthError, Authenticator
from service.card_ids import load_or_create_key, patient_card_uuid, patient_hash
from models.terminology import Terminology
from service.fhir_fetch import AccessRefused, FetchError, FhirAccess, complete_prefetch
from service import orders as orderlib
from service.fhir_input import (
    FhirInputError,
    FhirReading,
    PrefetchMissing,
    code_map,
    read_prefetch,
    reads_observations,
)
from service.metrics import Metrics
from service.record_assessment import NotAssessed, assess_reading
from service.settings import ConfigError, Settings, is_loopback
from service.storage import IssuedCard, Storage

SERVICE_ID = "myotomy-procedures"
HOOK = "patient-view"
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
}
ORDER_SERVICES = {"myotomy-order-select": "order-select", "myotomy-order-sign": "order-sign"}
HOOKS = {SERVICE_ID: HOOK, **ORDER_SERVICES}
ORDER_PREFETCH = {key: PREFETCH[key] for key in ("patient", "conditions")}
MAX_BODY_BYTES = 4 * 1024 * 1024
FHIR_VERSIONS = ("4.0",)  # FHIR R4; the mime-type parameter carries major.minor (FHIR R4 http.html#version)

NOT_CONFIGURED = (
    "this service has no trusted CDS clients configured, so it cannot check who is calling: set CDS_CLIENTS "
    "to a JSON or YAML file listing each client's iss and jwks_url (or inline jwks), and CDS_BASE_URL to the "
    "URL clients call; or, for local development only, CDS_INSECURE_DEV=1 on 127.0.0.1 (make serve does this)"
)
NOT_LOCAL = (
    "CDS_INSECURE_DEV accepts calls without a token only from this machine: the client address and the Host "
    "must be loopback (127.0.0.1, ::1, localhost), without proxy headers"
)

log = logging.getLogger("myotomy_cds.service")


class ServiceError(Exception):
    """A request this service answers with a 4xx status and a message that says why."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@dataclass
class _State:
    kb: KnowledgeBase
    engine: Engine
    codes: Terminology
    procedures: dict[str, tuple[str, ...]]
    reads_observations: bool
    known_cards: dict[Any, str]
    settings: Settings
    storage: Storage
    auth: Authenticator | None
    card_key: bytes
    metrics: Metrics


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=message).to_json(), status_code=status, headers=headers)


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


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, read as it streams in (I/O on the event loop, nothing parsed here)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ServiceError(413, f"request body of {int(declared)} bytes is over the limit of {limit} bytes")
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServiceError(413, f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object (CPU work: called in the thread pool)."""
    if not raw.strip():
        raise ServiceError(400, "request body is empty: expected a JSON object")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    collecting = gc.isenabled()
    gc.disable()  # a large body allocates many small objects: collecting during the parse only costs time
    try:
        value = json.loads(raw, parse_constant=no_constants)
    except UnicodeDecodeError:
        raise ServiceError(400, "request body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ServiceError(400, f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    except ValueError as error:
        raise ServiceError(400, f"malformed JSON: {error}") from None
    except RecursionError:
        raise ServiceError(400, "malformed JSON: nested too deeply") from None
    finally:
        if collecting:
            gc.enable()
    if not isinstance(value, dict):
        raise ServiceError(400, f"expected a JSON object, got {type(value).__name__}")
    return value


def _service(service_id: str) -> None:
    if service_id not in HOOKS:
        offered = ", ".join(repr(s) for s in HOOKS)
        raise ServiceError(404, f"unknown CDS service {service_id!r}; this server offers {offered}")


def _assess(state: _State, reading: FhirReading) -> tuple[Any, list[NotAssessed]]:
    """Assess what the record maps to (service/record_assessment.py, shared with the cohort screen)."""
    return assess_reading(reading, (state.kb, state.engine))


def _per_patient(st: _State, cards: list[Card], patient_id: str) -> list[Card]:
    """Give each card its per-patient uuid (card_ids.py) and record it as issued, for feedback."""
    patient = patient_hash(st.card_key, patient_id)
    out, issued = [], []
    for card in cards:
        about = st.known_cards.get(card.uuid) or str(card.uuid)
        uuid = patient_card_uuid(patient, about, st.kb.content_hash)
        out.append(card.model_copy(update={"uuid": uuid}))
        issued.append(IssuedCard(str(uuid), about, tuple(str(s.uuid or "") for s in card.suggestions or ())))
    st.storage.record_issued(issued)
    return out


def _answer_call(st: _State, raw: bytes, today: date, service_id: str = SERVICE_ID) -> JSONResponse:
    """The service call after its body has arrived: blocking CPU and database work, run in the thread pool."""
    body: CdsRequest = _parse(CdsRequest, _json_object(raw))
    hook = HOOKS[service_id]
    if body.hook != hook:
        raise ServiceError(400, f"wrong hook {body.hook!r}: service {service_id!r} answers {hook!r}")
    context_model = {HOOK: PatientViewContext, "order-select": OrderSelectContext, "order-sign": OrderSignContext}[hook]
    hook_context: Any = _parse(context_model, body.context, "context")
    try:
        access = FhirAccess.of(body.fhirServer, body.fhirAuthorization.access_token if body.fhirAuthorization else None)
        keys = ("patient", "conditions", *(("observations",) if st.reads_observations and hook == HOOK else ()))
        prefetch = complete_prefetch(body.prefetch, hook_context.patientId, access, keys)
        reading = read_prefetch(prefetch, hook_context.patientId, st.kb, st.codes, today)
    except AccessRefused as error:
        raise ServiceError(400, str(error)) from None
    except FetchError as error:
        raise ServiceError(502, str(error)) from None
    except PrefetchMissing as error:
        raise ServiceError(412, str(error)) from None
    except FhirInputError as error:
        raise ServiceError(400, str(error)) from None
    st.metrics.add(
        calls_answered=1,
        conditions_not_mapped=len(reading.not_mapped),
        conditions_not_current=reading.not_current,
        resources_skipped=reading.skipped,
        deceased_patients=int(reading.deceased),
    )
    if reading.not_mapped or reading.skipped:
        log.debug("call: %d conditions not mapped, %d entries skipped", len(reading.not_mapped), reading.skipped)
    if reading.deceased:  # no advice about a patient the record says has died
        return JSONResponse(CdsResponse(cards=()).to_json())
    if hook != HOOK:
        selections = getattr(hook_context, "selections", None)
        drafts = orderlib.draft_orders(hook_context.draftOrders, selections, st.procedures)
        if not drafts:  # no draft order names an option: nothing to check, and no plan is computed
            return JSONResponse(CdsResponse(cards=()).to_json())
        assessment, _ = _assess(st, reading)
        cards = orderlib.order_cards(assessment, drafts, hook_context.patientId, st.kb)
        return JSONResponse(CdsResponse(cards=tuple(_per_patient(st, cards, hook_context.patientId))).to_json())
    assessment, refused = _assess(st, reading)
    cards = cardlib.build_cards(assessment, reading, refused, st.kb)
    return JSONResponse(CdsResponse(cards=tuple(_per_patient(st, cards, hook_context.patientId))).to_json())


def _take_feedback(st: _State, raw: bytes) -> JSONResponse:
    body: FeedbackRequest = _parse(FeedbackRequest, _json_object(raw))
    try:
        rows = feedbacklib.rows_for(body, st.storage)
    except feedbacklib.FeedbackError as error:
        raise ServiceError(error.status, error.message) from None
    st.storage.add_feedback(rows)
    return JSONResponse({"received": len(rows)})


def _local_only(request: Request) -> None:
    """Insecure dev mode: the caller and the Host it asked for must both be this machine (no DNS rebinding)."""
    client = request.client.host if request.client else None
    forwarded = any(h in request.headers for h in ("forwarded", "x-forwarded-for", "x-real-ip"))
    if forwarded or not is_loopback(client) or not is_loopback(request.url.hostname):
        raise ServiceError(401, NOT_LOCAL, {"WWW-Authenticate": "Bearer"})


def create_app(
    context: tuple[KnowledgeBase, Engine] | None = None,
    *,
    today: Callable[[], date] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    settings: Settings | None = None,
) -> FastAPI:
    """The ASGI app. `context` defaults to the process-wide knowledge base and engine, built at start-up;
    `settings` to Settings.from_env(). A configuration error stops the start-up with its message."""
    clock = today or (lambda: datetime.now(timezone.utc).date())
    holder: dict[str, _State] = {}
    config_error: ConfigError | None = None
    if settings is None:
        try:
            settings = Settings.from_env()
        except ConfigError as error:  # raised at start-up, so that importing this module never fails
            config_error = error

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if config_error is not None or settings is None:
            log.error("configuration refused: %s", config_error)
            raise config_error or ConfigError("no settings")
        # Built here, before any request thread: durable-rules registration is racy (see engine.py).
        kb, engine = context or default_context()
        codes = code_map(kb)
        card_key = load_or_create_key(settings.data_dir)  # creates the data directory too
        storage = Storage(settings.sqlalchemy_url)
        auth = Authenticator(settings.clients, storage) if settings.clients else None
        holder["state"] = _State(
            kb=kb,
            engine=engine,
            codes=codes,
            procedures=orderlib.procedure_index(kb),
            reads_observations=reads_observations(kb),
            known_cards=cardlib.known_cards(kb),
            settings=settings,
            storage=storage,
            auth=auth,
            card_key=card_key,
            metrics=Metrics(),
        )
        if auth is not None:
            log.info("service calls need a JWT from one of %d trusted CDS clients", len(settings.clients))
        elif settings.insecure_dev:
            log.warning("CDS_INSECURE_DEV=1: service calls from this machine need no token (development only)")
        else:
            log.warning("no trusted CDS clients configured (CDS_CLIENTS): every service call will be refused")
        try:
            yield
        finally:
            storage.close()

    app = FastAPI(
        title="Myotomy decision support: CDS Hooks service",
        description="Decision support for clinicians, not a diagnosis or an order. Prototype.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if settings is not None and settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            allow_private_network=True,  # a public page (e.g. a sandbox) calling a service on this machine
            max_age=600,
        )

    def state() -> _State:
        return holder["state"]

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, error: ServiceError) -> JSONResponse:
        return _error(error.status, error.message, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail) or "error")

    @app.get("/cds-services")
    async def discovery() -> JSONResponse:
        kb = state().kb
        service = CdsService(
            hook=HOOK,
            id=SERVICE_ID,
            title="Myotomy-type procedures: candidates, red flags and work-up",
            description=(
                "For a patient whose record codes a presentation of this knowledge base (SNOMED CT, "
                "ICD-10-CM or ICD-10; the codes are listed in the README), lists the candidate myotomy-type "
                "procedures with their basis, red flags first. "
                f"Knowledge base {kb.version}. Decision support for clinicians, not a diagnosis or an order; "
                "prototype, not validated for clinical use."
            ),
            prefetch=PREFETCH,
        )
        order_services = tuple(
            CdsService(
                hook=hook,
                id=service_id,
                title=f"Myotomy-type procedures: does the draft order fit the plan ({hook})",
                description=(
                    "For a draft ServiceRequest coded in SNOMED CT with a procedure the knowledge base lists, "
                    "warns when the plan from the record holds a stop or check-first flag, when first-line "
                    "care is not recorded, or when the procedure is not a top-ranked option, with the work-up "
                    "to order first or removal of the draft as suggestions; no card when the order fits. "
                    f"Knowledge base {kb.version}. Decision support for clinicians; prototype."
                ),
                prefetch=ORDER_PREFETCH,
            )
            for service_id, hook in ORDER_SERVICES.items()
        )
        return JSONResponse(Discovery(services=(service, *order_services)).to_json())

    async def authorize(request: Request, path: str) -> None:
        """Raises ServiceError(401) unless the call carries a valid token (or dev mode lets it through)."""
        st = state()
        if st.auth is not None:
            try:
                await run_in_threadpool(
                    st.auth.verify, request.headers.get("authorization"), st.settings.endpoint_url(path)
                )
            except AuthError as error:
                st.metrics.add(calls_refused=1)
                log.warning("call refused (%d): %s", error.status, error.message)  # about the token, not the patient
                headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if error.status == 401 else None
                raise ServiceError(error.status, error.message, headers) from None
        elif st.settings.insecure_dev:
            _local_only(request)
        else:
            st.metrics.add(calls_refused=1)
            raise ServiceError(401, NOT_CONFIGURED, {"WWW-Authenticate": "Bearer"})

    async def guarded(work: Callable[..., JSONResponse], *args: Any) -> JSONResponse:
        """Run `work` in the thread pool. A ServiceError is the client's (4xx); anything else is ours,
        logged by type only (no request content)."""
        try:
            return await run_in_threadpool(work, *args)
        except ServiceError:
            raise
        except RuleExecutionError:
            log.error("a rule failed during an assessment")
            return _error(500, "a rule failed while assessing; no advice is given rather than partial advice")
        except Exception as error:
            log.error("internal error: %s", type(error).__name__)
            return _error(500, "internal error; no advice is given")

    @app.post("/cds-services/{service_id}")
    async def call(service_id: str, request: Request) -> JSONResponse:
        _service(service_id)
        await authorize(request, f"/cds-services/{service_id}")
        _media_type(request)
        raw = await _read_body(request, max_body_bytes)
        return await guarded(_answer_call, state(), raw, clock(), service_id)

    @app.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request) -> JSONResponse:
        _service(service_id)
        await authorize(request, f"/cds-services/{service_id}/feedback")
        _media_type(request)
        raw = await _read_body(request, max_body_bytes)
        return await guarded(_take_feedback, state(), raw)

    @app.get("/cds-services/{service_id}/feedback")
    async def feedback_summary(service_id: str, request: Request) -> JSONResponse:
        _service(service_id)
        await authorize(request, f"/cds-services/{service_id}/feedback")
        return await guarded(lambda: JSONResponse(feedbacklib.summary(state().storage)))

    app.state.holder = holder
    return app


app = create_app()
