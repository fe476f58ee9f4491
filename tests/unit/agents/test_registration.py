"""One Agent per agent id: the pure merge rules the operator and the sidecar share."""

from __future__ import annotations

from typing import Any

from opscore_logic.registration import (
    CREATED_BY_ANNOTATION,
    CREATED_BY_REPORT,
    CREATED_BY_WEBHOOK,
    Holder,
    MergePlan,
    agent_id_of,
    created_by,
    merge_plan,
    preferred,
    registration_fill,
    registration_spec,
)


def agent(
    name: str, *, agent_id: str | None = None, by: str | None = None, created: str = "T1"
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if by is not None:
        meta["annotations"] = {CREATED_BY_ANNOTATION: by}
    return {"metadata": meta, "spec": {"agentId": agent_id} if agent_id else {}}


def test_the_agent_id_is_spec_agent_id_else_the_name() -> None:
    assert agent_id_of(agent("custom", agent_id="Weird_ID")) == "Weird_ID"
    assert agent_id_of(agent("3f1c6a52")) == "3f1c6a52"


def test_created_by_tells_opscore_created_agents_from_declared_ones() -> None:
    assert created_by(agent("a", by=CREATED_BY_REPORT)) == CREATED_BY_REPORT
    assert created_by(agent("a")) is None


def test_a_single_holder_needs_no_merge() -> None:
    assert merge_plan([Holder.of(agent("a"))]) is None
    assert merge_plan([]) is None


def test_the_user_declared_agent_keeps_the_id_even_when_younger() -> None:
    auto = Holder.of(agent("x", by=CREATED_BY_REPORT, created="2026-01-01T00:00:00Z"))
    user = Holder.of(agent("mine", agent_id="x", created="2026-01-02T00:00:00Z"))
    assert merge_plan([auto, user]) == MergePlan(keeper="mine", absorb=("x",))


def test_several_created_agents_merge_into_the_oldest() -> None:
    old = Holder.of(agent("b", by=CREATED_BY_WEBHOOK, created="T1"))
    new = Holder.of(agent("a", by=CREATED_BY_REPORT, created="T2"))
    assert merge_plan([new, old]) == MergePlan(keeper="b", absorb=("a",))


def test_two_declared_agents_are_a_conflict_not_a_merge() -> None:
    first = Holder.of(agent("first", agent_id="x", created="T1"))
    second = Holder.of(agent("second", agent_id="x", created="T2"))
    auto = Holder.of(agent("x", by=CREATED_BY_REPORT, created="T0"))
    assert merge_plan([second, auto, first]) == MergePlan(
        keeper="first", absorb=("x",), conflicts=("second",)
    )


def test_ties_are_broken_by_name_so_every_process_agrees() -> None:
    a = Holder.of(agent("a", by=CREATED_BY_REPORT, created="T1"))
    b = Holder.of(agent("b", by=CREATED_BY_REPORT, created="T1"))
    assert merge_plan([b, a]) == merge_plan([a, b]) == MergePlan(keeper="a", absorb=("b",))


def test_the_sidecar_prefers_the_agent_the_operator_keeps() -> None:
    auto = agent("x", by=CREATED_BY_REPORT, created="T0")
    user = agent("mine", agent_id="x", created="T9")
    assert preferred([auto, user]) is user
    assert preferred([auto]) is auto
    assert preferred([]) is None


def test_registration_fills_only_what_the_keeper_lacks() -> None:
    keeper = {"agentId": "x", "capabilities": [], "agentName": "mine", "paused": True}
    donor = {
        "agentId": "x",
        "agentName": "theirs",
        "version": "1.0",
        "capabilities": ["search"],
        "contactEndpoint": "http://a/",
        "paused": False,
        "heartbeatTimeoutSeconds": 5,
    }
    assert registration_fill(keeper, donor) == {
        "version": "1.0",
        "capabilities": ["search"],
        "contactEndpoint": "http://a/",
    }


def test_registration_spec_from_agentkit_details() -> None:
    details = {
        "agentId": "3f1c",
        "agentName": "summariser",
        "version": "1.2.0",
        "capabilities": ["summarise", 7, "translate"],
        "contactEndpoint": "http://s:9000/",
        "metadata": {"description": "d" * 2000, "config": {}},
        "registration_time": "2026-11-25T08:34:05.120000Z",
    }
    spec = registration_spec(details)
    assert spec is not None
    assert spec["capabilities"] == ["summarise", "translate"]
    assert len(spec["description"]) == 1024
    assert {k: spec[k] for k in ("agentId", "agentName", "version", "contactEndpoint")} == {
        "agentId": "3f1c",
        "agentName": "summariser",
        "version": "1.2.0",
        "contactEndpoint": "http://s:9000/",
    }


def test_registration_spec_tolerates_null_metadata_and_rejects_missing_ids() -> None:
    assert registration_spec({"agentId": "a", "metadata": None}) == {"agentId": "a"}
    assert registration_spec({"agentName": "no id"}) is None
    assert registration_spec({"agentId": 5}) is None
