"""Writing state reports into `status.reports`, one write in flight per agent.

This is the product's heartbeat path (agent -> sidecar -> Agent status -> operator), so it
is built to cost exactly one PATCH per batch in the steady state and no GET:

- Per agent, the last stored `status.reports` list is kept in memory, with the
  `status.reportSequence` it was stored under; it is read from the object only on first
  touch, after a failed write, and when another writer got there first.
- A write replaces the whole list with `merge_reports(stored, new)` through a JSON patch
  of the status subresource that first *tests* `reportSequence` and then adds one to it.
  Any number of sidecar replicas can therefore write one Agent: when another replica (or
  the operator's duplicate merge) wrote the list since we read it, the test fails, nothing
  is applied, and we read the list again, merge into it and retry. Other status fields
  are never sent and not tested, so the operator's writes cost us no retry.
- Reports for one agent are serialised: while a write is in flight, new reports queue up
  and all of them go into the next write. Each caller awaits the write holding its report
  and is answered only after it is durable (the SDK never retries, so accepting a report
  and then losing it would be silent data loss). A failed write fails every report in it.
- Writes run in a task owned by the writer, not by a request, so a client hanging up
  mid-write cannot strand the reports batched with its own.

- A report that cannot finish a task (`active`, `initializing`, with no task id or
  output: a heartbeat, in issue terms) is acknowledged as soon as it is queued and waits
  up to `linger` seconds (default 50 ms) for company. The reference agent awaits each
  report before sending the next, `active` then `idle` ~10 ms apart, so this is what lets
  one write hold both and halves the writes per step. Any other report ends the wait at
  once and is answered only once durable, so the `idle` or `error` that decides a task is
  never delayed and never lost; a heartbeat can be lost if the API server fails right
  then, which changes no decision (documented in docs/reliability.md).
- A heartbeat that repeats the normalised state of the agent's newest stored report only
  refreshes liveness (`receivedAt`), which is judged against the agent's
  `heartbeatTimeoutSeconds` (default 300 s), so it may wait longer: up to `repeat_linger`
  (default 5 s), and never more than a tenth of that timeout (`LIVENESS_SHARE`), so a
  refresh always lands long before the silence it answers would mark the agent Offline.
  An agent sending heartbeats every second then costs one write per 5 s instead of one per
  heartbeat; a heartbeat that changes the state still waits only `linger`, and any other
  report still ends every wait at once.
- That longer wait is cut by a fixed share of up to REPEAT_JITTER per agent (from a hash
  of its id), so it is somewhere in [0.5, 1] x the bound, never more. Agents that started
  reporting together (a fleet started at once, or every agent after a sidecar restart)
  would otherwise flush their refreshes in one burst every 5 s: 50 such writes at once
  cost kube-apiserver ~200 ms of CPU, and held every `idle` behind them for as long
  (measured: B4 at 400 reports/s, its p99 jumped to 170-240 ms exactly 5 s into a probe).

Ordering across replicas: each replica serialises its own writes per agent, and the
stored list is ordered by the agent's timestamps whoever wrote it, so the list two
replicas converge on is the one a single replica would have written.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from opscore_kube import AGENTS, Conflict, Invalid, NotFound, Unavailable
from opscore_logic.agent_model import MAX_REPORTS, AgentReport, AgentState
from opscore_logic.lifecycle import normalise_state
from opscore_logic.report_log import is_significant, merge_reports, report_limit, same_report
from opscore_sidecar.agent_directory import AgentDirectory, Body, KubeApi, name_of
from opscore_sidecar.metrics import REPORT_BATCH_SIZE, REPORT_WRITE_RACES, REPORT_WRITE_SECONDS

logger = logging.getLogger("opscore.sidecar.reports")


# Tries of one write when other writers keep changing the list under us; each try is
# one PATCH and one GET. Past them the batch fails (its reports are answered 503).
WRITE_TRIES = 6

# A liveness-only heartbeat waits at most this share of the agent's heartbeat timeout.
LIVENESS_SHARE = 0.1
# ... and per agent up to this share less, so that refreshes spread out (module docstring).
REPEAT_JITTER = 0.5
# The timeout assumed until the Agent has been read (the CRD's default).
DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 300.0


@dataclass(eq=False, slots=True)
class _AgentLog:
    """Per-agent writer state."""

    name: str | None = None  # the Agent object's name, known while `stored` is
    stored: list[AgentReport] | None = None  # None: read it from the object first
    sequence: int | None = None  # `status.reportSequence` that `stored` was read at
    version: str = ""  # the object's resourceVersion then (fences the first write)
    limit: int = MAX_REPORTS  # how many reports its log keeps: report_limit(its slots)
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS  # its spec's, when read
    phase: float = 0.0  # in [0, 1): how much of REPEAT_JITTER its repeats give up
    moved: bool = False  # the id now belongs to another Agent: read it before writing
    # (report, its caller's future, when it was queued: perf_counter)
    pending: list[tuple[AgentReport, asyncio.Future[bool], float]] = field(default_factory=list)
    writing: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


_LINGERING_STATES = (AgentState.ACTIVE, AgentState.INITIALIZING)


def may_linger(report: AgentReport) -> bool:
    """Whether a report can wait briefly for company (it cannot finish a task)."""
    return normalise_state(report.state) in _LINGERING_STATES and not is_significant(report)


def repeat_phase(agent_id: str) -> float:
    """A fraction in [0, 1) fixed by the agent id (the same in every replica and restart),
    spread evenly over ids."""
    return zlib.crc32(agent_id.encode()) / 2**32


def _consume(done: asyncio.Future[bool]) -> None:
    """Mark a failed write's exception as seen even when its request has gone away."""
    if not done.cancelled():
        done.exception()


