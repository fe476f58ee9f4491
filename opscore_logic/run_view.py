"""A Workflow as people look at it: its steps in dependency order, each with what happened.

The kubectl plugin (`opscore_cli`) and the sidecar's dashboard both show a run as a graph
of steps with phases and timings. The facts are split over three places (the steps and
their `dependsOn` in `spec.steps` or in the referenced WorkflowTemplate, what happened in
`status.steps`), and "no `dependsOn`" means "after the previous step", so reading them
twice would mean two chances to get the graph wrong. Both read them through `step_rows`,
which uses the engine's own `graph` functions.

It works on the raw JSON objects (as the API returns them), not on validated models: a
viewer must show whatever is stored, also a run whose template has since changed or gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opscore_logic.base import parse_time
from opscore_logic.graph import dependencies, topological_order
from opscore_logic.workflow_model import Step

PENDING = "Pending"


@dataclass(frozen=True, slots=True)
class StepRow:
    """One step: its effective dependencies and its status (Pending before it has one)."""

    name: str
    depends_on: tuple[str, ...]
    phase: str = PENDING
    agent: str | None = None
    attempt: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    message: str | None = None
    usage: Mapping[str, Any] | None = None  # `status.steps[].usage` as stored

    def tokens(self) -> int | None:
        """Total tokens its ended attempts reported (None: none reported usage)."""
        return usage_tokens(self.usage)

    def cost(self) -> str | None:
        """Its cost per currency, e.g. `0.0042 USD` (None: no cost reported)."""
        return usage_cost(self.usage)

    def duration_seconds(self, now: datetime) -> float | None:
        """From the first dispatch to the end, or to `now` while it is still going."""
        if self.started_at is None:
            return None
        end = self.finished_at or now
        return max(0.0, (end - self.started_at).total_seconds())


def usage_tokens(usage: Mapping[str, Any] | None) -> int | None:
    """`totalTokens` of a stored usage object (a run's or a step's), None when absent."""
    value = (usage or {}).get("totalTokens")
    return value if isinstance(value, int) else None


def usage_cost(usage: Mapping[str, Any] | None) -> str | None:
    """The stored cost per currency as text (`0.12 USD, 1.5 EUR`), None when absent."""
    costs = (usage or {}).get("cost")
    if not isinstance(costs, Mapping) or not costs:
        return None
    return ", ".join(f"{value:g} {currency}" for currency, value in sorted(costs.items()))


def template_name(workflow: Mapping[str, Any]) -> str | None:
    """The WorkflowTemplate whose steps this run uses, if it uses one."""
    ref = (workflow.get("spec") or {}).get("templateRef") or {}
    name = ref.get("name")
    return str(name) if name else None


def step_rows(
    workflow: Mapping[str, Any], template: Mapping[str, Any] | None = None
) -> list[StepRow]:
    """The run's steps in topological order (list order among equals), with their status.

    `template`: the WorkflowTemplate object when the run has a `templateRef`. Steps known
    only from the status (the template is gone) come last, without dependencies.
    """
    spec = workflow.get("spec") or {}
    raw_steps = spec.get("steps")
    if raw_steps is None and template is not None:
        raw_steps = (template.get("spec") or {}).get("steps")
    steps = [_graph_step(s) for s in raw_steps or [] if isinstance(s, Mapping) and s.get("name")]
    deps = dependencies(steps)
    status = {
        str(s["name"]): s
        for s in (workflow.get("status") or {}).get("steps") or []
        if isinstance(s, Mapping) and s.get("name")
    }
    rows = [_row(step.name, deps[step.name], status.get(step.name)) for step in _ordered(steps)]
    known = {row.name for row in rows}
    rows += [_row(name, [], entry) for name, entry in status.items() if name not in known]
    return rows


def _graph_step(raw: Mapping[str, Any]) -> Step:
    """Just what the graph functions read (name, dependsOn), without validating the rest."""
    depends = raw.get("dependsOn")
    return Step.model_construct(
        name=str(raw["name"]),
        depends_on=[str(d) for d in depends] if isinstance(depends, list) else None,
    )


def _ordered(steps: Sequence[Step]) -> list[Step]:
    return topological_order(steps) if len({s.name for s in steps}) == len(steps) else list(steps)


def _row(name: str, deps: Sequence[str], entry: Mapping[str, Any] | None) -> StepRow:
    if entry is None:
        return StepRow(name=name, depends_on=tuple(deps))
    return StepRow(
        name=name,
        depends_on=tuple(deps),
        phase=str(entry.get("phase") or PENDING),
        agent=_text(entry.get("agent")),
        attempt=int(entry.get("attempt") or 0),
        started_at=parse_time(entry.get("startedAt")),
        finished_at=parse_time(entry.get("finishedAt")),
        reason=_text(entry.get("reason")),
        message=_text(entry.get("message")),
        usage=entry["usage"] if isinstance(entry.get("usage"), Mapping) else None,
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
