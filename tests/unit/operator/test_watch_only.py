"""kopf's change tracking is off (watch_only.py): safe only while every handler is a
level-based `on.event` one, which this test holds the operator to."""

from __future__ import annotations

import kopf

import opscore_operator.handlers  # noqa: F401  (registers the handlers)
from opscore_operator.watch_only import NoDiffBase


def test_the_operator_registers_no_handler_that_needs_a_diff_base() -> None:
    registry = kopf.get_default_registry()
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    assert len(registry._watching.get_all_handlers()) == 5  # the five watched kinds


def test_the_essence_is_empty_and_never_kept() -> None:
    storage = NoDiffBase()
    body = kopf.Body({"metadata": {"name": "wf"}, "spec": {"steps": []}, "status": {"x": 1}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence())
    assert not patch
