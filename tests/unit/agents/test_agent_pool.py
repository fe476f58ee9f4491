"""The operator's incremental agent views equal the views built from scratch, and the
agents a pass hands the engine lead to the decisions all agents would.

`views.agent_views` + `views.after_waiters` (every agent, every pass) is the reference;
`AgentPools` (kept current from the cache, ledger and marks), `NamespaceAgents`' indexes
and `candidates.agents_for_pass` must agree with it after any sequence of changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opscore_logic.deferral import serves_in
from opscore_logic.engine import WorkflowRef, reconcile
from opscore_logic.selection import select_agent, step_fits
from opscore_logic.workflow_model import Step, StepPhase, StepStatus, WorkflowSpec, WorkflowStatus
from opscore_operator.agentkit_marks import MissingInAgentKit
from opscore_operator.agentpool import AgentPools
from opscore_operator.candidates import agents_for_pass
from opscore_operator.ledger import InFlight, Ledger
from opscore_operator.store import ObjectCache
from opscore_operator.views import after_waiters, agent_views
from opscore_operator.waiting import Waiter

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
NAMESPACES = ("a", "b")
NAMES = tuple(f"ag-{i}" for i in range(6))
CAPS = ("x", "y", "z")
LABELS = (("tier", "gold"), ("tier", "silver"), ("zone", "eu"))


class World:
    """An agents cache, ledger and marks, with an `AgentPools` listening to them."""

    def __init__(self) -> None:
        self.cache = ObjectCache()
        self.ledger = Ledger()
        self.missing = MissingInAgentKit()
        self.pools = AgentPools(agents=self.cache, ledger=self.ledger, missing=self.missing)
        self.now = T0
        self.version = 0
        self.tasks = 0

    def naive(self, namespace: str) -> dict[str, Any]:
        return agent_views(
            cache=self.cache,
            ledger=self.ledger,
            missing=self.missing,
            namespace=namespace,
            now=self.now,
        )

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "upsert":
            _, ns, name, caps, labels, reported, max_tasks, paused, agent_id = op
            self.version += 1
            status: dict[str, Any] = {}
            if reported is not None:
                state, ago = reported
                at = self.now - timedelta(seconds=ago)
                status["reports"] = [
                    {"state": state, "timestamp": at.isoformat(), "receivedAt": at.isoformat()}
                ]
            self.cache.upsert(
                {
                    "metadata": {
                        "namespace": ns,
                        "name": name,
                        "resourceVersion": str(self.version),
                        "labels": dict(labels),
                        "generation": 1,
                    },
                    "spec": {
                        "capabilities": list(caps),
                        "maxConcurrentTasks": max_tasks,
                        "paused": paused,
                        "heartbeatTimeoutSeconds": 30,
                        **({"agentId": agent_id} if agent_id else {}),
                    },
                    "status": status,
                }
            )
        elif kind == "delete":
            _, ns, name = op
            body = self.cache.get((ns, name))
            if body is not None:
                self.version += 1
                self.cache.delete(
                    {"metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
                )
        elif kind == "reserve":
            _, ns, name, workflow = op
            self.tasks += 1
            task = InFlight((ns, workflow), "s", f"t{self.tasks}", self.now)
            self.ledger.reserve((ns, name), task)
        elif kind == "release":
            _, ns, name = op
            held = self.ledger.current_task((ns, name))
            if held is not None:
                self.ledger.release((ns, name), held.task_id, "succeeded")
        elif kind == "forget":
            _, ns, workflow = op
            self.ledger.forget_workflow((ns, workflow))
        elif kind == "mark":
            _, ns, name = op
            self.missing.mark((ns, name), "AgentKit does not know it", 1)
        elif kind == "clear":
            _, ns, name = op
            self.missing.clear((ns, name))
        elif kind == "tick":
            self.now += timedelta(seconds=op[1])


namespaces = st.sampled_from(NAMESPACES)
names = st.sampled_from(NAMES)
workflows = st.sampled_from(("w1", "w2", "w3"))
upserts = st.tuples(
    st.just("upsert"),
    namespaces,
    names,
    st.lists(st.sampled_from(CAPS), max_size=3, unique=True),
    st.lists(st.sampled_from(LABELS), max_size=2, unique_by=lambda kv: kv[0]),
    st.one_of(
        st.tuples(st.just("idle"), st.integers(0, 10)),  # mostly free agents
        st.tuples(st.just("idle"), st.integers(0, 10)),
        st.none(),
        st.tuples(st.sampled_from(("idle", "active", "error", "offline")), st.integers(0, 40)),
    ),
    st.integers(1, 3),
    st.sampled_from((False, False, False, True)),
    st.none() | st.sampled_from(("id-1", "id-2")),
)
change = st.one_of(
    upserts,
    st.tuples(st.just("delete"), namespaces, names),
    st.tuples(st.just("reserve"), namespaces, names, workflows),
    st.tuples(st.just("release"), namespaces, names),
    st.tuples(st.just("forget"), namespaces, workflows),
    st.tuples(st.just("mark"), namespaces, names),
    st.tuples(st.just("clear"), namespaces, names),
    st.tuples(st.just("tick"), st.integers(1, 15)),
    st.just(("look",)),
)
# A world of a few agents first, then any changes to it.
operations = st.tuples(
    st.lists(upserts, min_size=3, max_size=12), st.lists(change, max_size=30)
).map(lambda parts: [*parts[0], *parts[1]])
steps = st.builds(
    lambda name, agent, caps, labels: Step(
        name=name,
        agent=agent,
        capabilities=caps,
        agent_selector={"match_labels": dict(labels)} if labels else None,
    ),
    st.sampled_from(("s1", "s2", "s3")),
    st.none() | st.sampled_from((*NAMES[:3], "id-1", "ghost")),
    st.lists(st.sampled_from(CAPS), max_size=1, unique=True),
    st.lists(st.sampled_from(LABELS), max_size=1),
)
# A pass's own steps: often several that compete for the same agents.
own_steps = st.lists(
    st.builds(
        lambda caps: Step(name="s", capabilities=caps),
        st.sampled_from(([], ["x"], ["x"], ["y"])),
    )
    | steps,
    min_size=1,
    max_size=3,
)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(operations, st.lists(steps, min_size=1, max_size=3))
def test_incremental_views_and_indexes_equal_the_views_built_from_scratch(
    ops: list[tuple[Any, ...]], probes: list[Step]
) -> None:
    world = World()
    for op in [*ops, ("look",)]:
        world.apply(op)
        if op[0] != "look":
            continue
        for ns in NAMESPACES:
            naive = world.naive(ns)
            pool = world.pools.namespace(ns, world.now)
            assert pool.views == naive
            assert set(pool.views) == set(naive)
            for probe in probes:
                fitting = {n for n, v in naive.items() if step_fits(probe, v)}
                assert set(pool.fitting(probe)) == fitting
                assert pool.count_fitting(probe) == len(fitting)
                assert pool.serves(probe) == serves_in(naive)(probe)
                free = [v for v in naive.values() if v.ready and v.free_slots > 0]
                best = select_agent(probe, free)
                got = next(pool.free_in_order(probe), None)
                assert got == best


def _waiter(ns: str, index: int, step: Step) -> Waiter:
    return Waiter((ns, f"w{index}"), 0, T0 + timedelta(seconds=index), (step,))


@PROPERTY
@given(operations, st.lists(steps, max_size=4), own_steps)
def test_a_pass_given_only_its_candidates_decides_as_with_every_agent(
    ops: list[tuple[Any, ...]], ahead_steps: list[Step], own: list[Step]
) -> None:
    world = World()
    for op in ops:
        world.apply(op)
    ns = "a"
    # Steps without dependencies, so one pass may start them all.
    own = [s.model_copy(update={"name": f"own{i}", "depends_on": []}) for i, s in enumerate(own)]
    waiters = [_waiter(ns, i, s) for i, s in enumerate(ahead_steps)]
    # A run that has a step running on an agent (which may be gone or busy by now).
    running = StepStatus(
        name=own[0].name,
        phase=StepPhase.RUNNING,
        agent=NAMES[0],
        task_id="uid:own0:0:1",
        attempt=1,
        dispatched_at=world.now,
    )
    for status in (WorkflowStatus(), WorkflowStatus(steps=[running])):
        full = after_waiters(world.naive(ns), waiters)
        pool = world.pools.namespace(ns, world.now)
        named = {e.agent for e in status.steps if e.agent}
        few = agents_for_pass(pool, own, named, iter(waiters))
        assert all(few[name] == full[name] for name in few)
        ref = WorkflowRef(namespace=ns, name="wf", uid="uid", created=T0)
        spec = WorkflowSpec(steps=own)
        everyone = reconcile(
            ref=ref, spec=spec, status=status, steps=own, agents=full, now=world.now
        )
        some = reconcile(
            ref=ref,
            spec=spec,
            status=status,
            steps=own,
            agents=few,
            now=world.now,
            count_fitting=pool.count_fitting,
        )
        assert some == everyone


def _idle(world: World, ns: str, name: str, caps: list[str], ago: int = 0) -> None:
    world.apply(("upsert", ns, name, caps, [], ("idle", ago), 1, False, None))


def test_a_view_expires_at_the_agents_heartbeat_deadline() -> None:
    world = World()
    _idle(world, "a", "ag-0", ["x"])
    assert world.pools.namespace("a", world.now).views["ag-0"].ready
    world.apply(("tick", 30))  # exactly at the deadline: still available
    assert world.pools.namespace("a", world.now).views == world.naive("a")
    assert world.pools.namespace("a", world.now).views["ag-0"].ready
    world.apply(("tick", 1))
    views = world.pools.namespace("a", world.now).views
    assert views == world.naive("a")
    assert views["ag-0"].offline
    assert not views["ag-0"].ready


def test_each_step_of_a_pass_gets_as_many_candidates_as_the_pass_has_steps() -> None:
    world = World()
    for i in range(4):
        _idle(world, "a", NAMES[i], ["x"])
    world.apply(("reserve", "a", NAMES[0], "w9"))  # busy now: last in dispatch order
    world.apply(("release", "a", NAMES[0]))
    own = [Step(name=f"own{i}", capabilities=["x"], depends_on=[]) for i in range(3)]
    pool = world.pools.namespace("a", world.now)
    few = agents_for_pass(pool, own, set(), iter(()))
    assert set(few) == {NAMES[1], NAMES[2], NAMES[3]}
    ref = WorkflowRef(namespace="a", name="wf", uid="uid", created=T0)
    decision = reconcile(
        ref=ref,
        spec=WorkflowSpec(steps=own),
        status=WorkflowStatus(),
        steps=own,
        agents=few,
        now=world.now,
        count_fitting=pool.count_fitting,
    )
    assert [d.agent for d in decision.dispatches] == [NAMES[1], NAMES[2], NAMES[3]]


def test_waiters_ahead_take_their_agents_first() -> None:
    world = World()
    for i in range(2):
        _idle(world, "a", NAMES[i], ["x"])
    pool = world.pools.namespace("a", world.now)
    ahead = [_waiter("a", 0, Step(name="s", capabilities=["x"]))]
    few = agents_for_pass(pool, [Step(name="own", capabilities=["x"])], set(), iter(ahead))
    assert set(few) == {NAMES[1]}
