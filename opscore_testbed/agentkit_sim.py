"""AgentKit simulator: AgentKit's real HTTP API plus simulated agents, in one process.

Tests, the demo and the benchmarks run Ops-Core against this instead of a real AgentKit. It keeps
AgentKit's wire contract (docs: agentkit-contract.md) exactly: the same paths, envelopes, status
codes, the signed registration webhook, the fire-and-forget dispatch to contact endpoints, the
in-memory storage a restart forgets, and no `GET /v1/agents`. The simulated agents it serves
(`opscore_testbed.agentkit_sim_agents`) report state to Ops-Core the way SDK agents do.

Everything under `/sim/` is for tests and is not part of AgentKit's API.

Run it: `python -m opscore_testbed.agentkit_sim --port 8000 --opscore-url http://127.0.0.1:8080
--api-key KEY --agents summarizer:summarize,translate`; `--help` lists the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, HttpUrl, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from starlette.background import BackgroundTask

from opscore_testbed.agentkit_sim_agents import (
    AgentFleet,
    AgentMode,
    AgentPatch,
    AgentSpec,
    DuplicateSimulatedAgentError,
    SimulatedAgent,
    StateReporter,
    agent_routes,
    take_one,
)
from opscore_testbed.agentkit_sim_state import (
    AgentInfo,
    AgentMetadata,
    AgentRegistrationPayload,
    AgentRegistry,
    ApiResponse,
    CutOffAnswer,
    DispatchFaults,
    DispatchStalls,
    DuplicateAgentNameError,
    MessagePayload,
    Outage,
    OutageRequest,
    QuietCutOffs,
    WebhookNotifier,
)
from opscore_testbed.aiohttp_transport import AiohttpTransport
from opscore_testbed.asgi_serving import bind_socket, serve_app

logger = logging.getLogger("opscore_testbed.agentkit_sim")

#: AgentKit's timeout for a dispatch to an agent's contact endpoint (contract section 2).
DISPATCH_TIMEOUT_SECONDS = 15.0


# --- Settings and the simulator itself ----------------------------------------------------------


class SimSettings(BaseModel):
    """Everything a simulator instance needs; the CLI builds it from flags and env vars."""

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None  # how others reach us; default http://<host>:<port>
    opscore_url: str = "http://127.0.0.1:8080"
    api_key: str = ""
    webhook_url: str | None = None
    webhook_secret: str | None = None
    list_endpoint: bool = False
    report_before_webhook: bool = True
    report_gap_seconds: float = 0.01
    agents: list[AgentSpec] = Field(default_factory=list)
    seed: int | None = None
    max_connections: int = Field(default=256, ge=1)  # dispatches to agents in flight
    report_connections: int = Field(default=64, ge=1)  # state reports in flight
    transport: Literal["aiohttp", "httpcore"] = "aiohttp"  # under the shared httpx client
    access_log: bool = False

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


def _outbound_client(settings: SimSettings) -> httpx.AsyncClient:
    """The one client for every outbound call (dispatches, state reports, webhooks)."""
    connections = settings.max_connections + settings.report_connections
    if settings.transport == "httpcore":
        return httpx.AsyncClient(
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=32),
            timeout=DISPATCH_TIMEOUT_SECONDS,
        )
    return httpx.AsyncClient(
        transport=AiohttpTransport(max_connections=connections),
        timeout=DISPATCH_TIMEOUT_SECONDS,
    )


class AgentKitSimulator:
    """The state behind the app: AgentKit's registry and the simulated agents, one HTTP client."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.client = _outbound_client(settings)
        # Dispatches and reports wait at their own gates (cheap FIFO queues) rather than inside the
        # connection pool, so a flood of reports never starves dispatches or the reverse, and with
        # httpcore (which rescans its whole queue on every request) nothing collapses under load.
        self._dispatch_slots = asyncio.Semaphore(settings.max_connections)
        self.registry = AgentRegistry()
        self.webhook = WebhookNotifier(
            client=self.client, url=settings.webhook_url, secret=settings.webhook_secret
        )
        self.fleet = AgentFleet(
            base_url=settings.base_url,
            reporter=StateReporter(
                client=self.client,
                opscore_url=settings.opscore_url,
                api_key=settings.api_key,
                max_in_flight=settings.report_connections,
            ),
            rng=random.Random(settings.seed),
            spawn=self.spawn,
            report_gap_seconds=settings.report_gap_seconds,
        )
        self.outage = Outage()
        self.stalls = DispatchStalls(settings.seed)  # what a retry may duplicate
        # Set once the start-up agents are registered: until then `/health` and `/sim/` wait, so
        # whoever polls them for readiness sees the agents. (The agents' own endpoints never wait.)
        self.ready = asyncio.Event()
        if not settings.agents:
            self.ready.set()
        self._background: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` detached from the request (a task, not Starlette's BackgroundTasks, so a
        keep-alive connection is free for the caller's next request at once)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def dispatch(self, info: AgentInfo, message: dict[str, Any]) -> None:
        """POST a message to the agent once; AgentKit throws the answer away."""
        try:
            async with self._dispatch_slots:
                response = await self.client.post(
                    info.contactEndpoint, json=message, timeout=DISPATCH_TIMEOUT_SECONDS
                )
        except httpx.HTTPError as exc:
            logger.error("Dispatch to agent failed: %r", exc, extra={"agentId": info.agentId})
            return
        if response.is_error:
            logger.error(
                "Agent answered the dispatch with HTTP %d",
                response.status_code,
                extra={"agentId": info.agentId},
            )

    async def register_simulated(self, agent: SimulatedAgent) -> AgentInfo:
        """Register a simulated agent with AgentKit, then report `idle` and send the webhook.

        With `report_before_webhook` (the default) the first `idle` report is delivered before
        the webhook starts, the order seen with the real reference agent. Raises
        DuplicateAgentNameError when AgentKit already knows the name.
        """
        spec = agent.spec
        info = self.registry.register(
            AgentRegistrationPayload(
                agentName=spec.name,
                capabilities=spec.capabilities,
                version=spec.version,
                contactEndpoint=HttpUrl(agent.contact_endpoint),
                metadata=AgentMetadata(
                    description=f"Simulated agent '{spec.name}'", config={"mode": spec.mode}
                ),
            )
        )
        agent.agent_id = info.agentId
        logger.info(
            "Simulated agent registered", extra={"agentName": spec.name, "agentId": info.agentId}
        )
        if self.settings.report_before_webhook:
            await self.fleet.reporter.report(agent, "idle", {})
            self.spawn(self.webhook.notify(info))
        else:
            await self.webhook.notify(info)
            await self.fleet.reporter.report(agent, "idle", {})
        return info

    async def add_simulated(self, spec: AgentSpec) -> SimulatedAgent:
        """Create and register a simulated agent; on a refused registration nothing remains."""
        agent = self.fleet.add(spec)
        try:
            await self.register_simulated(agent)
        except DuplicateAgentNameError:
            del self.fleet.agents[spec.name]
            raise
        return agent

    def agent_view(self, agent: SimulatedAgent) -> dict[str, Any]:
        registered = agent.agent_id is not None and self.registry.get(agent.agent_id) is not None
        return agent.view(registered=registered)

    async def aclose(self) -> None:
        """Stop background work and close the shared client (the app's shutdown)."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.client.aclose()


def _envelope(message: str, data: Any, status_code: int) -> JSONResponse:
    body = {"status": "success", "message": message, "data": data, "error_code": None}
    return JSONResponse(body, status_code=status_code)


def create_app(settings: SimSettings) -> FastAPI:
    """The simulator's ASGI app; `app.state.simulator` is its AgentKitSimulator."""
    sim = AgentKitSimulator(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await sim.aclose()

    app = FastAPI(title="AgentKit simulator", lifespan=lifespan)
    app.state.simulator = sim
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(sim.outage.gate)], tags=["AgentKit"])

    @v1.post("/agents/register", status_code=201, response_model=ApiResponse)
    async def register_agent(payload: AgentRegistrationPayload) -> JSONResponse:
        try:
            info = sim.registry.register(payload)
        except DuplicateAgentNameError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        response = _envelope(
            f"Agent '{info.agentName}' registered successfully.", {"agentId": info.agentId}, 201
        )
        # After the answer, as AgentKit does: a real agent's first report usually wins the race.
        response.background = BackgroundTask(sim.webhook.notify, info)
        return response

    @v1.post("/agents/{agent_id}/run", status_code=202, response_model=ApiResponse)
    async def run_agent(agent_id: str, message: MessagePayload) -> Response:
        info = sim.registry.get(agent_id)
        if info is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Agent with ID '{agent_id}' not found.")
        simulated = sim.fleet.agents.get(info.agentName)
        if simulated is not None and simulated.spec.dispatch_delay_seconds > 0:
            await asyncio.sleep(simulated.spec.dispatch_delay_seconds)
        body = message.model_dump(mode="json")
        sim.spawn(sim.dispatch(info, body))
        if simulated is not None and take_one(simulated, "deliver_twice_next", message.messageType):
            logger.warning("Delivering one task twice on purpose", extra={"agentId": agent_id})
            sim.spawn(sim.dispatch(info, body))
        if await sim.stalls.after_scheduled(message.opscore_task_id):
            return CutOffAnswer()
        return _envelope(
            f"Message accepted for agent {agent_id}; dispatch scheduled.",
            {"agentId": agent_id, "dispatch_status": "scheduled"},
            202,
        )

    if settings.list_endpoint:

        @v1.get("/agents", response_model=ApiResponse)
        async def list_agents() -> JSONResponse:
            agents = [info.details() for info in sim.registry.all()]
            return _envelope(f"{len(agents)} agents registered.", agents, 200)

    app.include_router(v1)
    app.router.routes.extend(agent_routes(sim.fleet))
    _add_sim_routes(app, sim)
    return app


def _add_sim_routes(app: FastAPI, sim: AgentKitSimulator) -> None:
    """The `/sim/` control and inspection endpoints (not AgentKit's API)."""
    fleet = sim.fleet

    async def until_ready() -> None:
        await sim.ready.wait()

    router = APIRouter(dependencies=[Depends(until_ready)], tags=["sim"])

    def agent_named(name: str) -> SimulatedAgent:
        agent = fleet.agents.get(name)
        if agent is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No simulated agent named '{name}'.")
        return agent

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/sim/tasks")
    async def tasks(include_tasks: bool = True) -> dict[str, Any]:
        return fleet.ledger.snapshot(include_tasks=include_tasks) | {
            "stalled_task_ids": list(sim.stalls.stalled),
            "reset_task_ids": list(sim.stalls.reset),
        }

    @router.delete("/sim/tasks")
    async def clear_tasks() -> dict[str, Any]:
        fleet.ledger.clear()
        return fleet.ledger.snapshot()

    @router.get("/sim/agents")
    async def list_simulated() -> list[dict[str, Any]]:
        return [sim.agent_view(agent) for agent in fleet.agents.values()]

    @router.post("/sim/agents", status_code=201)
    async def add_simulated(spec: AgentSpec) -> dict[str, Any]:
        try:
            agent = await sim.add_simulated(spec)
        except (DuplicateSimulatedAgentError, DuplicateAgentNameError) as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return sim.agent_view(agent)

    @router.get("/sim/agents/{name}")
    async def get_simulated(name: str) -> dict[str, Any]:
        return sim.agent_view(agent_named(name))

    @router.patch("/sim/agents/{name}")
    async def patch_simulated(name: str, change: AgentPatch) -> dict[str, Any]:
        agent = agent_named(name)
        fleet.patch(agent, change)
        return sim.agent_view(agent)

    @router.post("/sim/agents/{name}/register", status_code=201)
    async def reregister(name: str) -> dict[str, Any]:
        agent = agent_named(name)
        try:
            await sim.register_simulated(agent)
        except DuplicateAgentNameError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return sim.agent_view(agent)

    @router.post("/sim/forget")
    async def forget() -> dict[str, int]:
        forgotten = sim.registry.forget_all()
        logger.info("AgentKit forgot every agent (simulated restart)", extra={"count": forgotten})
        return {"forgotten": forgotten}

    @router.post("/sim/dispatch-faults")
    async def dispatch_faults(request: DispatchFaults) -> dict[str, Any]:
        sim.stalls.faults = request
        return request.model_dump()

    @router.post("/sim/outage")
    async def outage(request: OutageRequest) -> dict[str, Any]:
        sim.outage.start(request)
        logger.info("Simulated AgentKit outage", extra=request.model_dump())
        return request.model_dump()

    app.include_router(router)


# --- Serving: in-process helpers and the CLI ----------------------------------------------------


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator serving on a real port (from `run_simulator`)."""

    url: str
    app: FastAPI
    simulator: AgentKitSimulator
    server_task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def run_simulator(settings: SimSettings) -> AsyncIterator[RunningSimulator]:
    """Serve the simulator, then register `settings.agents` (their endpoints already answer)."""
    sock = bind_socket(settings.host, settings.port)
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    app = create_app(settings)
    sim: AgentKitSimulator = app.state.simulator
    async with serve_app(app, sock, access_log=settings.access_log) as server_task:
        for spec in settings.agents:
            await sim.add_simulated(spec)
        sim.ready.set()
        yield RunningSimulator(
            url=settings.base_url, app=app, simulator=sim, server_task=server_task
        )


class SimEnvironment(BaseSettings):
    """Env vars the CLI reads (the names real AgentKit and SDK deployments use)."""

    model_config = SettingsConfigDict(env_prefix="OPSCORE_", extra="ignore")

    api_url: str = "http://127.0.0.1:8080"
    api_key: str = ""
    webhook_url: str | None = None
    webhook_secret: str | None = None


def parse_agent_option(value: str) -> tuple[str, list[str]]:
    """`name:cap1,cap2` (capabilities optional) -> (name, [cap1, cap2])."""
    name, _, caps = value.partition(":")
    if not name.strip():
        raise argparse.ArgumentTypeError(f"agent spec needs a name: {value!r}")
    return name.strip(), [cap.strip() for cap in caps.split(",") if cap.strip()]


def parse_args(argv: Sequence[str] | None = None) -> tuple[SimSettings, argparse.Namespace]:
    """Build settings from flags, falling back to env vars, then to defaults."""
    env = SimEnvironment()
    parser = argparse.ArgumentParser(
        prog="opscore-agentkit-sim", description="AgentKit simulator with simulated agents."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--public-url", help="URL others use to reach this process")
    parser.add_argument("--opscore-url", default=env.api_url, help="env OPSCORE_API_URL")
    parser.add_argument("--api-key", default=env.api_key, help="env OPSCORE_API_KEY")
    parser.add_argument("--webhook-url", default=env.webhook_url, help="env OPSCORE_WEBHOOK_URL")
    parser.add_argument(
        "--webhook-secret", default=env.webhook_secret, help="env OPSCORE_WEBHOOK_SECRET"
    )
    parser.add_argument(
        "--agents",
        action="append",
        type=parse_agent_option,
        default=[],
        metavar="NAME:CAP1,CAP2",
        help="a simulated agent to register at start-up; repeat for more",
    )
    parser.add_argument("--duration", type=float, default=0.0, help="seconds per task")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--mode", choices=["reference", "correlated"], default="reference")
    parser.add_argument("--list-endpoint", action="store_true", help="answer GET /v1/agents")
    parser.add_argument(
        "--webhook-first",
        action="store_true",
        help="send the webhook before a new agent's first idle report (default: after)",
    )
    parser.add_argument("--seed", type=int, help="seed for failure_rate draws")
    parser.add_argument(
        "--max-connections", type=int, default=256, help="dispatches to agents in flight"
    )
    parser.add_argument(
        "--report-connections", type=int, default=64, help="state reports in flight"
    )
    parser.add_argument(
        "--transport",
        choices=["aiohttp", "httpcore"],
        default="aiohttp",
        help="what carries the shared httpx client's requests (httpcore: httpx's own)",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    mode: AgentMode = args.mode
    try:
        agents = [
            AgentSpec(
                name=name,
                capabilities=caps,
                duration_seconds=args.duration,
                failure_rate=args.failure_rate,
                mode=mode,
            )
            for name, caps in args.agents
        ]
        settings = SimSettings(
            host=args.host,
            port=args.port,
            public_url=args.public_url,
            opscore_url=args.opscore_url,
            api_key=args.api_key,
            webhook_url=args.webhook_url,
            webhook_secret=args.webhook_secret,
            list_endpoint=args.list_endpoint,
            report_before_webhook=not args.webhook_first,
            agents=agents,
            seed=args.seed,
            max_connections=args.max_connections,
            report_connections=args.report_connections,
            transport=args.transport,
            access_log=args.access_log,
        )
    except ValidationError as exc:
        parser.error(str(exc))
    names = [spec.name for spec in agents]
    if len(set(names)) != len(names):
        parser.error(f"--agents names must be unique: {names}")
    return settings, args


def configure_logging(level: str) -> None:
    """One JSON object per line on stdout: timestamp, level, name, message, plus extras."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level"},
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI duplicate
            timestamp=True,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(QuietCutOffs())


async def _serve_until_signalled(settings: SimSettings) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully (exit status 0)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with run_simulator(settings) as running:
        logger.info(
            "AgentKit simulator listening",
            extra={"url": running.url, "agents": [spec.name for spec in settings.agents]},
        )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running.server_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point (`opscore-agentkit-sim`, `python -m opscore_testbed.agentkit_sim`)."""
    settings, args = parse_args(argv)
    configure_logging(args.log_level)
    asyncio.run(_serve_until_signalled(settings))


if __name__ == "__main__":
    main()
