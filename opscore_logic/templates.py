"""Resolving a Workflow's steps: inline, or from a WorkflowTemplate with parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opscore_logic.graph import dependencies
from opscore_logic.templating import references
from opscore_logic.workflow_model import Step, WorkflowSpec, WorkflowTemplateSpec


@dataclass(frozen=True, slots=True)
class Resolved:
    """The steps to run and the effective inputs, or why there are none."""

    steps: list[Step] | None
    inputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def resolve(spec: WorkflowSpec, template: WorkflowTemplateSpec | None) -> Resolved:
    """Steps and inputs for `spec`; `template` is the referenced one (None if not found)."""
    if spec.steps is not None:
        steps, inputs = spec.steps, dict(spec.inputs)
    elif spec.template_ref is not None:
        if template is None:
            return Resolved(None, error=f"WorkflowTemplate {spec.template_ref.name!r} not found")
        inputs = {p.name: p.default for p in template.parameters if p.default is not None}
        inputs.update(spec.inputs)
        missing = [p.name for p in template.parameters if p.required and p.name not in inputs]
        if missing:
            return Resolved(
                None,
                error=f"missing required parameter(s) of template "
                f"{spec.template_ref.name!r}: {', '.join(sorted(missing))}",
            )
        steps = template.steps
    else:
        return Resolved(None, error="set exactly one of steps and templateRef")
    problem = reference_problems(steps, inputs)
    if problem:
        return Resolved(None, error=problem)
    return Resolved(list(steps), inputs)


WORKFLOW_FIELDS = ("name", "namespace", "uid")
# A reference inside a `when` condition, bare (`inputs.env == prod`) or in braces.
_CONDITION_REF = re.compile(r"(?<![A-Za-z0-9_.\-])(?:inputs|steps|workflow)\.[A-Za-z0-9_.\-]+")


def reference_problems(steps: Sequence[Step], inputs: Mapping[str, Any]) -> str | None:
    """What is wrong with the references in `parameters` and `when`, or None.

    Checked before anything runs, so a typo fails the run at once (InvalidSpec) instead
    of after its first steps: every `inputs.NAME` must be an input, every
    `steps.STEP...` must name a step this one runs after (directly or through others:
    an output of a step that may not have finished is a race, not a value), and
    `workflow.X` must be one of name, namespace, uid.
    """
    names = {s.name for s in steps}
    upstream = _upstream(steps)
    unknown_inputs: set[str] = set()
    unknown_steps: set[str] = set()
    unknown_fields: set[str] = set()
    unknown_kinds: set[str] = set()
    unordered: list[str] = []
    for step in steps:
        for ref in sorted(references(step.parameters) | _condition_refs(step)):
            head, *rest = ref.split(".")
            if head == "inputs":
                if not rest or rest[0] not in inputs:
                    unknown_inputs.add(ref)
            elif head == "workflow":
                if len(rest) != 1 or rest[0] not in WORKFLOW_FIELDS:
                    unknown_fields.add(ref)
            elif head != "steps":
                unknown_kinds.add(ref)
            elif len(rest) < 2 or rest[0] not in names:
                unknown_steps.add(ref)
            elif rest[1] != "output" and rest[1:] != ["phase"]:
                unknown_kinds.add(ref)
            elif rest[0] not in upstream[step.name]:
                unordered.append(
                    f"step {step.name!r} reads {ref} but does not run after {rest[0]!r} "
                    "(add it to dependsOn)"
                )
    problems: list[str] = []
    if unknown_inputs:
        problems.append(f"reference(s) to unknown input(s): {', '.join(sorted(unknown_inputs))}")
    if unknown_steps:
        problems.append(f"reference(s) to unknown step(s): {', '.join(sorted(unknown_steps))}")
    if unknown_fields:
        problems.append(
            f"unknown workflow field(s): {', '.join(sorted(unknown_fields))} "
            f"(use {', '.join('workflow.' + f for f in WORKFLOW_FIELDS)})"
        )
    if unknown_kinds:
        problems.append(
            f"unknown reference(s): {', '.join(sorted(unknown_kinds))} "
            "(use inputs.NAME, steps.STEP.output.KEY, steps.STEP.phase or workflow.name)"
        )
    problems.extend(unordered)
    return "; ".join(problems) or None


def _condition_refs(step: Step) -> set[str]:
    return set(_CONDITION_REF.findall(step.when)) if step.when else set()


def _upstream(steps: Sequence[Step]) -> dict[str, set[str]]:
    """Every step's transitive dependencies (cycles and unknown names tolerated: the graph
    is checked separately)."""
    deps = dependencies(steps)
    found: dict[str, set[str]] = {}
    for name in deps:
        seen: set[str] = set()
        todo = list(deps[name])
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(deps.get(current, []))
        found[name] = seen
    return found
