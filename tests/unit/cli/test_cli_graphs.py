"""`kubectl opscore graph`: the DAG as Mermaid and DOT text."""

from __future__ import annotations

import pytest

from opscore_cli.graphs import dot, mermaid, render
from opscore_logic.run_view import StepRow

FAN = [
    StepRow("collect", (), phase="Succeeded"),
    StepRow("cost", ("collect",), phase="Running"),
    StepRow("risk", ("collect",), phase="Succeeded"),
    StepRow("sum", ("cost", "risk")),
]


def test_mermaid_has_a_node_per_step_an_edge_per_dependency_and_phase_classes() -> None:
    lines = mermaid(FAN).splitlines()
    assert lines[0] == "graph LR"
    assert lines[1:5] == ['    s0["collect"]', '    s1["cost"]', '    s2["risk"]', '    s3["sum"]']
    assert {"    s0 --> s1", "    s0 --> s2", "    s1 --> s3", "    s2 --> s3"} <= set(lines)
    assert "    class s0,s2 Succeeded" in lines
    assert "    class s1 Running" in lines
    assert any(line.startswith("    classDef Succeeded fill:#d3f9d8") for line in lines)


def test_step_names_never_become_mermaid_ids() -> None:
    text = mermaid([StepRow("a--b", ()), StepRow("c", ("a--b",))])
    assert '    s0["a--b"]' in text
    assert "    s0 --> s1" in text


def test_dot_is_a_left_to_right_digraph_filled_by_phase() -> None:
    text = dot(FAN, "fan-out")
    assert text.startswith('digraph "fan-out" {\n    rankdir=LR;')
    assert 's0 [label="collect", fillcolor="#d3f9d8"' in text
    assert 's3 [label="sum", fillcolor="#f1f3f5"' in text
    assert {"s0 -> s1;", "s1 -> s3;", "s2 -> s3;"} <= {line.strip() for line in text.splitlines()}
    assert text.rstrip().endswith("}")


def test_an_unknown_dependency_is_shown_as_missing_not_dropped() -> None:
    rows = [StepRow("a", ("ghost",))]
    assert '    m0["ghost (missing)"]' in mermaid(rows)
    assert "    m0 --> s0" in mermaid(rows)
    assert 'm0 [label="ghost (missing)"' in dot(rows)


def test_quotes_are_escaped_in_dot_names() -> None:
    assert 'digraph "say \\"hi\\"" {' in dot([], 'say "hi"')


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="mermaid, dot"):
        render(FAN, "svg")
