"""Data passing between steps: `{{ inputs.NAME }}` and `{{ steps.STEP.output.KEY }}`.

A string that is exactly one reference takes the referenced value with its type (a number
stays a number); references embedded in longer text are rendered as text. `when`
conditions use the same references with `==`, `!=` and `!`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


class TemplateError(ValueError):
    """A reference that cannot be resolved, or a condition that cannot be read."""


class Scope:
    """What references can see: workflow inputs and finished steps' phases and outputs."""

    def __init__(
        self,
        *,
        inputs: Mapping[str, Any],
        step_outputs: Mapping[str, Mapping[str, Any] | None],
        step_phases: Mapping[str, str],
        workflow: Mapping[str, Any] | None = None,
    ) -> None:
        self._inputs = inputs
        self._outputs = step_outputs
        self._phases = step_phases
        self._workflow = workflow or {}

    def lookup(self, ref: str) -> Any:
        parts = ref.split(".")
        head, rest = parts[0], parts[1:]
        if head == "inputs" and rest:
            return _dig(self._inputs, rest, ref)
        if head == "workflow" and rest:
            return _dig(self._workflow, rest, ref)
        if head == "steps" and len(rest) >= 2:
            step, field, *path = rest
            if step not in self._phases:
                raise TemplateError(f"{ref}: no step named {step!r}")
            if field == "phase" and not path:
                return self._phases[step]
            if field == "output":
                output = self._outputs.get(step)
                if output is None:
                    raise TemplateError(f"{ref}: step {step!r} has no output")
                return _dig(output, path, ref) if path else output
        raise TemplateError(
            f"{ref}: unknown reference (use inputs.NAME, steps.STEP.output.KEY or steps.STEP.phase)"
        )


def _dig(value: Any, path: list[str], ref: str) -> Any:
    for key in path:
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise TemplateError(f"{ref}: {key!r} not found")
    return value


def references(value: Any) -> set[str]:
    """Every reference used anywhere inside `value` (for validation before running)."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(m.group(1) for m in _REF.finditer(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def render(value: Any, scope: Scope) -> Any:
    """`value` with every reference replaced; raises TemplateError naming the bad one."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value.strip())
        if whole:
            return scope.lookup(whole.group(1))
        return _REF.sub(lambda m: _as_text(scope.lookup(m.group(1))), value)
    if isinstance(value, Mapping):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


_COMPARISON = re.compile(r"^(?P<left>.+?)\s*(?P<op>==|!=)\s*(?P<right>.+)$")


def evaluate_condition(expression: str, scope: Scope) -> bool:
    """Evaluate a `when` condition: `A == B`, `A != B`, `A`, `!A`, joined by && or ||."""
    expr = expression.strip()
    if not expr:
        raise TemplateError("empty condition")
    if "||" in expr:
        return any(evaluate_condition(part, scope) for part in expr.split("||"))
    if "&&" in expr:
        return all(evaluate_condition(part, scope) for part in expr.split("&&"))
    match = _COMPARISON.match(expr)
    if match:
        left = _operand(match.group("left"), scope)
        right = _operand(match.group("right"), scope)
        return bool(left == right) if match.group("op") == "==" else bool(left != right)
    if expr.startswith("!"):
        return not evaluate_condition(expr[1:], scope)
    return bool(_operand(expr, scope))


def _operand(text: str, scope: Scope) -> Any:
    text = text.strip()
    inner = _REF.fullmatch(text)
    if inner:
        text = inner.group(1)
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        pass
    if text.split(".", 1)[0] in ("inputs", "steps", "workflow"):
        return scope.lookup(text)
    return text  # a bare word such as Succeeded compares as a string
