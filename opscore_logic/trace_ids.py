"""The trace and span ids of a workflow run, derived from its uid and its task ids.

A run's spans are emitted by different processes at different times: the operator that
dispatched a step may be SIGKILLed before the step ends, and the one that sees the end
(a restarted process, or the other replica after a leader change) keeps no memory of it.
So no id is ever remembered: each is computed from what the Workflow's status already
holds. The trace id is the run's uid (a UUID is 128 bits, as a W3C trace id is), the run's
own span id and each attempt's span id are hashes of the uid (and retry round) and of the
attempt's task id.
Anyone who knows the uid (the CLI, the dashboard, the sidecar reading a task id an agent
reported) finds the same trace. Pure computation, no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# W3C Trace Context: all-zero ids are invalid.
_TRACE_ID_BITS = 128
_SPAN_ID_BITS = 64
_HEX_DIGITS = frozenset("0123456789abcdef")


def trace_id_for_run(uid: str) -> int:
    """The run's trace id: the uid's 128 bits when it is a UUID (as Kubernetes uids are),
    else (a uid from a fake API server, say) the first 128 bits of its SHA-256."""
    digits = uid.replace("-", "").lower()
    if len(digits) == _TRACE_ID_BITS // 4 and set(digits) <= _HEX_DIGITS and int(digits, 16):
        return int(digits, 16)
    return _hashed(f"trace:{uid}", _TRACE_ID_BITS)


def run_span_id(uid: str, retry_generation: int = 0) -> int:
    """The span id of the run's root span (`invoke_workflow`): every attempt span's parent.

    A run retried from its failed steps (`spec.retryGeneration` + 1) ends again: each round
    is its own `invoke_workflow` span in the run's one trace, so two ends never send two
    spans with one id. A round's attempts carry its number in their task ids."""
    suffix = f":{retry_generation}" if retry_generation else ""
    return _hashed(f"run:{uid}{suffix}", _SPAN_ID_BITS)


def attempt_span_id(task_id: str) -> int:
    """The span id of one step attempt (`invoke_agent`), from its task id. An attempt sent
    again under the same task id (AgentKit's answer was lost) is the same attempt."""
    return _hashed(f"attempt:{task_id}", _SPAN_ID_BITS)


def trace_id_hex(uid: str) -> str:
    """The trace id as the 32 lower-case hex digits trace backends show and search by."""
    return f"{trace_id_for_run(uid):032x}"


def traceparent(trace_id: int, span_id: int, *, sampled: bool = True) -> str:
    """A W3C `traceparent` value (version 00) naming `span_id` in `trace_id`."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


@dataclass(frozen=True, slots=True)
class TaskRef:
    """What an `opscore_task_id` (`{uid}:{step}:{generation}:{attempt}`) says."""

    uid: str
    step: str
    generation: int
    attempt: int


def parse_task_id(task_id: str) -> TaskRef | None:
    """The parts of a task id Ops-Core made, or None for anything else (an agent may
    report any string): the sidecar uses it to place a report in its run's trace."""
    parts = task_id.split(":")
    if len(parts) != 4 or not all(parts) or not (parts[2].isdigit() and parts[3].isdigit()):
        return None
    return TaskRef(uid=parts[0], step=parts[1], generation=int(parts[2]), attempt=int(parts[3]))


def _hashed(text: str, bits: int) -> int:
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[: bits // 8], "big")
    return value or 1  # all zeros is invalid; a chance of 2**-64, but it costs nothing
