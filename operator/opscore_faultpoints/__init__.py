"""Named fault points in Ops-Core's crash windows, like etcd's gofail: inert unless the
test bed enables them, so the fault suite can hit a window deterministically instead of
hoping a random kill lands in it.

Enable with `OPSCORE_FAULTPOINTS=name=action[@N],...` in the process's environment:

- `crash`: the process dies at once (`os._exit(FAULT_EXIT_CODE)`: no cleanup, no flush, as
  a SIGKILL or an OOM kill would leave it);
- `hang`: the whole process stops (the event loop's thread blocks), as a stalled node or
  SIGSTOP would leave it, until something kills it;
- `fail`: this call fails (`FaultInjected`); the call site turns it into the failure a
  real one would be (the caller decides what "fail" means there, see `POINTS`).

`@N` fires on the N-th pass through the point only (1-based; default: every pass), so a
run can let a few tasks through first. An unknown name or action is refused when the
process starts (`ValueError`), not ignored: a misspelt point would make a test prove
nothing.

Cost when off: the variable is read once, at import; `hit` is then a function that
returns at once (no lookup, no lock), so production pays one call per pass.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

logger = logging.getLogger("opscore.faultpoints")

ENV = "OPSCORE_FAULTPOINTS"
#: What a crashed process exits with (distinct from a signal's, so a log says why).
FAULT_EXIT_CODE = 86
ACTIONS = ("crash", "hang", "fail")

#: Every point compiled in, and what `fail` means there.
POINTS: Mapping[str, str] = {
    "operator.dispatch.before_post": (
        "the operator wrote the step's Running status with its task id, and the POST to "
        "AgentKit has not left; fail: the POST fails as if AgentKit were unreachable"
    ),
    "operator.dispatch.after_accepted": (
        "AgentKit answered 202 (the task is scheduled), before the operator does anything "
        "with the answer; fail: the operator sees a failed dispatch although AgentKit took it"
    ),
    "sidecar.report.after_write": (
        "the sidecar stored an agent's report in the Agent's status, before answering; "
        "fail: the agent gets a 500 although the report is stored"
    ),
}


class FaultInjected(RuntimeError):
    """A fault point enabled with `fail` was passed."""


@dataclass
class _Point:
    action: str
    on_pass: int | None  # None: every pass
    passes: int = 0


def parse(text: str) -> dict[str, _Point]:
    """`name=action[@N],...` -> the enabled points; ValueError names what is wrong."""
    points: dict[str, _Point] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, rest = item.partition("=")
        action, at, count = rest.partition("@")
        if not sep or name not in POINTS:
            raise ValueError(f"{ENV}: unknown fault point {name!r}; known: {sorted(POINTS)}")
        if action not in ACTIONS:
            raise ValueError(f"{ENV}: {name}: action {action!r} is not one of {ACTIONS}")
        if at and not (count.isdigit() and int(count) >= 1):
            raise ValueError(f"{ENV}: {name}: '@{count}' is not a pass number >= 1")
        points[name] = _Point(action, int(count) if at else None)
    return points


_ENABLED = parse(os.environ.get(ENV, ""))
if _ENABLED:  # on stderr at once: logging may not be set up yet, and nobody should miss it
    print(f"{ENV}: fault points enabled: {os.environ[ENV]}", file=sys.stderr, flush=True)


def _off(name: str) -> None:
    """`hit` when no fault point is enabled: nothing to do."""


def _on(name: str) -> None:
    point = _ENABLED.get(name)
    if point is None:
        return
    point.passes += 1
    if point.on_pass is not None and point.passes != point.on_pass:
        return
    message = f"fault point {name}: {point.action} (pass {point.passes})"
    if point.action == "fail":
        logger.warning(message)
        raise FaultInjected(message)
    # Said on stderr directly: a logging handler may buffer, and the process is going.
    print(message, file=sys.stderr, flush=True)
    if point.action == "crash":
        os._exit(FAULT_EXIT_CODE)
    while True:  # hang: the whole process stops until it is killed
        time.sleep(3600)


#: Pass through the fault point `name` (one of `POINTS`).
hit = _on if _ENABLED else _off


def enabled() -> dict[str, str]:
    """The points enabled in this process and their actions (for a start-up log line)."""
    return {name: point.action for name, point in _ENABLED.items()}
