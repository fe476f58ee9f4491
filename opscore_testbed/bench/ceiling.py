"""B0: the API server's own ceiling for Agent status PATCHes, by number of client processes.

One Python process cannot find the ceiling: its event loop saturates first (issue 20 found
the old 64-coroutine B0 client-bound). So each level starts N OS processes, each with its
own event loop, connection pool and `CONCURRENCY_PER_PROCESS` patches in flight, and reads
the rate the API server itself counted (`apiserver_request_total`, PATCH on agents/status,
2xx only) over the window. Levels double until two in a row fail to rise by more than
`RISE_THRESHOLD`; the ceiling is the best level. The clients share the machine's cores with
kube-apiserver and etcd, as Ops-Core's own processes do in B1 and B4 (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import threading
import time
from datetime import UTC, datetime
from queue import Empty

from opscore_kube import AGENTS, KubeApiError, KubeClient, load_connection
from opscore_testbed.bench.apimetrics import served_requests
from opscore_testbed.bench.common import Bench, Row

CONCURRENCY_PER_PROCESS = 16
#: A level must beat the best so far by this fraction to count as still rising.
RISE_THRESHOLD = 0.05
#: Stop after this many levels in a row fail to rise: one noisy level on a shared machine
#: must not end the search early.
FLAT_LEVELS_TO_STOP = 2
#: Objects patched: enough that concurrent patches rarely hit the same one.
OBJECTS = 64
#: How long a level waits for its processes to connect and report back, beyond the window.
PROCESS_SLACK_S = 60.0


def _patch_worker(
    kubeconfig: str,
    namespace: str,
    names: list[str],
    window_s: float,
    go: multiprocessing.synchronize.Barrier,
    results: multiprocessing.Queue[tuple[int, int, float]],
) -> None:
    """One client process: connect, wait at the barrier until every client and the bench
    are ready, patch for `window_s`, and put (patches that succeeded, that failed, seconds
    from the barrier to the last answer) on `results`."""
    results.put(asyncio.run(_patch_for(kubeconfig, namespace, names, window_s, go)))


async def _patch_for(
    kubeconfig: str,
    namespace: str,
    names: list[str],
    window_s: float,
    go: multiprocessing.synchronize.Barrier,
) -> tuple[int, int, float]:
    kube = KubeClient(load_connection(kubeconfig), qps=1e6, burst=1_000_000, max_retries=0)
    ok = failed = 0
    try:
        await kube.get(AGENTS, namespace, names[0])  # the connection is up before the window
        await asyncio.get_running_loop().run_in_executor(None, go.wait, PROCESS_SLACK_S)
        started = time.monotonic()
        stop_at = started + window_s

        async def patcher(offset: int) -> None:
            nonlocal ok, failed
            i = offset
            while time.monotonic() < stop_at:
                i += 1
                seen = datetime.now(UTC).isoformat()
                try:
                    await kube.patch(
                        AGENTS,
                        namespace,
                        names[i % len(names)],
                        {"status": {"lastSeen": seen}},
                        status=True,
                    )
                    ok += 1
                except KubeApiError:
                    failed += 1

        await asyncio.gather(*(patcher(k) for k in range(CONCURRENCY_PER_PROCESS)))
        elapsed = time.monotonic() - started
    finally:
        await kube.aclose()
    return ok, failed, elapsed


async def _one_level(bench: Bench, namespace: str, names: list[str], processes: int) -> Row:
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Barrier(processes + 1)
    results: multiprocessing.Queue[tuple[int, int, float]] = ctx.Queue()
    window = bench.sizes.b0_seconds
    workers = [
        ctx.Process(
            target=_patch_worker,
            args=(str(bench.cp.kubeconfig), namespace, names, window, go, results),
            name=f"b0-client-{k}",
        )
        for k in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        # Spawned interpreters take a second or two to import and connect: the window
        # opens when the last one is ready (a dead one breaks the barrier: an error).
        before = await served_requests(bench.kube, verb="PATCH", resource="agents/status")
        try:
            await asyncio.get_running_loop().run_in_executor(None, go.wait, PROCESS_SLACK_S)
        except threading.BrokenBarrierError:
            codes = [w.exitcode for w in workers]
            raise RuntimeError(
                f"B0 client processes were not all ready within {PROCESS_SLACK_S:.0f}s"
                f" (exit codes {codes}, None: still running)"
            ) from None
        # Every PATCH on these Agents falls between the two reads (the clients patch only
        # between the barrier and their results), so no read has to be timed under load:
        # the window is the clients' own, from the barrier to their last answer.
        totals = [await _result(results, within=window + PROCESS_SLACK_S) for _ in workers]
        after = await served_requests(bench.kube, verb="PATCH", resource="agents/status")
        elapsed = max(t[2] for t in totals)
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()  # by its own pid: Process.terminate signals worker.pid
                worker.join(timeout=5)
    served = after - before
    return {
        "processes": processes,
        "in_flight": processes * CONCURRENCY_PER_PROCESS,
        "server_patches_per_s": round(served / elapsed, 1),
        "client_ok_per_s": round(sum(t[0] for t in totals) / elapsed, 1),
        "client_errors": sum(t[1] for t in totals),
        "window_s": round(elapsed, 1),
    }


async def _result(
    results: multiprocessing.Queue[tuple[int, int, float]], *, within: float
) -> tuple[int, int, float]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            return results.get_nowait()
        except Empty:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"a B0 client process did not report within {within:.0f}s")


async def b0_ceiling(bench: Bench) -> Row:
    """Agent status PATCHes/s the API server served, by client processes, and the best."""
    namespace = bench.namespace("b0")
    names = [f"ceiling-{i:03d}" for i in range(OBJECTS)]
    for name in names:
        body = {
            "apiVersion": AGENTS.api_version,
            "kind": "Agent",
            "metadata": {"name": name},
            "spec": {"capabilities": ["ceiling"], "agentName": name},
        }
        await bench.kube.create(AGENTS, namespace, body)
    levels: list[Row] = []
    best: Row | None = None
    flat = 0  # levels in a row that did not beat the best by RISE_THRESHOLD
    processes = 1
    while processes <= bench.sizes.b0_max_processes and flat < FLAT_LEVELS_TO_STOP:
        level = await _one_level(bench, namespace, names, processes)
        levels.append(level)
        print(f"    B0 {processes} process(es): {level}", flush=True)
        rate = level["server_patches_per_s"]
        if best is None or rate > best["server_patches_per_s"] * (1 + RISE_THRESHOLD):
            flat = 0
        else:
            flat += 1
        if best is None or rate > best["server_patches_per_s"]:
            best = level
        processes *= 2
    assert best is not None
    return {
        "scenario": "B0 ceiling",
        "problems": [] if best["server_patches_per_s"] > 0 else ["the API server served no PATCH"],
        "status_patches_per_s": best["server_patches_per_s"],
        "at_processes": best["processes"],
        "counted_by": "apiserver_request_total PATCH agents/status 2xx",
        "levels": levels,
    }
