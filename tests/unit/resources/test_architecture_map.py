"""docs/architecture.md is a map of every module: its package table and its diagram name
each module that exists, under the right package, and the diagram names none that does
not. Add, rename or delete a module and these tests say where the map must change."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "architecture.md"
PACKAGES = {
    "opscore_logic": REPO / "opscore_logic",
    "opscore_operator": REPO / "operator" / "opscore_operator",
    "opscore_sidecar": REPO / "operator" / "opscore_sidecar",
    "opscore_kube": REPO / "operator" / "opscore_kube",
    "opscore_cli": REPO / "opscore_cli",
}
# A diagram node's label lists modules, separated by these.
LABEL_SEPARATORS = re.compile(r"<br/>|·")


def modules(directory: Path) -> set[str]:
    """The package's modules and subpackages (`__main__` included, `__init__` not)."""
    return {module.name for module in pkgutil.iter_modules([str(directory)])}


def package_row(doc: str, package: str) -> str:
    """The package table's row for `package`."""
    rows = [line for line in doc.splitlines() if line.startswith(f"| `{package}` |")]
    assert len(rows) == 1, f"the package table has {len(rows)} rows for {package}"
    return rows[0]


def diagram_labels(doc: str, package: str) -> list[str]:
    """The node labels inside the diagram's subgraph titled `package ...`."""
    lines = doc.splitlines()
    title = re.compile(rf'^\s*subgraph \w+ \["{package}\b')
    starts = [n for n, line in enumerate(lines) if title.match(line)]
    assert len(starts) == 1, f"the diagram has {len(starts)} subgraphs for {package}"
    labels: list[str] = []
    for line in lines[starts[0] + 1 :]:
        if line.strip() == "end":
            return labels
        labels += re.findall(r'\["([^"]*)"\]', line)
    raise AssertionError(f"the subgraph for {package} has no `end`")


def diagram_names(doc: str, package: str) -> set[str]:
    return {
        name.strip()
        for label in diagram_labels(doc, package)
        for name in LABEL_SEPARATORS.split(label)
        if name.strip()
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_named_in_its_package_row(package: str) -> None:
    found = modules(PACKAGES[package])
    assert found, f"no modules under {PACKAGES[package]}: the test looks in the wrong place"
    row = package_row(DOC.read_text(), package)
    assert sorted(m for m in found if f"`{m}`" not in row) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_in_its_package_box_of_the_diagram(package: str) -> None:
    shown = diagram_names(DOC.read_text(), package)
    assert sorted(modules(PACKAGES[package]) - shown) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_the_diagram_shows_no_module_that_does_not_exist(package: str) -> None:
    shown = diagram_names(DOC.read_text(), package)
    assert sorted(shown - modules(PACKAGES[package])) == []
