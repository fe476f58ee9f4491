"""The workflows a scenario runs: a deterministic mix of DAG shapes, each with the outcome
it must reach.

Shapes (the issue's "mixed DAGs"): one step; a three-step chain; a fan-out/fan-in (one
step, three in parallel, one joining them, the join needing two capabilities at once); and
a few *doomed* one-step workflows routed to an agent that always fails, which must end
`Failed` with the reason saying so. Every step carries the scenario's timeout and retry
policy: that is how a step whose outcome report was lost (or whose dispatch never left a
killed operator) still finishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opscore_kube import WORKFLOWS

#: Capabilities of the worker agents (each worker offers two of the three).
CAPABILITIES = ("alpha", "beta", "gamma")
#: Only the doomer offers it, and it fails every task.
DOOMED = "doomed"
SUCCEEDED = "Succeeded"
FAILED = "Failed"

Body = dict[str, Any]


@dataclass(frozen=True)
class StepPolicy:
    """Timeout and retries given to every step of a batch."""

    timeout_seconds: int | None = None
    retries: int = 0
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 4.0

    def on(self, step: Body) -> Body:
        if self.timeout_seconds is not None:
            step["timeoutSeconds"] = self.timeout_seconds
        if self.retries:
            step["retries"] = {
                "limit": self.retries,
                "backoffSeconds": self.backoff_seconds,
                "factor": 2.0,
                "maxBackoffSeconds": self.max_backoff_seconds,
            }
        return step


@dataclass(frozen=True)
class Planned:
    """One workflow to submit and the phase it must end in."""

    name: str
    shape: str
    body: Body
    expect: str = SUCCEEDED


def _caps(index: int, offset: int = 0) -> list[str]:
    return [CAPABILITIES[(index + offset) % len(CAPABILITIES)]]


def _one_step(index: int, policy: StepPolicy, capability: list[str]) -> list[Body]:
    return [policy.on({"name": "only", "capabilities": capability, "parameters": {"n": index}})]


def _chain(index: int, policy: StepPolicy) -> list[Body]:
    steps = []
    for position, name in enumerate(("fetch", "summarise", "publish")):
        step: Body = {
            "name": name,
            "capabilities": _caps(index, position),
            "parameters": {"topic": "{{ inputs.topic }}", "n": index},
        }
        steps.append(policy.on(step))
    return steps


def _fan(index: int, policy: StepPolicy) -> list[Body]:
    steps: list[Body] = [
        policy.on({"name": "split", "capabilities": _caps(index), "dependsOn": []}),
    ]
    for part in range(3):
        steps.append(
            policy.on(
                {
                    "name": f"part-{part}",
                    "capabilities": _caps(index, part + 1),
                    "dependsOn": ["split"],
                    "parameters": {"part": part},
                }
            )
        )
    pair = [CAPABILITIES[index % 3], CAPABILITIES[(index + 1) % 3]]
    steps.append(
        policy.on(
            {"name": "join", "capabilities": pair, "dependsOn": [f"part-{p}" for p in range(3)]}
        )
    )
    return steps


def workflow(name: str, steps: list[Body], **spec: Any) -> Body:
    return {
        "apiVersion": WORKFLOWS.api_version,
        "kind": "Workflow",
        "metadata": {"name": name, "labels": {"opscore.opspawn.io/chaos": "1"}},
        "spec": {"steps": steps, **spec},
    }


def mixed_batch(
    prefix: str,
    count: int,
    policy: StepPolicy,
    *,
    doomed_every: int = 20,
    extra_spec: Body | None = None,
) -> list[Planned]:
    """`count` workflows named `<prefix>-NNNN`: a third each of one-step, chain and
    fan-out/fan-in, with every `doomed_every`-th one doomed (0: none)."""
    planned = []
    spec = dict(extra_spec or {})
    for index in range(count):
        name = f"{prefix}-{index:04d}"
        if doomed_every and index % doomed_every == doomed_every - 1:
            steps = _one_step(index, policy, [DOOMED])
            planned.append(Planned(name, "doomed", workflow(name, steps, **spec), FAILED))
            continue
        shape = ("one-step", "chain", "fan-out")[index % 3]
        if shape == "one-step":
            steps = _one_step(index, policy, _caps(index))
        elif shape == "chain":
            steps = _chain(index, policy)
        else:
            steps = _fan(index, policy)
        body = workflow(name, steps, inputs={"topic": f"chaos {index}"}, **spec)
        planned.append(Planned(name, shape, body))
    return planned


def routed_batch(prefix: str, count: int, capability: str, policy: StepPolicy) -> list[Planned]:
    """`count` one-step and chain workflows whose every step needs `capability`."""
    planned = []
    for index in range(count):
        name = f"{prefix}-{index:04d}"
        length = 1 if index % 2 == 0 else 2
        steps = [
            policy.on({"name": f"s{position}", "capabilities": [capability]})
            for position in range(length)
        ]
        planned.append(Planned(name, f"{capability}-{length}", workflow(name, steps)))
    return planned
