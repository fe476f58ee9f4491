"""The Workflow resource (a run) and the WorkflowTemplate resource (a reusable definition).

Spec is intent, including the control verbs (`suspend`, `cancel`, `retryGeneration`) so
`kubectl patch` drives a run. Status is what the operator observed and decided; every fact
needed to resume after a crash is in it (task ids are written before dispatch).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from opscore_logic.approval import ApprovalGate
from opscore_logic.approval_model import StepApproval
from opscore_logic.base import WireModel
from opscore_logic.budget import Budget
from opscore_logic.conditions import Condition
from opscore_logic.reasons import StepReason, StoredStepReason, WorkflowReason, listed
from opscore_logic.usage import Usage

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LIST_MAP_BY_NAME: JsonDict = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
}
LIST_MAP_BY_TYPE: JsonDict = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


def _cel(*rules: tuple[str, str]) -> JsonDict:
    """CEL validation rules (x-kubernetes-validations) for a schema node."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


# Whether each dependsOn names an existing step is checked by the operator (InvalidSpec):
# as a CEL rule over 100 steps x 16 dependencies it exceeds the API server's cost budget
# (measured: 8.4x). A step naming itself is cheap to reject here.
_NO_SELF_DEPENDENCY = (
    "!has(self.dependsOn) || self.dependsOn.all(d, d != self.name)",
    "a step cannot depend on itself",
)
MAX_STEPS = 100
StepName = Annotated[str, StringConstraints(min_length=1, max_length=63)]
Word = Annotated[str, StringConstraints(min_length=1, max_length=253)]
MAX_DEPENDS = 16


class WorkflowPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self in (WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED, WorkflowPhase.CANCELLED)


class StepPhase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    WAITING_FOR_APPROVAL = "WaitingForApproval"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self in (
            StepPhase.SUCCEEDED,
            StepPhase.FAILED,
            StepPhase.SKIPPED,
            StepPhase.CANCELLED,
        )


class RetryPolicy(WireModel):
    """How often a failed or timed-out attempt is tried again, and how long to wait."""

    limit: int = Field(default=0, ge=0, le=100, description="Retries after the first attempt.")
    backoff_seconds: float = Field(
        default=1.0, ge=0, le=3600, description="Wait before the first retry."
    )
    factor: float = Field(default=2.0, ge=1, le=10, description="Backoff multiplier per retry.")
    max_backoff_seconds: float = Field(
        default=300.0, ge=0, le=86400, description="Upper bound of the wait between retries."
    )


class LabelSelector(WireModel):
    """Agents whose labels include all of these."""

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Label key/value pairs an agent must carry."
    )


class Step(WireModel):
    """One task for one agent. Steps run in order unless `dependsOn` says otherwise."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "has(self.agent) != (has(self.capabilities) && size(self.capabilities) > 0)",
                "set exactly one of agent and capabilities",
            ),
            _NO_SELF_DEPENDENCY,
        )
    )

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=NAME_PATTERN,
        description="Unique within the workflow (a DNS label); referenced by `dependsOn`.",
    )
    agent: str | None = Field(
        default=None,
        max_length=253,
        description="The Agent (resource name or spec.agentName) that must run this step.",
    )
    capabilities: list[Word] | None = Field(
        default=None,
        max_length=32,
        description="Run on any available agent offering all of these capabilities.",
    )
    agent_selector: LabelSelector | None = Field(
        default=None, description="Further restricts capability routing to labelled agents."
    )
    task: str | None = Field(
        default=None,
        max_length=253,
        description="Task name sent to the agent (AgentKit `task_name`); defaults to `name`.",
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "The task's parameters, sent as the message payload. Strings may reference "
            "`{{ inputs.NAME }}` and `{{ steps.STEP.output.KEY }}`."
        ),
    )
    depends_on: list[StepName] | None = Field(
        default=None,
        max_length=MAX_DEPENDS,
        description=(
            "Steps that must succeed first. Unset: the previous step in the list. "
            "Empty list: none (starts at once)."
        ),
    )
    when: str | None = Field(
        default=None,
        max_length=1024,
        description="Run only if this condition holds, e.g. `steps.check.output.ok == true`.",
    )
    continue_on_failure: bool = Field(
        default=False,
        description="A failure of this step does not fail the workflow; dependents still run.",
    )
    retries: RetryPolicy | None = Field(default=None, description="Retry policy of this step.")
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=604800,
        description="An attempt with no result after this long times out (and may be retried).",
    )
    approval: ApprovalGate | None = Field(
        default=None,
        description=(
            "When ready, wait for an Approval by one of these users or groups before the "
            "first dispatch (docs/approvals.md)."
        ),
    )


class TemplateRef(WireModel):
    """A WorkflowTemplate in the Workflow's namespace."""

    name: str = Field(min_length=1, max_length=253, description="WorkflowTemplate name.")


