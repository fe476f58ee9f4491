"""`kubectl opscore graph`: the step DAG as Mermaid or Graphviz DOT text.

For docs and reviews: Mermaid renders in GitHub/GitLab markdown, DOT in `dot -Tsvg`. Nodes
get ids of their own (`s0`, `s1`, ...) rather than the step names, because a DNS label
such as `a--b` reads as an edge to Mermaid. Steps are coloured by phase, with the same
colours the dashboard uses, so a graph pasted into a review still shows how far a run
got. A dependency on an unknown step is drawn as a dashed "missing" node, not dropped:
that is the mistake a reviewer should see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opscore_logic.run_view import StepRow

FORMATS = ("mermaid", "dot")
MISSING = "Missing"
# (fill, stroke) per phase; the dashboard's stylesheet uses the same palette.
PHASE_COLORS: Mapping[str, tuple[str, str]] = {
    "Pending": ("#f1f3f5", "#868e96"),
    "Queued": ("#fff3bf", "#f08c00"),
    "Running": ("#d0ebff", "#1c7ed6"),
    "Succeeded": ("#d3f9d8", "#2f9e44"),
    "Failed": ("#ffe3e3", "#e03131"),
    "Skipped": ("#f8f9fa", "#adb5bd"),
    "Cancelled": ("#f3d9fa", "#ae3ec9"),
    MISSING: ("#ffffff", "#e03131"),
}


def _nodes(rows: Sequence[StepRow]) -> tuple[dict[str, str], list[str]]:
    """Node ids for the steps, then for unknown dependencies (in order of appearance)."""
    ids = {row.name: f"s{i}" for i, row in enumerate(rows)}
    missing: list[str] = []
    for row in rows:
        for dep in row.depends_on:
            if dep not in ids:
                ids[dep] = f"m{len(missing)}"
                missing.append(dep)
    return ids, missing


def _edges(rows: Sequence[StepRow]) -> list[tuple[str, str]]:
    return [(dep, row.name) for row in rows for dep in row.depends_on]


def mermaid(rows: Sequence[StepRow]) -> str:
    """A Mermaid flowchart, left to right, one class per phase."""
    ids, missing = _nodes(rows)
    lines = ["graph LR"]
    lines += [f'    {ids[row.name]}["{_mermaid_label(row.name)}"]' for row in rows]
    lines += [f'    {ids[name]}["{_mermaid_label(name)} (missing)"]' for name in missing]
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in _edges(rows)]
    used = [p for p in PHASE_COLORS if any(r.phase == p for r in rows)]
    if missing:
        used.append(MISSING)
    for phase in used:
        fill, stroke = PHASE_COLORS[phase]
        dash = ",stroke-dasharray: 4 3" if phase == MISSING else ""
        lines.append(f"    classDef {phase} fill:{fill},stroke:{stroke}{dash}")
    for phase in used:
        members = [ids[r.name] for r in rows if r.phase == phase]
        if phase == MISSING:
            members = [ids[name] for name in missing]
        lines.append(f"    class {','.join(members)} {phase}")
    return "\n".join(lines) + "\n"


def dot(rows: Sequence[StepRow], name: str = "workflow") -> str:
    """A Graphviz digraph, left to right, nodes filled by phase."""
    ids, missing = _nodes(rows)
    lines = [
        f"digraph {_dot_string(name)} {{",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    for row in rows:
        fill, stroke = PHASE_COLORS.get(row.phase, PHASE_COLORS["Pending"])
        lines.append(
            f"    {ids[row.name]} [label={_dot_string(row.name)}, "
            f'fillcolor="{fill}", color="{stroke}", tooltip={_dot_string(row.phase)}];'
        )
    for dep in missing:
        fill, stroke = PHASE_COLORS[MISSING]
        lines.append(
            f"    {ids[dep]} [label={_dot_string(dep + ' (missing)')}, "
            f'fillcolor="{fill}", color="{stroke}", style="rounded,dashed"];'
        )
    lines += [f"    {ids[a]} -> {ids[b]};" for a, b in _edges(rows)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(rows: Sequence[StepRow], fmt: str, name: str = "workflow") -> str:
    if fmt == "mermaid":
        return mermaid(rows)
    if fmt == "dot":
        return dot(rows, name)
    raise ValueError(f"unknown graph format {fmt!r} (expected one of {', '.join(FORMATS)})")


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
