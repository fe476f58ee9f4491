"""Why a step or a run is where it is: the machine-readable reasons of a Workflow's status.

The engine branches on some of them (a step skipped because of `WhenFalse` lets its
dependents run, one skipped because of `UpstreamFailed` is retried with the failed ones),
so they are a type, not display text. The values are the wire strings, unchanged.

A stored reason this version does not know (written by a newer operator, or before a
reason was renamed) is kept as the text it is: parsing a stored status never fails on it,
and writing the status back loses nothing. The engine branches on members only, so such a
text never matches a branch. For the same reason the CRD schema lists the values in the
field's description, not as an `enum`: an `enum` would make the API server refuse every
status write of a run that still carries an unknown reason, after a rollback for example.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, WithJsonSchema


class StepReason(StrEnum):
    """`status.steps[].reason`."""

    DISPATCHED = "Dispatched"
    NO_AGENT_AVAILABLE = "NoAgentAvailable"
    SUSPENDED = "Suspended"
    RETRY_REQUESTED = "RetryRequested"
    TASK_SUCCEEDED = "TaskSucceeded"
    TASK_FAILED = "TaskFailed"
    TIMED_OUT = "TimedOut"
    AGENT_OFFLINE = "AgentOffline"
    AGENT_GONE = "AgentGone"
    DISPATCH_FAILED = "DispatchFailed"
    DISPATCH_UNCONFIRMED = "DispatchUnconfirmed"
    WHEN_FALSE = "WhenFalse"
    UPSTREAM_FAILED = "UpstreamFailed"
    INVALID_SPEC = "InvalidSpec"
    CANCELLED = "Cancelled"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    WORKFLOW_FINISHED = "WorkflowFinished"
    BUDGET_EXCEEDED = "BudgetExceeded"
    WAITING_FOR_APPROVAL = "WaitingForApproval"
    APPROVAL_REJECTED = "ApprovalRejected"
    APPROVAL_TIMED_OUT = "ApprovalTimedOut"


class WorkflowReason(StrEnum):
    """The reason of a Workflow's `Succeeded` condition."""

    RUNNING = "Running"
    SUSPENDED = "Suspended"
    TEMPLATE_NOT_FOUND = "TemplateNotFound"
    SUCCEEDED = "Succeeded"
    STEP_FAILED = "StepFailed"
    INVALID_SPEC = "InvalidSpec"
    TIMED_OUT = "TimedOut"
    CANCELLED = "Cancelled"
    BUDGET_EXCEEDED = "BudgetExceeded"


def listed(reasons: type[StrEnum]) -> str:
    """The values for a schema description: "`A`, `B`, `C`"."""
    return ", ".join(f"`{reason.value}`" for reason in reasons)


# A known reason parses to its member, any other text stays text (see module docstring);
# in the schema it is a plain string.
StoredStepReason = Annotated[
    StepReason | str,
    Field(union_mode="left_to_right"),
    WithJsonSchema({"type": "string"}),
]
