"""B1 (a queued backlog drains) and B2 (the highest submission rate without a backlog)."""

from __future__ import annotations

import dataclasses
import time

from opscore_operator.agent_reconciler import AGENT_STATUS_QUIET_SECONDS
from opscore_testbed.bench.apimetrics import write_counts
from opscore_testbed.bench.common import Bench, Row, writes_quiet
from opscore_testbed.bench.cpu import CpuMeter, ms_per_step, relative_cpu
from opscore_testbed.bench.profile import OperatorProfile, summarise
from opscore_testbed.bench.search import highest_passing_rate
from opscore_testbed.bench.workload import (
    CompletionWatcher,
    create_all,
    create_at_rate,
    one_step,
    three_steps,
)
from opscore_testbed.stack import OpsCoreStack

# Normal Events off (Warnings only): what B1 costs without the one outcome Event per run.
WARNINGS_ONLY = {"OPSCORE_POST_NORMAL_EVENTS": "false"}


async def b1_drain(bench: Bench, ceiling: float | None) -> list[Row]:
    """Queue N workflows at once and time the drain. Writes are Ops-Core's only (the
    operator's and the sidecar's, from the audit log), CPU is per process from /proc, both
    over the window from the first create until the API server has been quiet for longer
    than an idle agent's trailing status write takes (so a few idle seconds are in the CPU
    figures: the operator's timers, the API server's own housekeeping)."""
    rows = []
    runs: list[tuple[int, int, dict[str, str]]] = [
        (1, bench.sizes.b1_one_step, {}),
        (3, bench.sizes.b1_three_step, {}),
        (1, bench.sizes.b1_one_step, WARNINGS_ONLY),
    ]
    for steps, count, operator_env in runs:
        label = ", warnings-only events" if operator_env else ""
        ns = bench.namespace(f"b1-{steps}{'-w' if operator_env else ''}")
        total_steps = count * steps
        profile: OperatorProfile | None = None
        with bench.stack(ns, bench.sizes.b1_agents, operator_env=operator_env) as stack:
            await bench.ready_agents(ns, bench.sizes.b1_agents)
            watcher = CompletionWatcher(bench.kube, ns)
            watcher.start()
            make = one_step if steps == 1 else three_steps
            bodies = [make(f"wf-{i:05d}") for i in range(count)]
            meter = CpuMeter(stack_pids(bench, stack))
            if bench.profile and steps == 1 and not operator_env:
                assert stack.operator is not None
                profile = OperatorProfile(stack.operator.pid, bench.log_dir / f"{ns}.pyspy")
                profile.start()
            before = await write_counts(bench.kube)
            mark = bench.audit.mark()
            meter.start()
            started = time.time()
            created = await create_all(bench.kube, ns, bodies)
            submitted = time.time()
            ok = await watcher.wait_for(set(created), within=600)
            finished_at = max(t for _, t in watcher.finished.values()) if ok else time.time()
            # Count the trailing writes too (an idle agent's last routine status change).
            await writes_quiet(bench.kube, quiet=AGENT_STATUS_QUIET_SECONDS + 2, within=60)
            cpu = meter.stop()
            writes = await write_counts(bench.kube) - before
            by_writer = bench.audit.writes_since(mark)
            if profile is not None:
                profile.stop()
            await watcher.stop()
        drain = finished_at - started
        succeeded = sum(1 for p, _ in watcher.finished.values() if p == "Succeeded")
        row: Row = {
            "scenario": f"B1 drain {count}x{steps}-step{label}",
            "problems": watcher.problems(set(created), within=600),
            "workflows": count,
            "succeeded": succeeded,
            "agents": bench.sizes.b1_agents,
            "submit_s": round(submitted - started, 1),
            "drain_s": round(drain, 1),
            "workflows_per_min": round(count / drain * 60),
            "steps_per_s": round(total_steps / drain, 1),
            "api_writes_per_step": round(by_writer.opscore_total / total_steps, 2),
            "operator_writes_per_step": round(by_writer.writer_total("operator") / total_steps, 2),
            "sidecar_writes_per_step": round(by_writer.writer_total("sidecar") / total_steps, 2),
            "bench_writes": by_writer.writer_total("bench"),
            "control_plane_writes": by_writer.writer_total("control-plane"),
            "writes_by_writer": by_writer.table(),
            # Cross-check: the API server's own counters, every writer together.
            "api_writes_by_resource": dict(writes.by_resource),
            "writes_per_s": round(writes.total / drain, 1),
            "writes_vs_b0_ceiling": round(writes.total / drain / ceiling, 2) if ceiling else None,
            **ms_per_step(cpu, total_steps),
            **relative_cpu(cpu),
        }
        if profile is not None:
            summary = summarise(
                profile.path.read_text(), cpu_ms_per_step=row["cpu_operator_ms_per_step"]
            )
            row["profile_samples"] = summary.samples
            row["profile_top"] = dataclasses.asdict(summary)
        rows.append(row)
        if operator_env:
            continue  # the chart shows the default configuration
        bench.series[f"b1_{steps}_completions"] = sorted(
            t - started for _, t in watcher.finished.values()
        )
    return rows


