"""The dashboard: who may open it, the page and its assets, and the JSON it polls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sidecar_fakes import (
    API_KEY,
    FakeKube,
    auth,
    client_for,
    report_body,
    state_url,
)

from opscore_kube import EVENTS, WORKFLOW_TEMPLATES, WORKFLOWS
from opscore_sidecar.dashboard_cache import Snapshot

pytestmark = pytest.mark.timeout(30)

DASHBOARD_KEY = "dash-0123456789"
SCOPED_KEY = "scoped-key"


def workflow(name: str, created: str, phase: str = "Running", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created, "uid": f"uid-{name}"},
        "spec": spec or {"steps": [{"name": "a", "agent": "w"}, {"name": "b", "agent": "w"}]},
        "status": {
            "phase": phase,
            "progress": "1/2",
            "startTime": "2026-11-25T09:00:00Z",
            "steps": [
                {
                    "name": "a",
                    "phase": "Succeeded",
                    "agent": "uuid-w",
                    "attempt": 1,
                    "startedAt": "2026-11-25T09:00:00Z",
                    "finishedAt": "2026-11-25T09:00:02Z",
                },
                {"name": "b", "phase": "Running", "agent": "uuid-w", "attempt": 1},
            ],
        },
    }


@pytest.fixture
def kube() -> FakeKube:
    fake = FakeKube()
    fake.put(
        {
            "metadata": {"name": "uuid-w"},
            "spec": {"agentId": "uuid-w", "agentName": "writer", "capabilities": ["writing"]},
            "status": {
                "state": "Active",
                "currentTask": "hello/b",
                "tasksSucceeded": 4,
                "lastSeen": "2026-11-25T09:00:01Z",
                "conditions": [{"type": "Ready", "status": "False", "reason": "Busy"}],
            },
        }
    )
    fake.put(workflow("hello", "2026-11-25T09:00:00Z"), plural=WORKFLOWS.plural)
    return fake


@pytest.fixture
async def client(kube: FakeKube, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    keys = tmp_path / "keys"
    keys.write_text(f"{SCOPED_KEY} agent-a\n")
    async with client_for(kube, dashboard_key=DASHBOARD_KEY, api_keys_file=keys) as (client, _):
        yield client


# -- access ------------------------------------------------------------------------------


async def test_without_a_key_the_page_is_a_login_form_and_the_api_says_401(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/dashboard")
    assert page.status_code == 401
    assert '<form class="login-box" method="post"' in page.text
    api = await client.get("/dashboard/api/agents")
    assert api.status_code == 401
    assert api.headers["www-authenticate"] == "Bearer"


async def test_a_key_in_the_url_becomes_an_httponly_cookie_and_leaves_the_url(
    client: httpx.AsyncClient,
) -> None:
    login = await client.get("/dashboard", params={"key": DASHBOARD_KEY})
    assert login.status_code == 303
    assert login.headers["location"] == "dashboard"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "path=/dashboard" in cookie
    assert "samesite=lax" in cookie
    assert DASHBOARD_KEY not in login.headers["set-cookie"]  # encoded, and never logged as is
    page = await client.get("/dashboard")  # the client keeps the cookie
    assert page.status_code == 200
    assert '<svg id="dag"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (await client.get("/dashboard/api/agents")).status_code == 200


async def test_the_login_form_posts_the_key(client: httpx.AsyncClient) -> None:
    login = await client.post("/dashboard", data={"key": API_KEY})
    assert login.status_code == 303
    assert (await client.get("/dashboard/api/workflows")).status_code == 200


async def test_a_wrong_key_gets_the_form_again_with_the_reason(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard", params={"key": "nope"})
    assert page.status_code == 401
    assert "Invalid key" in page.text
    assert "set-cookie" not in page.headers


async def test_a_revoked_cookie_is_cleared(client: httpx.AsyncClient) -> None:
    client.cookies.set("opscore_dashboard", "bm9wZQ", path="/dashboard")  # "nope"
    page = await client.get("/dashboard")
    assert page.status_code == 401
    assert 'opscore_dashboard=""' in page.headers["set-cookie"]


async def test_a_key_scoped_to_agents_may_not_see_everything(client: httpx.AsyncClient) -> None:
    assert (await client.get("/dashboard", params={"key": SCOPED_KEY})).status_code == 403
    api = await client.get("/dashboard/api/workflows", headers=auth(SCOPED_KEY))
    assert api.status_code == 403
    assert "scoped" in api.json()["detail"]


async def test_the_dashboard_key_is_read_only_it_cannot_report_as_an_agent(
    client: httpx.AsyncClient,
) -> None:
    assert (
        await client.get("/dashboard/api/agents", headers=auth(DASHBOARD_KEY))
    ).status_code == 200
    report = await client.post(
        state_url("uuid-w"), json=report_body("uuid-w"), headers=auth(DASHBOARD_KEY)
    )
    assert report.status_code == 401


async def test_assets_are_served_locally_and_only_those(client: httpx.AsyncClient) -> None:
    script = await client.get("/dashboard/static/dashboard.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "function layout(steps)" in script.text
    css = await client.get("/dashboard/static/dashboard.css")
    assert css.headers["content-type"].startswith("text/css")
    assert (await client.get("/dashboard/static/login.html")).status_code == 404
    assert (await client.get("/dashboard/static/..%2Fdashboard.py")).status_code == 404
    page = (
        await client.get("/dashboard", params={"key": DASHBOARD_KEY}, follow_redirects=True)
    ).text
    assert "http://" not in page
    assert "https://" not in page


# -- data --------------------------------------------------------------------------------


async def test_agents_with_live_state_counts_and_ready_reason(client: httpx.AsyncClient) -> None:
    body = (await client.get("/dashboard/api/agents", headers=auth(DASHBOARD_KEY))).json()
    [agent] = body["items"]
    assert {k: agent[k] for k in ("agentName", "state", "currentTask", "tasksSucceeded")} == {
        "agentName": "writer",
        "state": "Active",
        "currentTask": "hello/b",
        "tasksSucceeded": 4,
    }
    assert agent["ready"]["reason"] == "Busy"


async def test_one_workflow_with_steps_in_order_agent_names_and_timings(
    client: httpx.AsyncClient,
) -> None:
    run = (await client.get("/dashboard/api/workflows/hello", headers=auth(DASHBOARD_KEY))).json()
    assert (run["name"], run["phase"], run["progress"]) == ("hello", "Running", "1/2")
    assert [(s["name"], s["dependsOn"], s["phase"]) for s in run["steps"]] == [
        ("a", [], "Succeeded"),
        ("b", ["a"], "Running"),
    ]
    assert run["steps"][0]["agentName"] == "writer"
    assert run["steps"][0]["durationSeconds"] == 2.0
    missing = await client.get("/dashboard/api/workflows/nope", headers=auth(DASHBOARD_KEY))
    assert missing.status_code == 404


async def test_a_run_shows_its_usage_and_each_steps(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    used = workflow("spent", "2026-11-25T09:00:00Z")
    usage = {"totalTokens": 120, "cost": {"USD": 0.25}}
    used["status"]["usage"] = usage
    used["status"]["steps"][0]["usage"] = usage
    kube.put(used, plural=WORKFLOWS.plural)
    run = (await client.get("/dashboard/api/workflows/spent", headers=auth(DASHBOARD_KEY))).json()
    assert (run["tokens"], run["cost"]) == (120, "0.25 USD")
    assert [(s["tokens"], s["cost"]) for s in run["steps"]] == [(120, "0.25 USD"), (None, None)]


async def test_a_run_links_its_trace_only_when_a_jaeger_url_is_configured(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    uid = "6f1c2a4e-9b7d-4c3e-8a21-0d5e6f7a8b9c"
    traced = workflow("traced", "2026-11-25T09:00:00Z")
    traced["metadata"]["uid"] = uid
    kube.put(traced, plural=WORKFLOWS.plural)
    path = "/dashboard/api/workflows/traced"
    plain = (await client.get(path, headers=auth(DASHBOARD_KEY))).json()
    assert (plain["traceId"], plain["traceUrl"]) == (uid.replace("-", ""), None)
    async with client_for(
        kube, dashboard_key=DASHBOARD_KEY, jaeger_url="https://jaeger.example.com/"
    ) as (linked, _):
        run = (await linked.get(path, headers=auth(DASHBOARD_KEY))).json()
    assert run["traceUrl"] == f"https://jaeger.example.com/trace/{uid.replace('-', '')}"


async def test_a_template_run_is_drawn_from_its_template(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.put(
        {
            "metadata": {"name": "report"},
            "spec": {"steps": [{"name": "x"}, {"name": "y", "dependsOn": []}]},
        },
        plural=WORKFLOW_TEMPLATES.plural,
    )
    wf = workflow("from-template", "2026-11-25T09:00:00Z", templateRef={"name": "report"})
    wf["status"]["steps"] = []
    kube.put(wf, plural=WORKFLOWS.plural)
    run = (
        await client.get("/dashboard/api/workflows/from-template", headers=auth(DASHBOARD_KEY))
    ).json()
    assert [(s["name"], s["dependsOn"]) for s in run["steps"]] == [("x", []), ("y", [])]
    assert run["template"] == "report"


async def test_names_that_could_inject_a_field_selector_are_refused(
    client: httpx.AsyncClient,
) -> None:
    bad = await client.get("/dashboard/api/workflows/a,type=x/events", headers=auth(DASHBOARD_KEY))
    assert bad.status_code in (404, 422)
    bad = await client.get("/dashboard/api/workflows/A=b/events", headers=auth(DASHBOARD_KEY))
    assert bad.status_code == 422


async def test_events_of_this_run_only_oldest_first(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    def event(name: str, uid: str, when: str, reason: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "involvedObject": {"kind": "Workflow", "name": "hello", "uid": uid},
            "type": "Normal",
            "reason": reason,
            "message": reason.lower(),
            "lastTimestamp": when,
            "count": 1,
        }

    kube.put(
        event("e2", "uid-hello", "2026-11-25T09:00:05Z", "StepDispatched"), plural=EVENTS.plural
    )
    kube.put(
        event("e1", "uid-hello", "2026-11-25T09:00:01Z", "WorkflowRunning"), plural=EVENTS.plural
    )
    kube.put(
        event("old", "uid-before", "2026-11-24T09:00:00Z", "WorkflowSucceeded"),
        plural=EVENTS.plural,
    )
    body = (
        await client.get(
            "/dashboard/api/workflows/hello/events?uid=uid-hello", headers=auth(DASHBOARD_KEY)
        )
    ).json()
    assert [e["reason"] for e in body["items"]] == ["WorkflowRunning", "StepDispatched"]


async def test_a_thousand_workflows_come_as_one_page_newest_first_with_counts(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    for i in range(1000):
        phase = "Succeeded" if i % 4 else "Failed"
        kube.put(
            workflow(f"run-{i:04d}", f"2026-11-{1 + i // 100:02d}T10:{i % 60:02d}:00Z", phase),
            plural=WORKFLOWS.plural,
        )
    started = time.perf_counter()
    page = await client.get("/dashboard/api/workflows?limit=50", headers=auth(DASHBOARD_KEY))
    elapsed = time.perf_counter() - started
    body = page.json()
    assert (body["all"], body["total"], len(body["items"])) == (1001, 1001, 50)
    assert body["phases"] == {"Succeeded": 750, "Failed": 250, "Running": 1}
    created = [item["created"] for item in body["items"]]
    assert created == sorted(created, reverse=True)
    assert len(page.content) < 40_000  # a page, not the namespace
    assert elapsed < 5
    failed = (
        await client.get(
            "/dashboard/api/workflows?phase=Failed&q=run-00&offset=10", headers=auth(DASHBOARD_KEY)
        )
    ).json()
    assert failed["total"] == 25
    assert [i["phase"] for i in failed["items"]] == ["Failed"] * 15
    assert failed["items"][0]["stepPhases"] == {"Succeeded": 1, "Running": 1}


async def test_viewers_share_one_list_per_second(client: httpx.AsyncClient, kube: FakeKube) -> None:
    before = kube.count("list")
    await asyncio.gather(
        *(client.get("/dashboard/api/workflows", headers=auth(DASHBOARD_KEY)) for _ in range(10))
    )
    assert kube.count("list") - before == 1


async def test_a_snapshot_reloads_after_its_ttl_and_not_after_a_failure() -> None:
    now = [0.0]
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        if len(loads) == 2:
            raise RuntimeError("API server down")
        return len(loads)

    snapshot = Snapshot(load, ttl=1.0, clock=lambda: now[0])
    assert await snapshot.get() == 1
    now[0] = 0.5
    assert await snapshot.get() == 1
    now[0] = 1.5
    with pytest.raises(RuntimeError):
        await snapshot.get()
    assert await snapshot.get() == 3
