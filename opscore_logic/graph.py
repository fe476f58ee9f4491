"""The step graph: who waits for whom, and whether the graph is a valid DAG."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from opscore_logic.workflow_model import Step


def dependencies(steps: Sequence[Step]) -> dict[str, list[str]]:
    """Each step's effective dependencies: `dependsOn`, else the previous step in the list."""
    deps: dict[str, list[str]] = {}
    previous: str | None = None
    for step in steps:
        if step.depends_on is not None:
            deps[step.name] = list(step.depends_on)
        else:
            deps[step.name] = [previous] if previous is not None else []
        previous = step.name
    return deps


def topological_order(steps: Sequence[Step]) -> list[Step]:
    """The steps with every step after its dependencies, otherwise in list order.

    The engine decides steps in this order so that one pass settles a whole chain (a step
    skipped or failed early in the pass is seen by its dependents later in the same pass,
    whatever order the user listed them in). Among steps whose dependencies are placed,
    the one listed first comes first, so earlier steps keep their precedence for agents.
    Steps on a cycle or waiting on an unknown step come last, in list order.
    """
    deps = dependencies(steps)
    index = {s.name: i for i, s in enumerate(steps)}
    waiting = {s.name: {d for d in deps[s.name] if d in index} for s in steps}
    dependents: dict[str, list[str]] = {s.name: [] for s in steps}
    for name, wanted in waiting.items():
        for dep in wanted:
            dependents[dep].append(name)
    ready = [index[name] for name, wanted in waiting.items() if not wanted]
    heapq.heapify(ready)
    order: list[Step] = []
    while ready:
        current = steps[heapq.heappop(ready)]
        order.append(current)
        for name in dependents[current.name]:
            waiting[name].discard(current.name)
            if not waiting[name]:
                heapq.heappush(ready, index[name])
    placed = {s.name for s in order}
    return order + [s for s in steps if s.name not in placed]


def graph_problems(steps: Sequence[Step]) -> list[str]:
    """What makes these steps unrunnable, in words a user can act on (empty when fine)."""
    problems: list[str] = []
    names = [s.name for s in steps]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(f"step name {name!r} is used more than once")
        seen.add(name)
    if not steps:
        problems.append("the workflow has no steps")
    deps = dependencies(steps)
    for name, wanted in deps.items():
        for dep in wanted:
            if dep == name:
                problems.append(f"step {name!r} depends on itself")
            elif dep not in seen:
                problems.append(f"step {name!r} depends on unknown step {dep!r}")
    if not problems:
        cycle = find_cycle(deps)
        if cycle:
            problems.append("dependsOn has a cycle: " + " -> ".join(cycle))
    return problems


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """One dependency cycle as a path that ends where it starts, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for dep in deps.get(node, []):
            if color.get(dep, black) == grey:
                return [*stack[stack.index(dep) :], dep]
            if color.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in deps:
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None
