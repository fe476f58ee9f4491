"""The agents of each namespace as the engine sees them, kept current incrementally.

Building every agent's view for every workflow pass costs O(agents) per pass, O(n^2) for
a cold start of n workflows. Instead, as an informer's indexers do, the views are kept
per namespace and recomputed only for the agents whose inputs changed: the Agent object
(the agents cache tells), its tasks in flight (the ledger tells), its AgentKit mark (the
marks tell), and the clock (an agent turns Offline at its heartbeat deadline: a heap of
deadlines says which views expire). On top of the views:

- indexes by capability, label and name, so the agents that fit a step are found by set
  intersection, never by testing every agent;
- the free agents (ready, with a slot) in `select_agent`'s order, so the best candidates
  for a step are the first fitting entries of one sorted list.

`views.agent_view` is the one rule for a view; `views.agent_views` (all agents, built
from scratch) is what this must always equal (tests/unit/test_agent_pool.py).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator, Set
from datetime import datetime
from typing import TypeVar

from opscore_logic.selection import AgentView, dispatch_order
from opscore_logic.workflow_model import Step
from opscore_operator.agentkit_marks import MissingInAgentKit
from opscore_operator.ledger import Ledger
from opscore_operator.store import Key, ObjectCache
from opscore_operator.views import agent_view

_NOTHING: frozenset[str] = frozenset()
_K = TypeVar("_K")


class NamespaceAgents:
    """The views of one namespace's agents, with the indexes described above."""

    def __init__(self) -> None:
        self.views: dict[str, AgentView] = {}
        self._seq: dict[str, int] = {}  # first-seen order (the agents cache's order)
        self._next_seq = 0
        self._all: set[str] = set()
        self._by_capability: dict[str, set[str]] = {}
        self._by_label: dict[tuple[str, str], set[str]] = {}
        self._by_name: dict[str, set[str]] = {}  # name, agentName, agentId -> agents
        self._free: list[tuple[datetime, str]] = []  # dispatch_order of the free agents
        self._serving: set[str] = set()  # ready, or not ready only because full (busy)

    # -- reading ------------------------------------------------------------------------

    def fitting(self, step: Step) -> Set[str]:
        """The agents `step_fits` (ready or not), by intersecting indexes (C set
        operations, smallest first). Do not modify the result: it may be an index."""
        if step.agent is not None:
            return self._by_name.get(step.agent, _NOTHING)
        selector = step.agent_selector.match_labels if step.agent_selector else {}
        sets = [self._by_capability.get(c, _NOTHING) for c in set(step.capabilities or ())]
        sets += [self._by_label.get(label, _NOTHING) for label in selector.items()]
        if not sets:
            return self._all
        sets.sort(key=len)
        found: Set[str] = sets[0]
        for other in sets[1:]:
            if not found:
                break
            found = found & other
        return found

    def count_fitting(self, step: Step) -> int:
        return len(self.fitting(step))

    def serves(self, step: Step) -> bool:
        """Whether some agent that fits `step` is ready or merely busy: a step queued for
        it waits for capacity, not for a person."""
        return not self._serving.isdisjoint(self.fitting(step))

    def free_count(self) -> int:
        """How many agents are ready with a free slot."""
        return len(self._free)

    def free_in_order(self, step: Step) -> Iterator[AgentView]:
        """The free agents that fit `step`, best first (`select_agent`'s order)."""
        fitting = self.fitting(step)
        if len(fitting) < len(self._free) // 4:
            free = [v for n in fitting if _is_free(v := self.views[n])]
            free.sort(key=dispatch_order)
            yield from free
            return
        for _, name in self._free:
            if name in fitting:
                yield self.views[name]

    def free_names(self) -> set[str]:
        return {name for _, name in self._free}

    def in_seen_order(self, names: Set[str]) -> list[str]:
        return sorted((n for n in names if n in self._seq), key=self._seq.__getitem__)

    # -- writing ------------------------------------------------------------------------

    def put(self, view: AgentView) -> None:
        name = view.name
        old = self.views.get(name)
        if old == view:
            return
        if old is not None:
            self._unindex(old)
        else:
            self._seq[name] = self._next_seq
            self._next_seq += 1
        self.views[name] = view
        self._index(view)

    def drop(self, name: str) -> None:
        old = self.views.pop(name, None)
        if old is not None:
            self._unindex(old)
            del self._seq[name]

    def _index(self, view: AgentView) -> None:
        name = view.name
        self._all.add(name)
        for capability in view.capabilities:
            self._by_capability.setdefault(capability, set()).add(name)
        for label in view.labels.items():
            self._by_label.setdefault(label, set()).add(name)
        for alias in _aliases(view):
            self._by_name.setdefault(alias, set()).add(name)
        if _is_free(view):
            bisect.insort(self._free, dispatch_order(view))
        if view.ready or view.busy:
            self._serving.add(name)

    def _unindex(self, view: AgentView) -> None:
        name = view.name
        self._all.discard(name)
        self._serving.discard(name)
        for capability in view.capabilities:
            _discard(self._by_capability, capability, name)
        for label in view.labels.items():
            _discard(self._by_label, label, name)
        for alias in _aliases(view):
            _discard(self._by_name, alias, name)
        if _is_free(view):
            entry = dispatch_order(view)
            index = bisect.bisect_left(self._free, entry)
            if index < len(self._free) and self._free[index] == entry:
                del self._free[index]


