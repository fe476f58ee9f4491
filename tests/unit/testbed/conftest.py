"""Fixtures of the AgentKit simulator's tests: the simulator for real (uvicorn on a free port)
next to a recording stand-in Ops-Core, or AgentKit's API in-process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sim_harness import OpsCoreRecorder, Sim, sim_settings

from opscore_testbed.agentkit_sim import (
    SimSettings,
    create_app,
    run_simulator,
)
from opscore_testbed.asgi_serving import bind_socket, serve_app


@pytest.fixture
async def opscore() -> AsyncIterator[OpsCoreRecorder]:
    recorder = OpsCoreRecorder()
    sock = bind_socket("127.0.0.1", 0)
    recorder.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with serve_app(recorder.build_app(), sock):
        yield recorder


@pytest.fixture
def start_sim(
    opscore: OpsCoreRecorder,
) -> Callable[..., contextlib.AbstractAsyncContextManager[Sim]]:
    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Sim]:
        async with (
            run_simulator(sim_settings(opscore, **overrides)) as running,
            httpx.AsyncClient(base_url=running.url) as client,
        ):
            yield Sim(running, client)

    return start


@pytest.fixture
async def sim(
    start_sim: Callable[..., contextlib.AbstractAsyncContextManager[Sim]],
) -> AsyncIterator[Sim]:
    async with start_sim() as started:
        yield started


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    """AgentKit's API in-process (no webhook, nothing listening): for request/answer cases."""
    app = create_app(SimSettings(opscore_url="http://127.0.0.1:9"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agentkit") as client:
        yield client
    await app.state.simulator.aclose()
