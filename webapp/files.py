"""The plan's picture and its two downloads, as plain HTTP routes of the app (st.App takes Starlette routes).

The answer links to them instead of drawing Streamlit elements for them: a download button and a folded
Streamlit section each cost the browser work after every Assess (BENCHMARKS.md), while a link costs nothing
until it is followed, and the picture, an <img> inside a folded <details>, is fetched only when opened.
Each URL carries the form as the page's own URL does (webapp/state.py), the time of the assessment (`at`) and
the start of the knowledge base's hash (`kb`), so a file is the plan the page showed: it is assessed again
from the same input with the same knowledge base, or refused with a message if that has changed since.
Nothing is kept and nothing is logged (Streamlit's server keeps no access log).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from models.plan import Plan
from rules import InputError, RuleExecutionError, assess
from rules.render import to_markdown
from webapp import export, graph, state, warm

AT, KB = "at", "kb"
GRAPH, REPORT, PLAN = "plan/graph.svg", "plan/report.md", "plan/plan.json"


def link(path: str, kb: Any, raw: dict[str, Any], at: datetime) -> str:
    """The relative URL of one of the files for the plan of `raw` assessed at `at`."""
    query = {**state.to_query(kb, raw), AT: at.isoformat(timespec="seconds"), KB: kb.content_hash[:12]}
    return f"{path}?{urlencode(query, doseq=True)}"


class Refused(Exception):
    """A request that cannot give the file, with the reason in words (sent as a 4xx answer)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _plan(request: Request) -> tuple[Any, dict[str, Any], datetime, Plan]:
    held = warm.in_use()
    if held is None or held.kb is None:
        raise Refused(503, "The app has not loaded its knowledge base yet: open the page first.")
    kb, engine = held.context
    params = {k: request.query_params.getlist(k) for k in request.query_params if k not in (AT, KB)}
    if request.query_params.get(KB) != kb.content_hash[:12]:
        raise Refused(409, "The knowledge base has changed since this plan was shown: press Assess again, "
                           "then use the new link.")
    raw, problems = state.from_query(kb, params)
    if problems:
        raise Refused(400, "This link could not be read: " + "; ".join(problems))
    try:
        at = datetime.fromisoformat(request.query_params.get(AT, ""))
    except ValueError:
        raise Refused(400, "This link has no time of assessment (at=...).") from None
    try:
        return kb, raw, at, assess(raw, context=(kb, engine))
    except InputError as error:
        raise Refused(400, f"These details cannot be assessed: {error}") from None
    except RuleExecutionError as error:
        raise Refused(500, f"The plan could not be made because a rule failed: {error}") from None


def _answer(request: Request, make: Any) -> Response:
    try:
        return make(*_plan(request))
    except Refused as refused:
        return PlainTextResponse(str(refused), status_code=refused.status)


def _attachment(body: str, name: str, media: str) -> Response:
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                     "Cache-Control": "no-store"})


def report(request: Request) -> Response:
    return _answer(request, lambda kb, raw, at, plan: _attachment(
        export.markdown_report(kb, raw, at, to_markdown(plan)), export.file_name(raw, at, "md"), "text/markdown"))


def plan_json(request: Request) -> Response:
    return _answer(request, lambda kb, raw, at, plan: _attachment(
        export.json_report(kb, raw, at, plan.model_dump(mode="json")), export.file_name(raw, at, "json"),
        "application/json"))


def picture(request: Request) -> Response:
    def svg(kb: Any, raw: dict[str, Any], at: datetime, plan: Plan) -> Response:
        drawn = graph.svg(graph.decision_graph(plan))
        if drawn is None:
            return PlainTextResponse("The picture could not be drawn (Graphviz is missing or failed): the graph in words is below.", status_code=404)
        return Response(drawn, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
    return _answer(request, svg)


ROUTES = [Route(f"/{GRAPH}", picture), Route(f"/{REPORT}", report), Route(f"/{PLAN}", plan_json)]
