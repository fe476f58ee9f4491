"""The engine runs a DAG: `dependsOn`, joins, `when`, failure propagation, continueOnFailure."""

from __future__ import annotations

from engine_harness import (
    T0,
    Answer,
    SimAgent,
    World,
    agent,
    done,
    entry,
    once,
    phases,
    seconds,
    simulate,
    spec,
    step,
    succeeded_condition,
)

from opscore_logic.workflow_model import StepPhase, WorkflowPhase

DIAMOND = spec(
    step("collect", caps=["research"]),
    step("cost", caps=["analysis"], after=["collect"]),
    step("risk", caps=["analysis"], after=["collect"]),
    step("summary", caps=["writing"], after=["cost", "risk"]),
)


def test_independent_steps_run_in_parallel_on_different_agents() -> None:
    wf = spec(step("a", after=[]), step("b", after=[]))
    d = once(wf, agents=[agent("x"), agent("y")])
    assert {(x.step, x.agent) for x in d.dispatches} == {("a", "x"), ("b", "y")}
    assert phases(d.status) == {"a": StepPhase.RUNNING, "b": StepPhase.RUNNING}


def test_fan_out_after_a_common_dependency_dispatches_both_branches_at_once() -> None:
    first = once(DIAMOND, agents=[agent("r", caps=["research"])])
    collect = entry(first.status, "collect")
    assert collect.task_id is not None
    agents = [
        agent("r", done(collect.task_id, T0 + seconds(1)), caps=["research"]),
        agent("a1", caps=["analysis"]),
        agent("a2", caps=["analysis"]),
    ]
    d = once(DIAMOND, first.status, agents, T0 + seconds(2))
    assert {(x.step, x.agent) for x in d.dispatches} == {("cost", "a1"), ("risk", "a2")}


def test_a_join_waits_for_all_of_its_dependencies() -> None:
    world = World(
        DIAMOND,
        [
            SimAgent("r", frozenset({"research"})),
            SimAgent("a1", frozenset({"analysis"})),
            SimAgent("a2", frozenset({"analysis"})),
            SimAgent("w", frozenset({"writing"})),
        ],
        answer=lambda d, w: Answer(delay=1 if d.step != "risk" else 10),
        check=True,
    )
    world.run()
    summary = entry(world.status, "summary")
    risk = entry(world.status, "risk")
    assert summary.started_at is not None
    assert risk.finished_at is not None
    assert summary.started_at >= risk.finished_at
    assert world.status.phase is WorkflowPhase.SUCCEEDED


def test_unset_depends_on_means_the_previous_step() -> None:
    wf = spec(step("a"), step("b"))
    d = once(wf, agents=[agent("x"), agent("y")])
    assert [x.step for x in d.dispatches] == ["a"]
    assert entry(d.status, "b").phase is StepPhase.PENDING


def test_empty_depends_on_starts_at_once_even_after_other_steps() -> None:
    wf = spec(step("a"), step("b"), step("c", after=[]))
    d = once(wf, agents=[agent("x"), agent("y")])
    assert sorted(x.step for x in d.dispatches) == ["a", "c"]


def test_when_false_skips_the_step_and_its_dependents_still_run() -> None:
    wf = spec(
        step("check", when="inputs.mode == 'full'"),
        step("after"),
        inputs={"mode": "quick"},
    )
    d = once(wf, agents=[agent("x")])
    check = entry(d.status, "check")
    assert (check.phase, check.reason) == (StepPhase.SKIPPED, "WhenFalse")
    assert [x.step for x in d.dispatches] == ["after"]


def test_when_true_runs_the_step() -> None:
    wf = spec(step("check", when="inputs.mode == 'full'"), inputs={"mode": "full"})
    d = once(wf, agents=[agent("x")])
    assert [x.step for x in d.dispatches] == ["check"]


def test_when_can_read_an_upstream_output() -> None:
    wf = spec(step("probe"), step("fix", when="steps.probe.output.broken == true"))
    world = simulate(wf, [SimAgent("x")], answer=lambda d, w: Answer(output={"broken": False}))
    assert entry(world.status, "fix").reason == "WhenFalse"
    assert world.status.phase is WorkflowPhase.SUCCEEDED


