"""The approval example parses as the models the API server and the operator use."""

from __future__ import annotations

from pathlib import Path

import yaml

from opscore_logic.workflow_model import WorkflowSpec

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "approvals" / "release-workflow.yaml"


def test_the_example_gates_a_step_and_binds_the_approver_role_to_the_same_people() -> None:
    docs = list(yaml.safe_load_all(EXAMPLE.read_text()))
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    run = WorkflowSpec.model_validate(next(d for d in docs if d["kind"] == "Workflow")["spec"])
    gated = [s for s in run.steps or [] if s.approval is not None]
    assert [s.name for s in gated] == ["publish"]
    gate = gated[0].approval
    assert gate is not None
    subjects = {(s["kind"], s["name"]) for s in binding["subjects"]}
    assert subjects == {("User", u) for u in gate.users} | {("Group", g) for g in gate.groups}
    assert binding["roleRef"]["name"] == "opscore-approver"
