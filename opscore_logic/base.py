"""The base every resource model shares: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """A model whose JSON form is what Kubernetes stores (camelCase, no nulls).

    Unknown keys are ignored, not rejected: the API server has already validated the
    object against the CRD schema, and an older operator must not choke on newer fields.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=False,
    )

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict as stored in the API (camelCase keys, no None values)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as the API server writes it (`Z` suffix), or None when it is absent
    or unreadable: callers decide what a missing time means, none of them may crash on it."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
