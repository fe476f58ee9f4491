"""F9: each fault point in a crash window (`opscore_faultpoints`), hit deterministically.

A random SIGKILL (F1) lands in the window between the status write and the POST only by
chance; here the process is told to die exactly there, on the N-th pass, under the same
mixed load as F1-F8. The test bed sees it exit with the fault point's own code, starts it
again without the fault point (as the kubelet restarts a crashed container), and the
batch must still finish: nothing lost, nothing delivered twice, and for each window the
outcome docs/reliability.md states for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opscore_faultpoints import ENV, FAULT_EXIT_CODE
from opscore_testbed.chaos.batch import Batch
from opscore_testbed.chaos.fleet import standard_fleet
from opscore_testbed.chaos.harness import Chaos, Run
from opscore_testbed.chaos.process_faults import LOSSY
from opscore_testbed.chaos.report import promise
from opscore_testbed.chaos.scenario import Fault, Row, make_row, under_fault, window
from opscore_testbed.chaos.tally import predicted_duplicates
from opscore_testbed.chaos.workload import mixed_batch
from opscore_testbed.processes import ManagedProcess

#: The pass of the point that fires: late enough that work is flowing, early enough that
#: even the short batch passes it several times over. The sidecar's point is passed once
#: by every agent's first report while the fleet registers, before any work.
ON_PASS = 6
SIDECAR_ON_PASS = len(standard_fleet()) + 2 * ON_PASS  # two reports per task


@dataclass(frozen=True)
class Window:
    """One fault point, the process it is compiled into, and what the row promises."""

    row: str
    point: str
    process: str  # "operator" or "sidecar"
    promises: tuple[tuple[str, Any, str], ...]
    action: str = "crash"

    @property
    def on_pass(self) -> int:
        return ON_PASS if self.process == "operator" else SIDECAR_ON_PASS


WINDOWS = (
    # The task id is in the status, the POST never left: the step waits for its attempt's
    # timeout, then runs again under a new id, never twice under one. Every dispatch the
    # dying process had written but not yet sent is in the same window (under load,
    # several at once), so at least the one that fired never arrived.
    Window(
        "F9a",
        "operator.dispatch.before_post",
        "operator",
        (promise("undelivered_attempts", 1, at_least=True), promise("redispatched_steps", 0)),
    ),
    # AgentKit took the task, the operator died before looking at the answer: the new
    # operator finds the step Running with that id and waits for the agent's report; it
    # never sends it again. (Dispatches the dying process had written but not yet sent are
    # in F9a's window: they may be undelivered here too, and end by their timeout.)
    Window(
        "F9b",
        "operator.dispatch.after_accepted",
        "operator",
        (promise("redispatched_steps", 0),),
    ),
    # The report is stored, the agent never hears so (and the SDK does not retry): nothing
    # is lost by it. Reports sent while the sidecar restarts are (as in F2).
    Window("F9c", "sidecar.report.after_write", "sidecar", (promise("undelivered_attempts", 0),)),
    # AgentKit took the task but the operator sees a failure that may have taken effect
    # (what a timeout or a cut-off answer looks like once the client's own tries are
    # spent). The step goes back to the queue and is sent again under the *same* task
    # id: the agent gets that task id twice (exactly once more, and recognisably), never
    # the step under a second id.
    Window(
        "F9d",
        "operator.dispatch.after_accepted",
        "operator",
        (
            promise("redispatched_steps", 0),
            promise("duplicated", 1),
            promise("duplicated_predicted", 1, at_least=True),
        ),
        action="fail",
    ),
)


def _process(run: Run, name: str) -> ManagedProcess:
    process = run.stack.operator if name == "operator" else run.stack.sidecar
    assert process is not None
    return process


async def _crashed(process: ManagedProcess, within: float) -> int | None:
    """The exit code once `process` has exited, None if it still runs after `within`."""
    deadline = time.monotonic() + within
    while process.is_running():
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.05)
    return process.returncode


async def _logged(log: Path, marker: str, within: float) -> bool:
    """True once `marker` appears in the log file at `log` (within `within` seconds)."""

    def seen() -> bool:
        return log.exists() and marker in log.read_text(errors="replace")

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await asyncio.to_thread(seen):
            return True
        await asyncio.sleep(0.2)
    return False


#: What the operator logs (with the task id, in its JSON `task_id` field) when it will
#: send a dispatch again under the same id.
SENT_AGAIN = "AgentKit may have taken it"


def _sent_again_under_the_same_id(log: Path) -> set[str]:
    """The task ids the operator said it would send again under the same id."""
    if not log.exists():
        return set()
    ids = set()
    for line in log.read_text(errors="replace").splitlines():
        if SENT_AGAIN in line:
            with contextlib.suppress(ValueError, AttributeError):
                ids.add(str(json.loads(line)["task_id"]))
    return ids


async def f9_one(ch: Chaos, spec: Window) -> Row:
    planned = mixed_batch(spec.row.lower(), ch.sizes.workflows, ch.sizes.policy())
    env = {ENV: f"{spec.point}={spec.action}@{spec.on_pass}"}
    exit_codes: list[int | None] = []

    async def inject(run: Run, batch: Batch, fault: Fault) -> None:
        if spec.action == "fail":  # the process lives on: the point's log line says it fired
            marker = f"fault point {spec.point}: fail"
            log = run.stack.log_dir / f"{spec.process}.log"
            fired = await _logged(log, marker, window(ch) + 30.0)
            fault.begin()
            fault.end()
            exit_codes.append(FAULT_EXIT_CODE if fired else None)
            return
        code = await _crashed(_process(run, spec.process), window(ch) + 30.0)
        fault.begin()
        exit_codes.append(code)
        if code is None:
            return  # never fired: the row says so (fault_point_fired=False)
        run.stack.options.operator_env.pop(ENV, None)
        run.stack.options.sidecar_env.pop(ENV, None)
        restart = (
            run.stack.start_operator if spec.process == "operator" else run.stack.start_sidecar
        )
        await asyncio.to_thread(restart)
        fault.end()

    on_operator = env if spec.process == "operator" else None
    on_sidecar = env if spec.process == "sidecar" else None
    async with ch.running(spec.row, operator_env=on_operator, sidecar_env=on_sidecar) as run:
        outcome = await under_fault(ch, run, planned, inject, failure_reasons=LOSSY)
        operator_log = run.stack.log_dir / "operator.log"
        resent = await asyncio.to_thread(_sent_again_under_the_same_id, operator_log)
    fired = exit_codes == [FAULT_EXIT_CODE]
    if not outcome.fault.ended:
        outcome.fault.ended = outcome.fault.started
    return make_row(
        spec.row,
        f"{spec.process} {spec.action} at {spec.point} (pass {spec.on_pass})"
        + (", restarted" if spec.action == "crash" else ""),
        outcome,
        fault_point_fired=fired,
        exit_code=exit_codes[0] if exit_codes and spec.action == "crash" else None,
        duplicated_predicted=predicted_duplicates(outcome.tally.duplicated, resent),
        promises=(promise("fault_point_fired", True), *spec.promises),
    )


async def f9_fault_points(ch: Chaos) -> list[Row]:
    """One row per window; a window whose run breaks is a row with its error, and the
    others still run."""
    rows = []
    for spec in WINDOWS:
        try:
            rows.append(await f9_one(ch, spec))
        except Exception as exc:  # a broken run is a finding, not the end of the scenario
            error = f"{type(exc).__name__}: {exc}"
            rows.append({"scenario": spec.row, "error": error, "problems": [error]})
    return rows
