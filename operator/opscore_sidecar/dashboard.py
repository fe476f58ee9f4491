"""The read-only dashboard: `GET /dashboard` and the JSON it polls.

One page (`static/dashboard.html`, `.js`, `.css`, shipped in the package: no CDN, no
build step) that polls every 1.5 s:

- `GET /dashboard/api/agents`: every agent with its live state;
- `GET /dashboard/api/workflows?offset=&limit=&phase=&q=`: one page of run summaries,
  newest first, and the count per phase;
- `GET /dashboard/api/workflows/{name}`: one run with its steps in dependency order
  (the page lays out the DAG itself, only for the run on screen);
- `GET /dashboard/api/workflows/{name}/events?uid=`: its Kubernetes Events.

Read-only by construction: every route is a GET (login aside, which only sets a cookie),
and the sidecar's Role grants it only get/list on workflows and list on events for
this. Authentication: see `dashboard_auth`. The LISTs are shared between viewers for a
second (`dashboard_cache`), so open dashboards cost the API server at most one LIST of
workflows and one of agents per second. The page's scripts and styles are files, which
lets the Content-Security-Policy forbid inline script altogether.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from opscore_kube import AGENTS, EVENTS, WORKFLOW_TEMPLATES, WORKFLOWS, NotFound
from opscore_sidecar import dashboard_auth as auth
from opscore_sidecar.components import Sidecar, get_sidecar
from opscore_sidecar.dashboard_cache import Snapshot
from opscore_sidecar.dashboard_data import (
    Json,
    agent_json,
    agent_names,
    event_json,
    sort_newest_first,
    workflow_detail,
    workflow_page,
    workflow_summary,
)
from opscore_sidecar.schemas import ErrorBody

logger = logging.getLogger("opscore.sidecar.dashboard")
router = APIRouter(tags=["dashboard (read-only)"])

SNAPSHOT_TTL_SECONDS = 1.0
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SidecarDep = Annotated[Sidecar, Depends(get_sidecar)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "No key (Bearer header or cookie), or an unknown one.",
    },
    403: {"model": ErrorBody, "description": "An API key scoped to some agents."},
    502: {"model": ErrorBody, "description": "The API server refused the read (e.g. RBAC)."},
    503: {
        "model": ErrorBody,
        "description": "The API server is unreachable, or the sidecar starts.",
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such workflow."}
}
# A resource name (DNS subdomain): it goes into a field selector, where `,` or `=` would
# add terms of the caller's choosing.
WorkflowName = Annotated[
    str,
    PathParam(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
]


@dataclass(frozen=True, slots=True)
class Views:
    """The shared LIST snapshots, bound to one running sidecar."""

    sidecar: Sidecar
    workflows: Snapshot[list[Json]]
    agents: Snapshot[list[dict[str, Any]]]

    @classmethod
    def build(cls, sidecar: Sidecar) -> Views:
        namespace = sidecar.settings.namespace

        async def summaries() -> list[Json]:
            listed = await sidecar.kube.list(WORKFLOWS, namespace)
            return sort_newest_first(workflow_summary(w) for w in listed.get("items") or [])

        async def agents() -> list[dict[str, Any]]:
            listed = await sidecar.kube.list(AGENTS, namespace)
            return list(listed.get("items") or [])

        return cls(
            sidecar,
            Snapshot(summaries, ttl=SNAPSHOT_TTL_SECONDS),
            Snapshot(agents, ttl=SNAPSHOT_TTL_SECONDS),
        )


def _views(request: Request, sidecar: Sidecar) -> Views:
    views = getattr(request.app.state, "dashboard_views", None)
    if not isinstance(views, Views) or views.sidecar is not sidecar:
        views = Views.build(sidecar)
        request.app.state.dashboard_views = views
    return views


async def authorized(request: Request, sidecar: SidecarDep) -> Views:
    """FastAPI dependency of the JSON endpoints: a dashboard key, else 401/403."""
    auth.require(request, sidecar)
    return _views(request, sidecar)


ViewsDep = Annotated[Views, Depends(authorized)]


# -- the page --------------------------------------------------------------------------


@cache
def _asset(name: str) -> str:
    return (resources.files("opscore_sidecar") / "static" / name).read_text(encoding="utf-8")


def _html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def _login_page(message: str | None, status_code: int) -> HTMLResponse:
    text = html.escape(message) if message else ""
    return _html(_asset("login.html").replace("<!--MESSAGE-->", text), status_code)


def _after_login(request: Request, key: str) -> Response:
    """To the page without the key in the address (and so not in history or logs)."""
    response = RedirectResponse("dashboard", status_code=status.HTTP_303_SEE_OTHER)
    auth.set_cookie(response, request, key)
    return response


def _answer_to_key(request: Request, sidecar: Sidecar, key: str) -> Response:
    access = auth.check(sidecar, key)
    if access is auth.Access.GRANTED:
        return _after_login(request, key)
    code = status.HTTP_403_FORBIDDEN if access is auth.Access.SCOPED else 401
    return _login_page(auth.denial(access), code)


@router.get("/dashboard", include_in_schema=False)
async def page(
    request: Request,
    sidecar: SidecarDep,
    key: Annotated[str | None, Query(max_length=4096)] = None,
) -> Response:
    """The dashboard, or the login form when the browser has no valid key yet."""
    if key is not None:
        return _answer_to_key(request, sidecar, key)
    presented = auth.presented_key(request)
    access = auth.check(sidecar, presented)
    if access is auth.Access.GRANTED:
        return _html(_asset("dashboard.html"))
    message = None if access is auth.Access.NO_KEY else auth.denial(access)
    response = _login_page(message, status.HTTP_401_UNAUTHORIZED)
    if presented is not None:
        auth.clear_cookie(response, request)  # a revoked key: log the browser out
    return response


@router.post("/dashboard", include_in_schema=False)
async def login(request: Request, sidecar: SidecarDep) -> Response:
    """The login form (a POST keeps the key out of the address bar altogether)."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    return _answer_to_key(request, sidecar, key)


