"""Loading the F7 corpus (`chaos/corpus/*.yaml`) and expanding its generated values.

Big or deep inputs are described, not stored: `{$repeat: TEXT, times: N}`,
`{$nest: N}`, `{$keys: N}`, `{$copies: VALUE, times: N, numbered: KEY}` and
`{$time: SECONDS}` (see corpus/README.md).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).parent / "corpus"
FILES = ("manifests", "reports", "webhooks", "triggers")
#: Deeper than this, Python's json module cannot write the value: `dumps` splices it in.
MAX_NATIVE_DEPTH = 500


@dataclass(frozen=True)
class Deep:
    """An object nested `depth` levels deep, too deep to build and encode natively."""

    depth: int

    def json(self) -> str:
        return '{"a":' * self.depth + "{}" + "}" * self.depth


def load(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load((CORPUS / f"{name}.yaml").read_text())
    ids = [case["id"] for case in cases]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}.yaml: duplicate ids")
    return cases


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def expand(value: Any) -> Any:
    """The value with every generator replaced by what it describes."""
    if isinstance(value, list):
        return [expand(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$repeat" in value:
        return str(value["$repeat"]) * int(value["times"])
    if "$nest" in value:
        depth = int(value["$nest"])
        return Deep(depth) if depth > MAX_NATIVE_DEPTH else nested(depth)
    if "$keys" in value:
        return {f"k{i}": i for i in range(int(value["$keys"]))}
    if "$time" in value:
        return (datetime.now(UTC) + timedelta(seconds=float(value["$time"]))).isoformat()
    if "$copies" in value:
        copies = []
        for index in range(int(value["times"])):
            item = copy.deepcopy(expand(value["$copies"]))
            if value.get("numbered") and isinstance(item, dict):
                item[value["numbered"]] = f"s{index}"
            copies.append(item)
        return copies
    return {key: expand(item) for key, item in value.items()}


def dumps(value: Any) -> str:
    """JSON text of an expanded value, `Deep` parts included."""
    spliced: dict[str, Deep] = {}

    def swap(item: Any) -> Any:
        if isinstance(item, Deep):
            token = f"__deep_{len(spliced)}__"
            spliced[token] = item
            return token
        if isinstance(item, list):
            return [swap(x) for x in item]
        if isinstance(item, dict):
            return {k: swap(v) for k, v in item.items()}
        return item

    text = json.dumps(swap(value))
    for token, deep in spliced.items():
        text = text.replace(f'"{token}"', deep.json())
    return text
