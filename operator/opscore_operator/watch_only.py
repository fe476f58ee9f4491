"""kopf's change tracking, switched off: the operator has only `on.event` handlers.

For every watch event kopf builds the object's "essence" for its change-detecting handlers
(`on.create`, `on.update`, `on.field`): a deep copy of the whole body, status included,
then pruned. Level-based `on.event` handlers never look at it, and this operator has no
others (handlers.py), so that copy was pure cost: 0.85 ms of the operator's CPU per step
in B1 (py-spy: `DiffBaseStorage.build` under `_detect_causes`, 5 % of all samples).
Nothing is stored on the objects either way (kopf stores an essence only after a change
handler ran). Were a change handler ever added, it would see every event as a creation:
give it kopf's own storage back then.
"""

from __future__ import annotations

from collections.abc import Iterable

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    """An essence of nothing, never stored, never fetched."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None
