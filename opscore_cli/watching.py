"""`kubectl opscore watch`: the `get` view, kept current until the run finishes.

Polling, not the watch API: durations of running steps change every second even when the
object does not, so the screen is redrawn on a timer anyway, and one GET per interval is
as cheap as a watch for one object and simpler to get right across reconnects.

On a terminal the screen is redrawn in place. Elsewhere (a pipe, a CI log) a new frame is
printed only when something a reader cares about changed (a phase, an attempt, a
message), not every second because a duration ticked. The exit code is the run's
outcome: 0 when it Succeeded, 1 when it Failed or was Cancelled, so scripts can
`kubectl opscore watch x && deploy`. A Failed run with a retry requested but not yet
picked up is not finished: `kubectl opscore retry x && kubectl opscore watch x` follows
the retry instead of reporting the failure it replaces.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from opscore_cli.cluster import Body, Cluster
from opscore_cli.commands import terminal_width
from opscore_cli.style import style_for
from opscore_cli.tree import pending_verbs, render_workflow
from opscore_logic.run_view import StepRow, step_rows, template_name

FINISHED = ("Succeeded", "Failed", "Cancelled")
HOME, CLEAR_SCREEN, CLEAR_LINE, CLEAR_BELOW = "\x1b[H", "\x1b[2J", "\x1b[K", "\x1b[J"


def redraw(text: str) -> str:
    """The frame over the previous one in place: home, each line then clear its rest, clear
    what is below. No full-screen clear, so the terminal does not flicker every second."""
    return HOME + text.replace("\n", CLEAR_LINE + "\n") + CLEAR_BELOW


def signature(workflow: Body, rows: list[StepRow]) -> tuple[Any, ...]:
    """What a new non-terminal frame is printed for (durations excluded)."""
    status = workflow.get("status") or {}
    spec = workflow.get("spec") or {}
    return (
        status.get("phase"),
        status.get("progress"),
        status.get("message"),
        spec.get("suspend"),
        spec.get("cancel"),
        spec.get("retryGeneration"),
        tuple((r.name, r.phase, r.agent, r.attempt, r.message) for r in rows),
    )


def watch(
    cluster: Cluster,
    name: str,
    *,
    interval: float = 1.0,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Follow workflow `name` until it finishes; returns 0 if it Succeeded, else 1."""
    out = out or sys.stdout
    style = style_for(out)
    live = _isatty(out)
    last: tuple[Any, ...] | None = None  # what the latest frame showed
    template: Body | None = None
    while True:
        workflow = cluster.workflow(name)
        wanted = template_name(workflow)
        if wanted and (template is None or template["metadata"]["name"] != wanted):
            template = cluster.template(wanted)  # once: a run's steps never change
        rows = step_rows(workflow, template)
        phase = (workflow.get("status") or {}).get("phase")
        text = render_workflow(workflow, rows, datetime.now(UTC), style, terminal_width(out))
        seen = signature(workflow, rows)
        if live:
            out.write((CLEAR_SCREEN if last is None else "") + redraw(text))
        elif seen != last:
            out.write(("\n" if last is not None else "") + text)
        last = seen
        out.flush()
        if phase in FINISHED and "retry" not in pending_verbs(workflow):
            return 0 if phase == "Succeeded" else 1
        sleep(interval)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