class AgentPools:
    """`NamespaceAgents` for every namespace, refreshed lazily from what changed."""

    def __init__(self, *, agents: ObjectCache, ledger: Ledger, missing: MissingInAgentKit) -> None:
        self.agents = agents
        self.ledger = ledger
        self.missing = missing
        self._namespaces: dict[str, NamespaceAgents] = {}
        self._dirty: dict[str, dict[str, None]] = {}  # per namespace, in order of change
        self._deadlines: list[tuple[datetime, str, str]] = []  # heap: (when, ns, name)
        self._pushed: dict[Key, datetime] = {}  # the deadline in the heap per agent
        agents.listeners.append(self.touch)
        ledger.listeners.append(self.touch)
        missing.listeners.append(self.touch)

    def touch(self, key: Key) -> None:
        """Something `key`'s view derives from changed."""
        namespace, name = key
        if self.agents.get(key) is None:
            self._pushed.pop(key, None)
            pool = self._namespaces.get(namespace)
            if pool is not None:
                pool.drop(name)
            dirty = self._dirty.get(namespace)
            if dirty is not None:
                dirty.pop(name, None)
            return
        self._dirty.setdefault(namespace, {})[name] = None

    def namespace(self, namespace: str, now: datetime) -> NamespaceAgents:
        """The namespace's views as of `now`."""
        while self._deadlines and self._deadlines[0][0] < now:
            when, ns, name = heapq.heappop(self._deadlines)
            if self._pushed.get((ns, name)) == when:
                del self._pushed[(ns, name)]
                self._dirty.setdefault(ns, {})[name] = None
        pool = self._namespaces.setdefault(namespace, NamespaceAgents())
        dirty = self._dirty.pop(namespace, None)
        if dirty:
            for name in dirty:
                self._refresh(pool, (namespace, name), now)
        return pool

    def _refresh(self, pool: NamespaceAgents, key: Key, now: datetime) -> None:
        view, deadline = agent_view(
            cache=self.agents, ledger=self.ledger, missing=self.missing, key=key, now=now
        )
        if view is None:
            pool.drop(key[1])
            return
        pool.put(view)
        if deadline is not None and deadline >= now and self._pushed.get(key) != deadline:
            self._pushed[key] = deadline
            heapq.heappush(self._deadlines, (deadline, key[0], key[1]))


def _is_free(view: AgentView) -> bool:
    return view.ready and view.free_slots > 0


def _aliases(view: AgentView) -> set[str]:
    return {a for a in (view.name, view.agent_name, view.agent_id) if a is not None}


def _discard(index: dict[_K, set[str]], k: _K, name: str) -> None:
    names = index.get(k)
    if names is not None:
        names.discard(name)
        if not names:
            del index[k]
