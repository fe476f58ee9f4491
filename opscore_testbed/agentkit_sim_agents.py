"""Simulated agents: processes that behave like agents built with the AgentKit SDK.

The AgentKit simulator (`opscore_testbed.agentkit_sim`) serves these agents itself, each at its own
contact endpoint (`/sim/agents/<name>/task`), so AgentKit's dispatch reaches them over real HTTP
and their state reports reach Ops-Core over real HTTP, exactly as with the reference agent:

- the work happens while AgentKit's request is open; the state reports go out only after the
  answer (Starlette background task, as the reference agent does), each as its own request;
- success: `active`, then `idle` about 10 ms later; failure: only `error` with
  `{"error_code": "TASK_FAILED", "message": ...}`;
- reports are fire-and-forget: one try, failures are logged and counted, never raised.

`mode="correlated"` models the better-behaved agents of the contract (section 4) that also send
`details.opscore_task_id` and, on success, `details.output`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

logger = logging.getLogger("opscore_testbed.agentkit_sim.agents")

AgentMode = Literal["reference", "correlated"]

#: The message type Ops-Core dispatches; anything else is acknowledged and ignored.
WORKFLOW_TASK = "workflow_task"
#: How long the SDK-like reporter waits for Ops-Core before giving up on one report.
REPORT_TIMEOUT_SECONDS = 10.0


class AgentSpec(BaseModel):
    """What a simulated agent is and how it behaves (also the body of `POST /sim/agents`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    capabilities: list[str] = Field(default_factory=list)
    version: str = "1.0.0"
    duration_seconds: float = Field(default=0.0, ge=0.0)
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    mode: AgentMode = "reference"
    silent: bool = False
    down: bool = False
    #: AgentKit answers `POST /v1/agents/{id}/run` for this agent only after this long: one
    #: slow endpoint, while the others answer at once (the fault suite's F6).
    dispatch_delay_seconds: float = Field(default=0.0, ge=0.0)
    #: Deliberate faults for the fault suite's canary, each counted down per workflow task:
    #: AgentKit delivers the next N tasks to this agent twice (the same message, as after
    #: an ambiguous retry), and the agent's reports of the next N tasks are lost; or only
    #: their last report (`idle`/`error`), after the `active` was stored, as when the
    #: sidecar restarts between the two.
    deliver_twice_next: int = Field(default=0, ge=0)
    drop_reports_next: int = Field(default=0, ge=0)
    lose_last_report_next: int = Field(default=0, ge=0)
    #: `details.usage` each task's final report (idle or error) carries, sent as it is (so a
    #: test can also send one Ops-Core must refuse); None: no usage, as the reference agent.
    usage: dict[str, Any] | None = None


class AgentPatch(BaseModel):
    """Runtime changes to a simulated agent (`PATCH /sim/agents/{name}`); unset fields stay."""

    model_config = ConfigDict(extra="forbid")

    duration_seconds: float | None = Field(default=None, ge=0.0)
    failure_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    mode: AgentMode | None = None
    silent: bool | None = None
    down: bool | None = None
    dispatch_delay_seconds: float | None = Field(default=None, ge=0.0)
    deliver_twice_next: int | None = Field(default=None, ge=0)
    drop_reports_next: int | None = Field(default=None, ge=0)
    lose_last_report_next: int | None = Field(default=None, ge=0)
    usage: dict[str, Any] | None = None


def take_one(agent: SimulatedAgent, counter: str, message_type: str | None) -> bool:
    """True (and one fewer left) when `counter` (`deliver_twice_next`, `drop_reports_next`,
    `lose_last_report_next`) says this workflow task is one to misbehave on; other
    messages never count."""
    left = int(getattr(agent.spec, counter))
    if message_type != WORKFLOW_TASK or left <= 0:
        return False
    agent.spec = agent.spec.model_copy(update={counter: left - 1})
    return True


@dataclass
class SimulatedAgent:
    """One simulated agent: its behaviour, the id AgentKit gave it, and counters for tests."""

    spec: AgentSpec
    contact_endpoint: str
    agent_id: str | None = None
    tasks_received: int = 0
    tasks_completed: int = 0
    reports_sent: int = 0
    reports_failed: int = 0

    def view(self, *, registered: bool) -> dict[str, Any]:
        """The JSON shape `GET /sim/agents` shows; `registered` says whether AgentKit knows it."""
        return {
            **self.spec.model_dump(),
            "agentId": self.agent_id,
            "contactEndpoint": self.contact_endpoint,
            "registered": registered,
            "tasks_received": self.tasks_received,
            "tasks_completed": self.tasks_completed,
            "reports_sent": self.reports_sent,
            "reports_failed": self.reports_failed,
        }


def utc_now_iso() -> str:
    """The SDK's timestamp: `datetime.now(timezone.utc).isoformat()`, always with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class StateReporter:
    """Sends state reports the way the AgentKit SDK does.

    The path is absolute and joined onto the Ops-Core URL with `urljoin`, so any path prefix in
    that URL is dropped, like the SDK does. One try per report, no retry; a failure is logged and
    counted on the agent, and never propagates (the agent keeps working, as real agents do).
    """

    def __init__(
        self, *, client: httpx.AsyncClient, opscore_url: str, api_key: str, max_in_flight: int = 64
    ) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(max_in_flight)
        self._root = urljoin(opscore_url, "/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def url_for(self, agent_id: str) -> str:
        """The state endpoint of one agent, at the root of Ops-Core's host."""
        return f"{self._root}v1/opscore/agent/{agent_id}/state"

    async def report(self, agent: SimulatedAgent, state: str, details: dict[str, Any]) -> bool:
        """Send one report; True when Ops-Core answered 2xx (the SDK's notion of success)."""
        agent_id = agent.agent_id
        if agent_id is None:  # not registered yet: the SDK cannot report without an id either
            return False
        body = {"agentId": agent_id, "timestamp": utc_now_iso(), "state": state, "details": details}
        try:
            async with self._slots:
                response = await self._client.post(
                    self.url_for(agent_id),
                    json=body,
                    headers=self._headers,
                    timeout=REPORT_TIMEOUT_SECONDS,
                )
        except httpx.HTTPError as exc:
            agent.reports_failed += 1
            logger.warning(
                "State report failed: %r",
                exc,
                extra={"agent": agent.spec.name, "agentId": agent_id, "state": state},
            )
            return False
        if response.is_success:
            agent.reports_sent += 1
            return True
        agent.reports_failed += 1
        logger.warning(
            "Ops-Core rejected a state report with HTTP %d",
            response.status_code,
            extra={"agent": agent.spec.name, "agentId": agent_id, "state": state},
        )
        return False


class TaskLedger:
    """Every message a simulated agent received, so tests can prove nothing ran twice."""

    def __init__(self) -> None:
        self._tasks: list[dict[str, Any]] = []
        self._by_task_id: Counter[str] = Counter()
        self._index: dict[str, dict[str, Any]] = {}

    def record(self, *, agent: SimulatedAgent, message: dict[str, Any]) -> None:
        """Note one received message (called before any work, so silent agents count too)."""
        task_id = message.get("opscore_task_id")
        if isinstance(task_id, str):
            self._by_task_id[task_id] += 1
        self._tasks.append(
            {
                "agentId": agent.agent_id,
                "agentName": agent.spec.name,
                "opscore_task_id": task_id,
                "opscore_session_id": message.get("opscore_session_id"),
                "task_name": message.get("task_name"),
                "messageType": message.get("messageType"),
                "payload": message.get("payload"),  # what the agent was asked to do
                "received_at": utc_now_iso(),
                "received_epoch": time.time(),
            }
        )
        if isinstance(task_id, str):
            self._index[task_id] = self._tasks[-1]

    def finished(self, task_id: str | None) -> None:
        """The task's last report was accepted by Ops-Core: note when (benchmark B3 measures
        from here to the next dispatch)."""
        record = self._index.get(task_id or "")
        if record is not None:
            record["final_report_acked_epoch"] = time.time()

    def snapshot(self, *, include_tasks: bool = True) -> dict[str, Any]:
        """The `GET /sim/tasks` answer; `include_tasks=False` keeps it small for benchmarks."""
        answer: dict[str, Any] = {"by_task_id": dict(self._by_task_id), "total": len(self._tasks)}
        if include_tasks:
            answer["tasks"] = list(self._tasks)
        return answer

    def clear(self) -> None:
        """Forget everything recorded (between benchmark rounds)."""
        self._tasks.clear()
        self._by_task_id.clear()
        self._index.clear()


@dataclass(frozen=True)
class TaskOutcome:
    """What the work on one message came to: the HTTP answer and the reports that follow it."""

    status_code: int
    answer: dict[str, Any]
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    task_id: str | None = None


class DuplicateSimulatedAgentError(ValueError):
    """A simulated agent with that name already exists in this simulator."""


class AgentFleet:
    """All simulated agents of one simulator, and the behaviour they share."""

    def __init__(
        self,
        *,
        base_url: str,
        reporter: StateReporter,
        rng: random.Random,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        report_gap_seconds: float = 0.01,
    ) -> None:
        self.agents: dict[str, SimulatedAgent] = {}
        self.ledger = TaskLedger()
        self.reporter = reporter
        self._base_url = base_url.rstrip("/")
        self._rng = rng
        self._spawn = spawn
        self._report_gap_seconds = report_gap_seconds

    def add(self, spec: AgentSpec) -> SimulatedAgent:
        """Create a simulated agent (not yet registered with AgentKit)."""
        if spec.name in self.agents:
            raise DuplicateSimulatedAgentError(f"Simulated agent '{spec.name}' already exists.")
        agent = SimulatedAgent(
            spec=spec, contact_endpoint=f"{self._base_url}/sim/agents/{spec.name}/task"
        )
        self.agents[spec.name] = agent
        return agent

    def patch(self, agent: SimulatedAgent, change: AgentPatch) -> None:
        """Apply a runtime change; tasks already running keep the behaviour they started with."""
        agent.spec = agent.spec.model_copy(update=change.model_dump(exclude_none=True))

    async def perform(self, agent: SimulatedAgent, message: dict[str, Any]) -> TaskOutcome:
        """Do the work for one message and decide the reports that follow the answer."""
        spec = agent.spec
        agent.tasks_received += 1
        self.ledger.record(agent=agent, message=message)
        task_id = message.get("opscore_task_id")
        correlation: dict[str, Any] = (
            {"opscore_task_id": task_id}
            if spec.mode == "correlated" and isinstance(task_id, str)
            else {}
        )
        if message.get("messageType") != WORKFLOW_TASK:
            return TaskOutcome(
                status_code=200,
                answer={"status": "ignored", "reason": "Unhandled message type"},
                reports=[("active", dict(correlation)), ("idle", dict(correlation))],
            )
        if spec.duration_seconds > 0:
            await asyncio.sleep(spec.duration_seconds)
        task_name = _task_name(message)
        if spec.failure_rate > 0 and self._rng.random() < spec.failure_rate:
            error = {
                "error_code": "TASK_FAILED",
                "message": f"Task '{task_name}' failed on agent '{spec.name}' (simulated failure)",
            }
            return TaskOutcome(
                status_code=500,
                answer={"detail": error},
                reports=[("error", error | correlation | _usage_of(spec))],
                task_id=task_id if isinstance(task_id, str) else None,
            )
        idle_details: dict[str, Any] = dict(correlation) | _usage_of(spec)
        if correlation:
            idle_details["output"] = {"echo": message.get("payload"), "agent": spec.name}
        return TaskOutcome(
            status_code=200,
            answer={"status": "completed", "result": f"Processed task '{task_name}' successfully."},
            reports=[("active", dict(correlation)), ("idle", idle_details)],
            task_id=task_id if isinstance(task_id, str) else None,
        )

    async def start_reports(self, agent: SimulatedAgent, outcome: TaskOutcome) -> None:
        """Hand the reports to a detached task once the answer is out.

        This runs as the answer's background task, so the reports still follow the answer, but
        the connection is free at once for AgentKit's next dispatch instead of waiting out the
        reports and the gap between them.
        """
        self._spawn(self.send_reports(agent, outcome))

    async def send_reports(self, agent: SimulatedAgent, outcome: TaskOutcome) -> None:
        """Send the outcome's reports in order, at least `report_gap_seconds` apart.

        Each report waits for the previous one to finish (the reference agent awaits them one by
        one in its background tasks). A silent agent sends nothing; the task still counts as
        completed so tests can wait for "done" instead of sleeping.
        """
        try:
            if agent.spec.silent:
                return
            for index, (state, details) in enumerate(outcome.reports):
                started = time.monotonic()
                accepted = await self.reporter.report(agent, state, details)
                if accepted and index + 1 == len(outcome.reports):
                    self.ledger.finished(outcome.task_id)
                if index + 1 < len(outcome.reports):
                    remaining = self._report_gap_seconds - (time.monotonic() - started)
                    if remaining > 0:
                        await asyncio.sleep(remaining)
        finally:
            agent.tasks_completed += 1


def _usage_of(spec: AgentSpec) -> dict[str, Any]:
    """The usage detail of a task's final report ({} when the agent reports none)."""
    return {} if spec.usage is None else {"usage": dict(spec.usage)}


def _task_name(message: dict[str, Any]) -> str:
    """The task's name for messages: the top-level field, else the payload's, else 'unknown'."""
    name = message.get("task_name")
    if isinstance(name, str) and name:
        return name
    payload = message.get("payload")
    if isinstance(payload, dict):
        for key in ("task_name", "task", "name"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
    return "unknown"


def agent_routes(fleet: AgentFleet) -> list[Route]:
    """The simulated agents' contact endpoints (what AgentKit POSTs messages to).

    A plain Starlette route rather than a FastAPI one: it is on every task's hot path and needs
    none of FastAPI's parameter machinery.
    """

    async def receive_message(request: Request) -> JSONResponse:
        """Handle one message like the reference agent: work, answer, then report."""
        name = request.path_params["name"]
        agent = fleet.agents.get(name)
        if agent is None:
            return JSONResponse({"detail": f"No simulated agent named '{name}'."}, 404)
        if agent.spec.down:
            return JSONResponse({"detail": f"Simulated agent '{name}' is down."}, 503)
        try:
            message = await request.json()
        except ValueError:
            message = None
        if not isinstance(message, dict):
            return JSONResponse({"detail": "Expected a JSON object."}, 422)
        outcome = await fleet.perform(agent, message)
        if take_one(agent, "drop_reports_next", message.get("messageType")):
            logger.warning("Dropping the reports of one task on purpose", extra={"agent": name})
            outcome = replace(outcome, reports=[])
        elif take_one(agent, "lose_last_report_next", message.get("messageType")):
            logger.warning("Losing one task's last report on purpose", extra={"agent": name})
            outcome = replace(outcome, reports=outcome.reports[:-1])
        return JSONResponse(
            outcome.answer,
            status_code=outcome.status_code,
            background=BackgroundTask(fleet.start_reports, agent, outcome),
        )

    return [Route("/sim/agents/{name}/task", receive_message, methods=["POST"])]