def control_plane_pids(bench: Bench) -> dict[str, int]:
    """kube-apiserver's and etcd's pids, by their names as figures (`kube_apiserver`)."""
    return {
        p.name.replace("-", "_"): p.pid
        for p in bench.cp.processes
        if p.name in ("kube-apiserver", "etcd")
    }


def stack_pids(bench: Bench, stack: OpsCoreStack) -> dict[str, int]:
    """The processes a step costs CPU in: Ops-Core's two, the control plane's two that
    serve it, and the simulator (whose agents answer instantly)."""
    pids = control_plane_pids(bench)
    for name, process in (
        ("operator", stack.operator),
        ("sidecar", stack.sidecar),
        ("agentkit_sim", stack.sim),
    ):
        if process is not None:
            pids[name] = process.pid
    return {name.replace("-", "_"): pid for name, pid in pids.items()}


# -- B2 ------------------------------------------------------------------------------------


#: How long B2 waits, after its last step, for the backlog it built to drain.
B2_DRAIN_S = 300.0


async def b2_rate(bench: Bench) -> Row:
    """The highest submission rate with no backlog, searched by bisection (`search.py`).
    A probe submits at one rate for the window and passes when everything it submitted
    finished within 3 s of its end; its backlog drains before the next probe starts, so
    one failed probe does not fail the next."""
    ns = bench.namespace("b2")
    steps: list[dict[str, float]] = []
    everything: set[str] = set()
    with bench.stack(ns, bench.sizes.b1_agents):
        await bench.ready_agents(ns, bench.sizes.b1_agents)
        watcher = CompletionWatcher(bench.kube, ns)
        watcher.start()

        async def probe(rate: float) -> bool:
            count = max(1, int(rate * bench.sizes.b2_seconds))
            bodies = [one_step(f"p{len(steps)}-{i:05d}") for i in range(count)]
            created = await create_at_rate(bench.kube, ns, bodies, rate)
            everything.update(created)
            ok = await watcher.wait_for(set(created), within=2.0 + 1.0)
            backlog = len(set(created) - watcher.finished.keys())
            steps.append({"rate_per_s": rate, "backlog": backlog})
            await watcher.wait_for(everything, within=B2_DRAIN_S)
            return ok

        low, high, resolution = bench.sizes.b2_search
        found = await highest_passing_rate(probe, low=low, high=high, resolution=resolution)
        # The backlog is the measurement, but every workflow must still end Succeeded.
        await watcher.wait_for(everything, within=B2_DRAIN_S)
        await watcher.stop()
    bench.series["b2_steps"] = steps
    return {
        "scenario": "B2 increasing rate",
        "problems": watcher.problems(everything, within=B2_DRAIN_S)
        + ([] if found.best else [f"no backlog-free rate: even {low}/s built a backlog"]),
        "max_sustained_workflows_per_min": round((found.best or 0.0) * 60),
        "search_capped": found.capped,
        "search_resolution_per_min": round(resolution * 60),
        "steps": steps,
        "window_s": bench.sizes.b2_seconds,
    }