@router.get("/dashboard/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    response = RedirectResponse("../dashboard", status_code=status.HTTP_303_SEE_OTHER)
    auth.clear_cookie(response, request)
    return response


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    """The page's script and stylesheet: code, no data, so no key needed."""
    if name not in STATIC:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Not Found")
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(_asset(name), media_type=STATIC[name], headers=headers)


# -- the JSON it polls -----------------------------------------------------------------


def _json(body: Any) -> JSONResponse:
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/dashboard/api/agents", summary="Every agent and its live state", responses=ERRORS)
async def agents(views: ViewsDep) -> JSONResponse:
    now = datetime.now(UTC)
    items = [agent_json(a, now) for a in await views.agents.get()]
    items.sort(key=lambda a: str(a["name"]))
    return _json({"items": items, "now": now.isoformat()})


@router.get(
    "/dashboard/api/workflows", summary="One page of workflows, newest first", responses=ERRORS
)
async def workflows(
    views: ViewsDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    phase: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=253)] = None,
) -> JSONResponse:
    summaries = await views.workflows.get()
    page = workflow_page(summaries, offset=offset, limit=limit, phase=phase, query=q)
    return _json({**page, "namespace": views.sidecar.settings.namespace})


@router.get(
    "/dashboard/api/workflows/{name}",
    summary="One workflow and its steps",
    responses={**ERRORS, **NOT_FOUND},
)
async def workflow(name: WorkflowName, views: ViewsDep) -> JSONResponse:
    sidecar = views.sidecar
    namespace = sidecar.settings.namespace
    try:
        body = await sidecar.kube.get(WORKFLOWS, namespace, name)
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"workflow {name!r} not found") from None
    template = None
    ref = ((body.get("spec") or {}).get("templateRef") or {}).get("name")
    if ref:
        try:
            template = await sidecar.kube.get(WORKFLOW_TEMPLATES, namespace, str(ref))
        except NotFound:
            template = None  # the status still names the steps
    names = agent_names(await views.agents.get())
    jaeger = sidecar.settings.jaeger_url
    return _json(
        workflow_detail(
            body, template, names, datetime.now(UTC), jaeger_url=str(jaeger) if jaeger else None
        )
    )


@router.get(
    "/dashboard/api/workflows/{name}/events", summary="A workflow's Events", responses=ERRORS
)
async def workflow_events(
    name: WorkflowName,
    views: ViewsDep,
    uid: Annotated[str | None, Query(max_length=64)] = None,
) -> JSONResponse:
    sidecar = views.sidecar
    listed = await sidecar.kube.list(
        EVENTS,
        sidecar.settings.namespace,
        field_selector=f"involvedObject.kind=Workflow,involvedObject.name={name}",
    )
    return _json({"items": event_json(listed.get("items") or [], uid)})
