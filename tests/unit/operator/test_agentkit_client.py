"""The operator's AgentKit client: what counts as scheduled, forgotten, refused or
unreachable, and that retries resend the same task (same opscore_task_id).

What each answer or delivery failure means is specified on a fake exchange; what goes on
the wire, on a local HTTP server playing AgentKit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from agentkit_fakes import FakeExchange, answer
from aiohttp import web
from local_http import serving

from opscore_kube.exchange import (
    Answer,
    AnswerTimedOut,
    ConnectTimedOut,
    DeliveryError,
    Lost,
    NotSent,
)
from opscore_operator.agentkit import AgentKitClient
from opscore_operator.agentkit_marks import AgentKitReachability, MissingInAgentKit
from opscore_testbed.processes import free_port

MESSAGE = {"senderId": "opscore", "messageType": "workflow_task", "opscore_task_id": "t-1"}
SCHEDULED = {"status": "success", "data": {"dispatch_status": "scheduled"}, "error_code": None}


def client(
    *answers: Answer | DeliveryError, attempts: int = 3
) -> tuple[AgentKitClient, FakeExchange]:
    exchange = FakeExchange(answers)
    return AgentKitClient(
        "http://agentkit", attempts=attempts, backoff=0.0, exchange=exchange
    ), exchange


async def test_202_is_scheduled_and_the_id_is_escaped_into_the_path() -> None:
    agentkit, exchange = client(answer(202, SCHEDULED))
    result = await agentkit.run("odd id/1", MESSAGE)
    assert result.ok
    assert (exchange.seen[0].method, exchange.seen[0].path) == (
        "POST",
        "/v1/agents/odd%20id%2F1/run",
    )
    assert json.loads(exchange.seen[0].body or b"") == MESSAGE


async def test_404_means_agentkit_forgot_the_agent_and_is_not_retried() -> None:
    agentkit, exchange = client(answer(404, {"detail": "Agent with ID 'a' not found."}))
    result = await agentkit.run("a", MESSAGE)
    assert (result.outcome, result.detail) == ("not_found", "Agent with ID 'a' not found.")
    assert len(exchange.seen) == 1


async def test_422_is_a_refusal_not_an_outage() -> None:
    agentkit, exchange = client(answer(422, {"detail": "bad body"}))
    result = await agentkit.run("a", MESSAGE)
    assert (result.outcome, result.detail) == ("rejected", "422: bad body")
    assert len(exchange.seen) == 1


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (answer(503, {"detail": "AgentKit is unavailable."}), "ServerError"),
        (answer(429, text="slow down"), "ServerError"),
        (NotSent("connection refused"), "Unreachable"),
        (Lost("connection reset by peer"), "Unreachable"),
        (ConnectTimedOut("no connection in time"), "Timeout"),
        (AnswerTimedOut("no answer in time"), "Timeout"),
    ],
)
async def test_outages_are_retried_with_the_same_task_then_reported(
    failure: Answer | DeliveryError, reason: str
) -> None:
    agentkit, exchange = client(failure, attempts=3)
    result = await agentkit.run("a", MESSAGE)
    assert (result.outcome, result.reason) == ("unreachable", reason)
    assert len(exchange.seen) == 3
    assert exchange.task_ids() == {"t-1"}


@pytest.mark.parametrize(
    ("failure", "maybe_delivered"),
    [
        (answer(503, {"detail": "AgentKit is unavailable."}), False),
        (NotSent("connection refused"), False),
        (ConnectTimedOut("no SYN-ACK, or no free connection in the pool"), False),
        (AnswerTimedOut("sent, no answer"), True),
        (Lost("connection reset by peer, or the server hung up mid-answer"), True),
    ],
)
async def test_a_failure_says_whether_agentkit_may_have_taken_the_task(
    failure: Answer | DeliveryError, maybe_delivered: bool
) -> None:
    agentkit, _ = client(failure, attempts=2)
    result = await agentkit.run("a", MESSAGE)
    assert (result.outcome, result.maybe_delivered) == ("unreachable", maybe_delivered)


async def test_one_lost_answer_makes_the_whole_dispatch_maybe_delivered() -> None:
    agentkit, exchange = client(
        AnswerTimedOut("sent, no answer"),
        NotSent("refused"),
        answer(503, {"detail": "down"}),
    )
    result = await agentkit.run("a", MESSAGE)
    assert (result.outcome, result.reason, result.maybe_delivered) == (
        "unreachable",
        "ServerError",
        True,
    )
    assert len(exchange.seen) == 3


async def test_a_retry_that_gets_through_is_scheduled() -> None:
    agentkit, exchange = client(NotSent("refused"), answer(202, SCHEDULED))
    assert (await agentkit.run("a", MESSAGE)).ok
    assert len(exchange.seen) == 2


async def test_listing_agents_is_absent_on_404_and_reads_the_envelope() -> None:
    agentkit, exchange = client(answer(404, {"detail": "Not Found"}))
    assert (await agentkit.list_agents()).outcome == "absent"
    assert (exchange.seen[0].method, exchange.seen[0].path) == ("GET", "/v1/agents")
    agents = [{"agentId": "a"}, "junk", {"agentId": "b"}]
    agentkit, _ = client(answer(200, {"status": "success", "data": agents}))
    listed = await agentkit.list_agents()
    assert (listed.outcome, listed.agents) == ("ok", [{"agentId": "a"}, {"agentId": "b"}])
    agentkit, _ = client(answer(200, text="<html>not json</html>"))
    assert (await agentkit.list_agents()).outcome == "error"
    agentkit, _ = client(NotSent("refused"))
    assert (await agentkit.list_agents()).outcome == "error"


# ---- on the wire ----------------------------------------------------------------------------


@dataclass
class FakeAgentKit:
    url: str = ""
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    status: int = 202

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.raw_path, dict(request.headers), body))
        return web.json_response(SCHEDULED, status=self.status)


@pytest.fixture
async def agentkit_server() -> AsyncIterator[FakeAgentKit]:
    server = FakeAgentKit()
    async with serving(server.handle) as server.url:
        yield server


async def test_a_dispatch_posts_the_task_as_json_to_the_agents_run_path(
    agentkit_server: FakeAgentKit,
) -> None:
    agentkit = AgentKitClient(agentkit_server.url + "/", attempts=1)
    try:
        assert (await agentkit.run("odd id/1", MESSAGE)).ok
    finally:
        await agentkit.aclose()
    ((method, path, headers, body),) = agentkit_server.requests
    assert (method, path) == ("POST", "/v1/agents/odd%20id%2F1/run")
    assert headers["Content-Type"] == "application/json"  # FastAPI reads the body only then
    assert json.loads(body) == MESSAGE
    assert agentkit.server == "127.0.0.1"


async def test_an_agentkit_that_is_not_listening_surely_did_not_take_the_task() -> None:
    agentkit = AgentKitClient(f"http://127.0.0.1:{free_port()}", attempts=2, backoff=0.0)
    try:
        result = await agentkit.run("a", MESSAGE)
    finally:
        await agentkit.aclose()
    assert (result.outcome, result.reason, result.maybe_delivered) == (
        "unreachable",
        "Unreachable",
        False,
    )


def test_a_mark_clears_only_when_the_spec_moves_on() -> None:
    marks = MissingInAgentKit()
    marks.mark(("ns", "a"), "404", generation=3)
    assert marks.get(("ns", "a")) == "404"
    assert not marks.clear_if_changed(("ns", "a"), 3)
    assert marks.clear_if_changed(("ns", "a"), 4)
    assert ("ns", "a") not in marks
    marks.mark(("ns", "b"), "404", generation=None)
    assert not marks.clear_if_changed(("ns", "b"), 9)
    assert marks.clear(("ns", "b"))
    assert len(marks) == 0


def test_reachability_reports_trouble_and_then_its_end_once() -> None:
    wf = ("ns", "wf")
    reach = AgentKitReachability()
    assert not reach.succeeded(wf)  # no trouble seen: nothing to write
    reach.failed(wf, "ServerError", "AgentKit answered 503")
    trouble = reach.trouble(wf)
    assert trouble is not None
    assert trouble.reason == "ServerError"
    assert reach.succeeded(wf)
    assert reach.trouble(wf) is None
    assert reach.recovered(wf)
    reach.written(wf)
    assert not reach.recovered(wf)
    assert reach.succeeded(wf, shown_down=True)  # status says False (e.g. before a restart)
