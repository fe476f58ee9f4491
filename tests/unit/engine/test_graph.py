"""The step graph: effective dependencies, validity, and the order steps are decided in."""

from __future__ import annotations

from engine_harness import step

from opscore_logic.graph import dependencies, find_cycle, graph_problems, topological_order
from opscore_logic.workflow_model import Step


def names(steps: list[Step]) -> list[str]:
    return [s.name for s in steps]


def test_unset_depends_on_means_the_previous_step_in_the_list() -> None:
    assert dependencies([step("a"), step("b"), step("c")]) == {"a": [], "b": ["a"], "c": ["b"]}


def test_an_empty_depends_on_means_no_dependency() -> None:
    assert dependencies([step("a"), step("b", after=[])]) == {"a": [], "b": []}


def test_explicit_depends_on_is_taken_as_given() -> None:
    steps = [step("a"), step("b", after=[]), step("c", after=["a", "b"])]
    assert dependencies(steps)["c"] == ["a", "b"]


def test_the_step_after_an_explicit_one_still_follows_it_by_default() -> None:
    steps = [step("a"), step("b", after=[]), step("c")]
    assert dependencies(steps)["c"] == ["b"]


def test_a_valid_dag_has_no_problems() -> None:
    steps = [step("a"), step("b", after=["a"]), step("c", after=["a"]), step("d", after=["b", "c"])]
    assert graph_problems(steps) == []


def test_no_steps_is_a_problem() -> None:
    assert graph_problems([]) == ["the workflow has no steps"]


def test_a_duplicate_name_is_a_problem() -> None:
    assert graph_problems([step("a"), step("a", after=[])]) == [
        "step name 'a' is used more than once"
    ]


def test_an_unknown_dependency_is_a_problem() -> None:
    assert graph_problems([step("a", after=["zz"])]) == ["step 'a' depends on unknown step 'zz'"]


def test_a_self_dependency_is_a_problem() -> None:
    assert graph_problems([step("a", after=["a"])]) == ["step 'a' depends on itself"]


def test_a_cycle_is_reported_as_a_path() -> None:
    steps = [step("a", after=["b"]), step("b", after=["a"]), step("c", after=[])]
    assert graph_problems(steps) == ["dependsOn has a cycle: a -> b -> a"]


def test_find_cycle_returns_none_for_a_dag() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None


def test_find_cycle_finds_a_cycle_reachable_from_an_acyclic_start() -> None:
    assert find_cycle({"s": ["x"], "x": ["y"], "y": ["x"]}) == ["x", "y", "x"]


def test_topological_order_keeps_list_order_when_it_is_consistent() -> None:
    steps = [step("a"), step("b", after=[]), step("c", after=["a", "b"]), step("d")]
    assert names(topological_order(steps)) == ["a", "b", "c", "d"]


def test_topological_order_puts_dependencies_first() -> None:
    steps = [step("late", after=["mid"]), step("mid", after=["first"]), step("first", after=[])]
    assert names(topological_order(steps)) == ["first", "mid", "late"]


def test_topological_order_prefers_the_earlier_listed_of_ready_steps() -> None:
    steps = [step("z", after=["y"]), step("x", after=[]), step("y", after=[])]
    assert names(topological_order(steps)) == ["x", "y", "z"]


def test_topological_order_keeps_every_step_even_on_a_cycle() -> None:
    steps = [step("a", after=["b"]), step("b", after=["a"]), step("c", after=[])]
    assert names(topological_order(steps)) == ["c", "a", "b"]
