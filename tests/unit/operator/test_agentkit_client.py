"""The operator's AgentKit client: what counts as scheduled, forgotten, refused or
unreachable, and that retries resend the same task (same opscore_task_id)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from opscore_operator.agentkit import AgentKitClient
from opscore_operator.agentkit_marks import AgentKitReachability, MissingInAgentKit

MESSAGE = {"senderId": "opscore", "messageType": "workflow_task", "opscore_task_id": "t-1"}
SCHEDULED = {"status": "success", "data": {"dispatch_status": "scheduled"}, "error_code": None}

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, attempts: int = 3) -> AgentKitClient:
    return AgentKitClient(
        "http://agentkit", attempts=attempts, backoff=0.0, transport=httpx.MockTransport(handler)
    )


def sequence(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


async def test_202_is_scheduled_and_the_id_is_escaped_into_the_path() -> None:
    handler, seen = sequence(httpx.Response(202, json=SCHEDULED))
    result = await client(handler).run("odd id/1", MESSAGE)
    assert result.ok
    assert seen[0].url.raw_path == b"/v1/agents/odd%20id%2F1/run"
    assert json.loads(seen[0].content) == MESSAGE


async def test_404_means_agentkit_forgot_the_agent_and_is_not_retried() -> None:
    detail = {"detail": "Agent with ID 'a' not found."}
    handler, seen = sequence(httpx.Response(404, json=detail))
    result = await client(handler).run("a", MESSAGE)
    assert (result.outcome, result.detail) == ("not_found", "Agent with ID 'a' not found.")
    assert len(seen) == 1


async def test_422_is_a_refusal_not_an_outage() -> None:
    handler, seen = sequence(httpx.Response(422, json={"detail": "bad body"}))
    result = await client(handler).run("a", MESSAGE)
    assert result.outcome == "rejected"
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.Response(503, json={"detail": "AgentKit is unavailable."}), "ServerError"),
        (httpx.Response(429, text="slow down"), "ServerError"),
        (httpx.ConnectError("connection refused"), "Unreachable"),
        (httpx.ReadTimeout("timed out"), "Timeout"),
    ],
)
async def test_outages_are_retried_with_the_same_task_then_reported(
    failure: httpx.Response | Exception, reason: str
) -> None:
    handler, seen = sequence(failure)
    result = await client(handler, attempts=3).run("a", MESSAGE)
    assert (result.outcome, result.reason) == ("unreachable", reason)
    assert len(seen) == 3
    assert {json.loads(r.content)["opscore_task_id"] for r in seen} == {"t-1"}


@pytest.mark.parametrize(
    ("failure", "maybe_delivered"),
    [
        (httpx.Response(503, json={"detail": "AgentKit is unavailable."}), False),
        (httpx.ConnectError("connection refused"), False),
        (httpx.ConnectTimeout("no SYN-ACK"), False),
        (httpx.PoolTimeout("no free connection"), False),
        (httpx.WriteError("broken pipe while sending"), False),
        (httpx.ReadTimeout("sent, no answer"), True),
        (httpx.ReadError("connection reset by peer"), True),
        (httpx.RemoteProtocolError("server disconnected mid-answer"), True),
    ],
)
async def test_a_failure_says_whether_agentkit_may_have_taken_the_task(
    failure: httpx.Response | Exception, maybe_delivered: bool
) -> None:
    handler, _ = sequence(failure)
    result = await client(handler, attempts=2).run("a", MESSAGE)
    assert (result.outcome, result.maybe_delivered) == ("unreachable", maybe_delivered)


async def test_one_lost_answer_makes_the_whole_dispatch_maybe_delivered() -> None:
    handler, seen = sequence(
        httpx.ReadTimeout("sent, no answer"),
        httpx.ConnectError("refused"),
        httpx.Response(503, json={"detail": "down"}),
    )
    result = await client(handler, attempts=3).run("a", MESSAGE)
    assert (result.outcome, result.reason, result.maybe_delivered) == (
        "unreachable",
        "ServerError",
        True,
    )
    assert len(seen) == 3


async def test_a_retry_that_gets_through_is_scheduled() -> None:
    handler, seen = sequence(httpx.ConnectError("refused"), httpx.Response(202, json=SCHEDULED))
    assert (await client(handler).run("a", MESSAGE)).ok
    assert len(seen) == 2


async def test_listing_agents_is_absent_on_404_and_reads_the_envelope() -> None:
    handler, _ = sequence(httpx.Response(404, json={"detail": "Not Found"}))
    assert (await client(handler).list_agents()).outcome == "absent"
    agents = [{"agentId": "a"}, "junk", {"agentId": "b"}]
    handler, _ = sequence(httpx.Response(200, json={"status": "success", "data": agents}))
    listed = await client(handler).list_agents()
    assert (listed.outcome, listed.agents) == ("ok", [{"agentId": "a"}, {"agentId": "b"}])
    handler, _ = sequence(httpx.ConnectError("refused"))
    assert (await client(handler).list_agents()).outcome == "error"


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
