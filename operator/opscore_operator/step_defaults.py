"""The operator's default attempt timeout, for steps that set none.

Without a timeout, an attempt whose dispatch or outcome was lost waits forever: the
crash window between the status write and the POST (docs/reliability.md) leaves a step
`Running` with a task id no agent ever received, and nothing but a timeout ends it. The
default (`OPSCORE_DEFAULT_STEP_TIMEOUT_SECONDS`, one hour) is long enough for any agent
task we know of and bounds how long such a step can hold a run; a step's own
`timeoutSeconds` always wins. With `retries` the timed-out attempt runs again under a new
task id; without, the step fails `TimedOut`, which a user sees, instead of hanging.
"""

from __future__ import annotations

from opscore_logic.workflow_model import Step


def with_default_timeout(steps: list[Step] | None, default_seconds: int) -> list[Step] | None:
    """`steps` with `timeout_seconds` set to `default_seconds` where unset (0: no default)."""
    if steps is None or default_seconds <= 0:
        return steps
    return [
        step
        if step.timeout_seconds is not None
        else step.model_copy(update={"timeout_seconds": default_seconds})
        for step in steps
    ]
