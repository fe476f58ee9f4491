"""What each subcommand does: read from the cluster, render, write, return an exit code.

Kept free of argument parsing (`__main__`) and of rendering rules (`tree`, `graphs`,
`agents_table`, `verbs`) so each command reads as the few steps it is.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from opscore_cli import graphs
from opscore_cli.agents_table import render_agents
from opscore_cli.cluster import Body, CliError, Cluster
from opscore_cli.style import Style, style_for
from opscore_cli.tree import render_workflow
from opscore_cli.verbs import NotApplicable, plan
from opscore_logic.run_view import StepRow, step_rows, template_name

RESOURCE = "workflow.opscore.opspawn.io"
OUTPUTS = ("json", "yaml")


def rows_of(cluster: Cluster, workflow: Body) -> list[StepRow]:
    """The run's steps, reading its WorkflowTemplate when it has one."""
    template = template_name(workflow)
    return step_rows(workflow, cluster.template(template) if template else None)


def terminal_width(stream: TextIO) -> int | None:
    """The terminal's width when writing to one; None (never cut) in a pipe or file."""
    try:
        if stream.isatty():
            return shutil.get_terminal_size().columns
    except (AttributeError, ValueError):
        pass
    return None


def dump(obj: Any, output: str, out: TextIO) -> None:
    """`-o json|yaml`: the object as the API returned it, minus managedFields (as kubectl)."""
    for item in obj.get("items", [obj]) if isinstance(obj, dict) else []:
        (item.get("metadata") or {}).pop("managedFields", None)
    if output == "json":
        out.write(json.dumps(obj, indent=4) + "\n")
    else:
        out.write(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def frame(cluster: Cluster, workflow: Body, style: Style, width: int | None) -> str:
    rows = rows_of(cluster, workflow)
    return render_workflow(workflow, rows, datetime.now(UTC), style, width)


def get(cluster: Cluster, name: str, output: str | None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    workflow = cluster.workflow(name)
    if output:
        dump(workflow, output, out)
    else:
        out.write(frame(cluster, workflow, style_for(out), terminal_width(out)))
    return 0


def agents(cluster: Cluster, output: str | None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    items = cluster.agents()
    if output:
        dump({"apiVersion": "v1", "kind": "List", "items": items}, output, out)
        return 0
    if not items:
        print(f"No agents found in {cluster.namespace} namespace.", file=sys.stderr)
        return 0
    out.write(render_agents(items, datetime.now(UTC), style_for(out), terminal_width(out)))
    return 0


def verb(cluster: Cluster, name: str, which: str, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    workflow = cluster.workflow(name)
    try:
        change = plan(which, workflow)
    except NotApplicable as exc:
        raise CliError(f"error: {exc}") from None
    cluster.patch_workflow(name, change.patch)
    out.write(f"{RESOURCE}/{name} {change.done}\n")
    return 0


def graph(cluster: Cluster, name: str, fmt: str, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    workflow = cluster.workflow(name)
    out.write(graphs.render(rows_of(cluster, workflow), fmt, name))
    return 0
