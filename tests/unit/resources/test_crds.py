"""The CRDs in crds/ are generated from the pydantic models and must not drift from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from opscore_logic.crdgen import KINDS, Kind, render, render_reference
from opscore_testbed.crd_files import CRDS, REFERENCE, crd_file


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_crd_file_matches_the_models(kind: Kind) -> None:
    path = crd_file(CRDS, kind)
    assert path.read_text() == render(kind), f"{path.name} is stale: run `make crds`"


def _walk(node: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, child in (node.get("properties") or {}).items():
        where = f"{path}.{name}"
        if name not in ("apiVersion", "kind", "metadata") and not child.get("description"):
            missing.append(where)
        missing += _walk(child, where)
    if "items" in node:
        missing += _walk(node["items"], f"{path}[]")
    return missing


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_has_a_description_for_kubectl_explain(kind: Kind) -> None:
    crd = yaml.safe_load(render(kind))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema, kind.kind) == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_crd_is_listed_by_kubectl_get_opscore(kind: Kind) -> None:
    crd = yaml.safe_load(render(kind))
    assert "opscore" in crd["spec"]["names"]["categories"]
    assert crd["spec"]["names"]["shortNames"]


def test_example_workflows_parse_with_the_models() -> None:
    from opscore_logic.schedule_model import WorkflowScheduleSpec
    from opscore_logic.trigger_model import WorkflowTriggerSpec
    from opscore_logic.workflow_model import WorkflowSpec, WorkflowTemplateSpec

    models: dict[str, type[BaseModel]] = {
        "Workflow": WorkflowSpec,
        "WorkflowTemplate": WorkflowTemplateSpec,
        "WorkflowSchedule": WorkflowScheduleSpec,
        "WorkflowTrigger": WorkflowTriggerSpec,
    }
    examples = Path(__file__).resolve().parents[3] / "examples"
    seen = 0
    for path in examples.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["apiVersion"] == "v1":
                continue  # a core object an example needs (the trigger's Secret)
            models[doc["kind"]].model_validate(doc["spec"])
            seen += 1
    assert seen >= 3


def test_crd_reference_doc_is_current() -> None:
    assert REFERENCE.read_text() == render_reference(), "docs/crd-reference.md: run `make crds`"