class WorkflowSpec(WireModel):
    """The run: its steps (or a template), inputs, and the verbs that control it."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "has(self.steps) != has(self.templateRef)",
                "set exactly one of steps and templateRef",
            ),
        )
    )

    steps: list[Step] | None = Field(
        default=None,
        max_length=MAX_STEPS,
        description="The steps (immutable). Exactly one of `steps` and `templateRef` is set.",
        json_schema_extra={
            **LIST_MAP_BY_NAME,
            **_cel(("self == oldSelf", "steps cannot be changed once the workflow exists")),
        },
    )
    template_ref: TemplateRef | None = Field(
        default=None, description="Take the steps from this WorkflowTemplate."
    )
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="Workflow inputs (template parameters), referenced as `{{ inputs.NAME }}`.",
    )
    priority: int = Field(
        default=0,
        ge=-1000,
        le=1000,
        description="Higher runs first when workflows compete for agents (then oldest first).",
    )
    deadline_seconds: int | None = Field(
        default=None, ge=1, description="The whole run fails with `TimedOut` after this long."
    )
    retry_budget: int | None = Field(
        default=None, ge=0, description="Retries allowed across all steps of this run."
    )
    suspend: bool = Field(default=False, description="No new dispatches while true.")
    cancel: bool = Field(
        default=False,
        description="Stop the run: running attempts are abandoned, pending steps never start.",
    )
    retry_generation: int = Field(
        default=0,
        ge=0,
        description="Increase to retry a failed run from its failed steps.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Delete the Workflow this long after it finished."
    )
    budget: Budget | None = Field(
        default=None,
        description="Usage limits of the run (default: the WorkflowTemplate's budget).",
    )


class StepStatus(WireModel):
    """What happened to one step (compact: large outputs do not belong here)."""

    name: str = Field(description="Step name.")
    phase: StepPhase = Field(
        description="Pending, Queued, WaitingForApproval, Running, Succeeded, Failed, ..."
    )
    agent: str | None = Field(default=None, description="Agent of the current/last attempt.")
    attempt: int = Field(default=0, ge=0, description="Attempts dispatched so far.")
    retries: int = Field(default=0, ge=0, description="Retries spent on this step.")
    task_id: str | None = Field(
        default=None, description="Task id of the current/last attempt (`opscore_task_id`)."
    )
    dispatched_at: datetime | None = Field(
        default=None, description="When the current attempt was dispatched."
    )
    started_at: datetime | None = Field(default=None, description="First dispatch time.")
    finished_at: datetime | None = Field(default=None, description="When it finished.")
    retry_at: datetime | None = Field(default=None, description="Earliest next attempt.")
    reason: StoredStepReason | None = Field(
        default=None,
        description=(
            f"Why it is in this phase, one of {listed(StepReason)} (an unknown one, from "
            "another operator version, is kept as it is)."
        ),
    )
    message: str | None = Field(default=None, description="Detail for humans.")
    output: dict[str, Any] | None = Field(
        default=None, description="Small output reported by the agent (size-capped)."
    )
    usage: Usage | None = Field(
        default=None, description="Tokens and cost its ended attempts reported."
    )
    approval: StepApproval | None = Field(
        default=None, description="Its approval gate: when it began to wait, who decided."
    )


class WorkflowStatus(WireModel):
    """The run as observed: phase, progress, steps, conditions."""

    phase: WorkflowPhase | None = Field(default=None, description="Phase of the run.")
    progress: str | None = Field(default=None, description="Finished steps / all steps.")
    message: str | None = Field(default=None, description="What is happening, for humans.")
    start_time: datetime | None = Field(default=None, description="When it started.")
    completion_time: datetime | None = Field(default=None, description="When it finished.")
    steps: list[StepStatus] = Field(
        default_factory=list, description="One entry per step.", json_schema_extra=LIST_MAP_BY_NAME
    )
    retries_used: int = Field(default=0, ge=0, description="Retries spent (see retryBudget).")
    usage: Usage | None = Field(
        default=None, description="The sum of the steps' usage (see spec.budget)."
    )
    retry_generation: int = Field(
        default=0, ge=0, description="The spec.retryGeneration last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "`Succeeded`: Unknown while running, then True/False; its reason is one of "
            f"{listed(WorkflowReason)}."
        ),
        json_schema_extra=LIST_MAP_BY_TYPE,
    )
    observed_generation: int | None = Field(
        default=None, description="The spec generation this status was computed from."
    )


class WorkflowTemplateSpec(WireModel):
    """A reusable workflow definition; Workflows reference it with `templateRef`."""

    description: str | None = Field(default=None, max_length=4096, description="What it does.")
    parameters: list[TemplateParameter] = Field(
        default_factory=list, description="Inputs a Workflow passes in `spec.inputs`."
    )
    steps: list[Step] = Field(
        max_length=MAX_STEPS,
        description="The steps, as in a Workflow.",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    budget: Budget | None = Field(
        default=None, description="The default spec.budget of Workflows using it."
    )


class TemplateParameter(WireModel):
    """One input of a template."""

    name: str = Field(min_length=1, max_length=253, description="Referenced as inputs.NAME.")
    description: str | None = Field(default=None, description="What it means.")
    required: bool = Field(default=False, description="A Workflow must give it.")
    default: Any | None = Field(default=None, description="Value used when not given.")


WorkflowTemplateSpec.model_rebuild()