def stored_reports(obj: Body) -> list[AgentReport]:
    """`status.reports` of an Agent object; entries that do not parse are skipped."""
    raw: Any = (obj.get("status") or {}).get("reports") or []
    reports: list[AgentReport] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            reports.append(AgentReport.model_validate(item))
        except ValidationError:
            logger.warning("Skipping a stored report that does not parse", extra={"item": item})
    return reports


class ReportWriter:
    """Stores reports durably, batching concurrent reports for one agent into one write."""

    def __init__(
        self,
        kube: KubeApi,
        directory: AgentDirectory,
        *,
        linger: float = 0.0,
        repeat_linger: float | None = None,
    ) -> None:
        self._kube = kube
        self._linger = linger
        # A repeated heartbeat never waits less than any other heartbeat; linger 0 turns
        # lingering off altogether (every report answered once durable).
        repeat = linger if repeat_linger is None else max(linger, repeat_linger)
        self._repeat_linger = repeat if linger > 0 else 0.0
        self._directory = directory
        self._logs: dict[str, _AgentLog] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def known_reports(self, agent_id: str) -> list[AgentReport] | None:
        """The stored list as last written or read, or None when not known in memory."""
        log = self._logs.get(agent_id)
        return None if log is None or log.stored is None else list(log.stored)

    def relocate(self, agent_id: str, name: str) -> None:
        """The Agent named `name` now holds `agent_id` (a registration created it after a
        report had created another, which the operator merges into it and deletes): the
        next write reads it first, instead of writing to the old one and getting 404. A
        write in flight finishes on the old object, whose reports the merge carries over."""
        log = self._logs.get(agent_id)
        if log is not None and log.name not in (None, name):
            log.moved = True

    async def submit(self, agent_id: str, report: AgentReport) -> bool:
        """Store `report`; returns once it is in `status.reports` (True) or was already
        there (False: an exact duplicate). Raises what the write raised."""
        log = self._logs.get(agent_id)
        if log is None:
            log = self._logs[agent_id] = _AgentLog(phase=repeat_phase(agent_id))
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_consume)
        log.pending.append((report, done, time.perf_counter()))
        lingering = self._repeat_linger > 0 and may_linger(report)
        log.wake.set()  # the writer re-reads what it waits for (or stops waiting)
        if not log.writing:
            log.writing = True
            # A fresh context: the writer's log lines must not carry the request id of
            # whichever request happened to start it.
            task = asyncio.create_task(self._drain(agent_id, log), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if lingering:
            return True  # a heartbeat: acknowledged once queued (see module docstring)
        # shield: a cancelled request (client gone) must not cancel the shared write.
        return await asyncio.shield(done)

    async def aclose(self) -> None:
        """Let writes in flight finish (called at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _drain(self, agent_id: str, log: _AgentLog) -> None:
        try:
            while log.pending:
                await self._await_company(log)
                batch, log.pending = log.pending, []
                try:
                    changed = await self._write(agent_id, log, [report for report, _, _ in batch])
                except Exception as exc:
                    log.stored = None  # unknown after a failure: re-read next time
                    logger.warning(
                        "Storing reports failed: %s",
                        exc,
                        extra={"agent_id": agent_id, "reports": len(batch)},
                    )
                    for _, done, _ in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                REPORT_BATCH_SIZE.observe(len(batch))
                written = time.perf_counter()
                for (_report, done, queued), stored in zip(batch, changed, strict=True):
                    # Measured here, not in the endpoint: a heartbeat is answered once
                    # queued, but is in status only now.
                    REPORT_WRITE_SECONDS.observe(written - queued)
                    if not done.done():
                        done.set_result(stored)
        finally:
            log.writing = False

    async def _await_company(self, log: _AgentLog) -> None:
        """While only heartbeats are pending, wait until the first of them has waited its
        linger; any other report ends the wait at once."""
        while log.pending and all(may_linger(r) for r, _, _ in log.pending):
            newest = _newest_state(log.stored)
            deadline = min(
                queued + self._linger_for(report, newest, log) for report, _, queued in log.pending
            )
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            log.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(log.wake.wait(), remaining)

    def _linger_for(self, report: AgentReport, newest: AgentState | None, log: _AgentLog) -> float:
        """How long a heartbeat may wait: longer when it repeats the stored state, but
        never more than LIVENESS_SHARE of the agent's heartbeat timeout, less the agent's
        own share of REPEAT_JITTER."""
        if newest is not None and normalise_state(report.state) is newest:
            bound = min(self._repeat_linger, LIVENESS_SHARE * log.heartbeat_timeout)
            return max(self._linger, bound * (1.0 - REPEAT_JITTER * log.phase))
        return self._linger

    async def _write(self, agent_id: str, log: _AgentLog, new: Sequence[AgentReport]) -> list[bool]:
        """One status write holding `new`; per report, whether it added anything."""
        recreated = False
        for _ in range(WRITE_TRIES):
            if log.stored is None or log.name is None or log.moved:
                log.moved = False
                self._remember(log, (await self._directory.ensure(agent_id))[0])
            name, before = log.name, log.stored
            if name is None or before is None:  # `_remember` sets both from an object
                raise RuntimeError(f"the report log of {agent_id!r} was not loaded")
            merged = merge_reports(before, new, limit=log.limit)
            novel = _novelty(before, new)
            if merged == before:
                return novel  # all duplicates (or superseded): nothing to write
            started = time.perf_counter()
            try:
                result = await self._conditional_write(name, log, merged)
            except NotFound:
                # Deleted under us: forget it and (once) recreate it, like a first contact.
                self._directory.forget(agent_id)
                log.name, log.stored = None, None
                if recreated:
                    raise
                recreated = True
                continue
            except (Conflict, Invalid) as exc:
                # Another writer changed the list since we read it (a failed `test`), or
                # the write is invalid: read again; the sequence says which it was.
                previous = log.sequence
                self._remember(log, (await self._directory.ensure(agent_id))[0])
                if isinstance(exc, Invalid) and log.sequence == previous:
                    raise
                REPORT_WRITE_RACES.inc()
                continue
            self._remember(log, result, fallback=merged)
            logger.debug(
                "Reports stored",
                extra={
                    "agent_id": agent_id,
                    "agent": name,
                    "reports": len(new),
                    "seconds": round(time.perf_counter() - started, 4),
                },
            )
            return novel
        raise Unavailable(
            409, "Conflict", f"reports of {agent_id!r} kept changing under {WRITE_TRIES} writes"
        )

    async def _conditional_write(
        self, name: str, log: _AgentLog, merged: Sequence[AgentReport]
    ) -> Body:
        """Replace the list only if nobody else wrote it since we read it."""
        wire = [report.wire() for report in merged]
        namespace = self._directory.namespace
        if log.sequence is None:
            # Never written under a sequence (a new Agent): fence on the whole object.
            return await self._kube.patch(
                AGENTS,
                namespace,
                name,
                {
                    "metadata": {"resourceVersion": log.version},
                    "status": {"reports": wire, "reportSequence": 1},
                },
                status=True,
            )
        return await self._kube.json_patch(
            AGENTS,
            namespace,
            name,
            [
                {"op": "test", "path": "/status/reportSequence", "value": log.sequence},
                {"op": "replace", "path": "/status/reports", "value": wire},
                {"op": "replace", "path": "/status/reportSequence", "value": log.sequence + 1},
            ],
            status=True,
        )

    @staticmethod
    def _remember(
        log: _AgentLog, obj: Body, *, fallback: Sequence[AgentReport] | None = None
    ) -> None:
        """Take the list, its sequence and the version from an object read or written."""
        if not obj and fallback is not None:  # a write answered without a body
            log.stored = list(fallback)
            log.sequence = 1 if log.sequence is None else log.sequence + 1
            return
        log.name = name_of(obj)
        log.stored = stored_reports(obj)
        sequence = (obj.get("status") or {}).get("reportSequence")
        log.sequence = sequence if isinstance(sequence, int) else None
        log.version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        log.limit = report_limit(_slots_of(obj))
        log.heartbeat_timeout = _heartbeat_timeout_of(obj)


def _slots_of(obj: Body) -> int:
    """The Agent's `spec.maxConcurrentTasks` (1, the default, when absent or unreadable).

    Read with the list, so a changed spec is seen at the next read (after a failed or
    raced write, or a sidecar restart); until then the log keeps the old length, which
    changes how much burst it absorbs, never what it stores."""
    value = (obj.get("spec") or {}).get("maxConcurrentTasks")
    return value if isinstance(value, int) and value >= 1 else 1


def _heartbeat_timeout_of(obj: Body) -> float:
    """The Agent's `spec.heartbeatTimeoutSeconds` (the CRD's default when absent)."""
    value = (obj.get("spec") or {}).get("heartbeatTimeoutSeconds")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_HEARTBEAT_TIMEOUT_SECONDS


def _newest_state(stored: Sequence[AgentReport] | None) -> AgentState | None:
    """The normalised state of the newest stored report (the list is kept oldest first);
    None when unknown (not read yet) or empty."""
    return normalise_state(stored[-1].state) if stored else None


def _novelty(stored: Sequence[AgentReport], new: Sequence[AgentReport]) -> list[bool]:
    """Per new report: False when it duplicates a stored one or an earlier one in `new`."""
    seen = list(stored)
    novel: list[bool] = []
    for report in new:
        fresh = not any(same_report(report, old) for old in seen)
        novel.append(fresh)
        if fresh:
            seen.append(report)
    return novel
