"""The waiting room's per-namespace order equals sorting every waiter by rank."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from opscore_logic.workflow_model import Step
from opscore_operator.waiting import Waiter, WaitingRoom

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
STEP = Step(name="s", capabilities=["x"])


def waiter(ns: str, name: str, priority: int, age: int, steps: int = 1) -> Waiter:
    return Waiter((ns, name), priority, T0 + timedelta(seconds=age), (STEP,) * steps)


def test_higher_priority_first_then_older() -> None:
    room = WaitingRoom()
    room.set(waiter("ns", "young", 0, 5))
    room.set(waiter("ns", "old", 0, 1))
    room.set(waiter("ns", "urgent", 10, 9))
    room.set(waiter("other", "elsewhere", 99, 0))
    assert [w.workflow[1] for w in room.in_namespace("ns")] == ["urgent", "old", "young"]
    assert [w.workflow[1] for w in room.ahead_of(waiter("ns", "young", 0, 5).rank, "ns")] == [
        "urgent",
        "old",
    ]


def test_a_waiter_without_steps_leaves_and_a_changed_one_moves() -> None:
    room = WaitingRoom()
    room.set(waiter("ns", "a", 0, 1))
    room.set(waiter("ns", "b", 0, 2))
    room.set(waiter("ns", "a", 0, 3))  # same workflow, new rank
    assert [w.workflow[1] for w in room.in_namespace("ns")] == ["b", "a"]
    room.set(waiter("ns", "b", 0, 2, steps=0))
    assert [w.workflow[1] for w in room.in_namespace("ns")] == ["a"]
    room.remove(("ns", "a"))
    assert len(room) == 0
    assert list(room.in_namespace("ns")) == []


ops = st.lists(
    st.tuples(
        st.sampled_from(("set", "remove")),
        st.sampled_from(("n1", "n2")),
        st.sampled_from(tuple("abcdef")),
        st.integers(-2, 2),
        st.integers(0, 5),
        st.integers(0, 2),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(-2, 2), st.integers(0, 5), st.sampled_from(tuple("abcdef")))
def test_ahead_of_equals_the_sorted_room_filtered(
    changes: list[tuple[str, str, str, int, int, int]], priority: int, age: int, name: str
) -> None:
    room = WaitingRoom()
    held: dict[tuple[str, str], Waiter] = {}
    for verb, ns, wf, prio, when, steps in changes:
        if verb == "set":
            w = waiter(ns, wf, prio, when, steps)
            room.set(w)
            if steps:
                held[(ns, wf)] = w
            else:
                held.pop((ns, wf), None)
        else:
            room.remove((ns, wf))
            held.pop((ns, wf), None)
    assert len(room) == len(held)
    ordered = sorted(held.values(), key=lambda w: w.rank)
    assert room.in_order() == ordered
    for ns in ("n1", "n2"):
        rank = waiter(ns, name, priority, age).rank
        expected = [w for w in ordered if w.workflow[0] == ns and w.rank < rank]
        assert list(room.ahead_of(rank, ns)) == expected
        assert list(room.in_namespace(ns)) == [w for w in ordered if w.workflow[0] == ns]