def test_a_failed_dependency_skips_its_dependents_as_upstream_failed() -> None:
    wf = spec(step("a"), step("b"), step("c"))
    world = simulate(wf, [SimAgent("x")], answer=lambda d, w: Answer(succeeded=False))
    assert phases(world.status) == {
        "a": StepPhase.FAILED,
        "b": StepPhase.SKIPPED,
        "c": StepPhase.SKIPPED,
    }
    assert {entry(world.status, n).reason for n in "bc"} == {"UpstreamFailed"}
    assert world.status.phase is WorkflowPhase.FAILED
    assert succeeded_condition(world.status) == ("False", "StepFailed")


def test_upstream_failure_reaches_steps_listed_before_their_dependency() -> None:
    wf = spec(step("late", after=["mid"]), step("mid", after=["first"]), step("first", after=[]))
    world = simulate(wf, [SimAgent("x")], answer=lambda d, w: Answer(succeeded=False))
    assert phases(world.status) == {
        "late": StepPhase.SKIPPED,
        "mid": StepPhase.SKIPPED,
        "first": StepPhase.FAILED,
    }
    assert world.status.phase is WorkflowPhase.FAILED


def test_a_skipped_step_listed_before_its_dependency_does_not_stall_the_run() -> None:
    wf = spec(
        step("report", after=["gate"]),
        step("gate", after=[], when="inputs.run == true"),
        inputs={"run": False},
    )
    d = once(wf, agents=[agent("x")])
    assert entry(d.status, "gate").reason == "WhenFalse"
    assert [x.step for x in d.dispatches] == ["report"]


def test_continue_on_failure_lets_dependents_run_and_the_workflow_succeed() -> None:
    wf = spec(step("lint", continue_on_failure=True), step("build"))
    world = simulate(wf, [SimAgent("x")], answer=lambda d, w: Answer(succeeded=d.step != "lint"))
    assert phases(world.status) == {"lint": StepPhase.FAILED, "build": StepPhase.SUCCEEDED}
    assert world.status.phase is WorkflowPhase.SUCCEEDED
    assert succeeded_condition(world.status) == ("True", "Succeeded")


def test_a_failed_branch_fails_the_workflow_once_the_other_branch_finishes() -> None:
    wf = spec(step("bad", after=[]), step("slow", after=[]))
    world = World(
        wf,
        [SimAgent("x"), SimAgent("y")],
        answer=lambda d, w: Answer(succeeded=d.step != "bad", delay=1 if d.step == "bad" else 5),
        check=True,
    )
    world.run()
    assert phases(world.status) == {"bad": StepPhase.FAILED, "slow": StepPhase.SUCCEEDED}
    assert world.status.phase is WorkflowPhase.FAILED
    assert "bad" in (world.status.message or "")


def test_outputs_flow_into_downstream_parameters_with_their_type() -> None:
    wf = spec(
        step("count"),
        step(
            "use",
            parameters={"n": "{{ steps.count.output.n }}", "s": "n={{ steps.count.output.n }}"},
        ),
    )
    world = simulate(wf, [SimAgent("x")], answer=lambda d, w: Answer(output={"n": 3}))
    use = next(x for x in world.dispatches if x.step == "use")
    assert use.parameters == {"n": 3, "s": "n=3"}


def test_workflow_inputs_and_identity_render_into_parameters() -> None:
    wf = spec(
        step("a", parameters={"who": "{{ inputs.who }}", "run": "{{ workflow.name }}"}),
        inputs={"who": "ops"},
    )
    d = once(wf, agents=[agent("x")])
    assert d.dispatches[0].parameters == {"who": "ops", "run": "wf"}


def test_effective_inputs_override_spec_inputs() -> None:
    wf = spec(step("a", parameters={"who": "{{ inputs.who }}"}), inputs={"who": "spec"})
    d = once(wf, agents=[agent("x")], inputs={"who": "template-default"})
    assert d.dispatches[0].parameters == {"who": "template-default"}


def test_the_task_name_defaults_to_the_step_name() -> None:
    wf = spec(step("a"), step("b", task="summarise"))
    world = simulate(wf, [SimAgent("x")])
    assert [x.task_name for x in world.dispatches] == ["a", "summarise"]


def test_a_diamond_succeeds_end_to_end_with_progress_counting_every_step() -> None:
    world = simulate(
        DIAMOND,
        [
            SimAgent("r", frozenset({"research"})),
            SimAgent("a1", frozenset({"analysis"})),
            SimAgent("w", frozenset({"writing"})),
        ],
    )
    assert world.status.phase is WorkflowPhase.SUCCEEDED
    assert world.status.progress == "4/4"
    assert [x.step for x in world.dispatches][-1] == "summary"
