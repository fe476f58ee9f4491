"""Counting what ended attempts used: the agent's status counters and the Prometheus
counters, by namespace, agent and model.

Called only after the workflow status write that ended the attempts succeeded (that write
holds the step's usage, and is the record), so an attempt is counted here once: a pass
whose write failed is decided again from the stored status, which still shows the attempt
running, and its release is counted by the pass that does write it. If the operator dies
between the workflow write and the agent's, the agent's counters miss that attempt (like
`tasksSucceeded`); the step's and the run's usage do not.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter

from opscore_logic.attribution import ModelUsage
from opscore_logic.decision import Decision
from opscore_logic.usage import total
from opscore_operator.ledger import Ledger

TOKENS = Counter(
    "opscore_usage_tokens_total",
    "Tokens agents reported, by kind (input, output, total) and whether a step was found "
    "for them (attribution: step, unattributed).",
    ["namespace", "agent", "model", "kind", "attribution"],
)
COST = Counter(
    "opscore_usage_cost_total",
    "Cost agents reported, by ISO 4217 currency and attribution (step, unattributed).",
    ["namespace", "agent", "model", "currency", "attribution"],
)
# `model` is free text from agents: past this many distinct values per process, further
# ones are counted as `other`, so a misbehaving agent cannot grow the series without end.
MAX_MODELS = 64
OTHER_MODEL = "other"
_models: set[str] = set()


def _model_label(model: str) -> str:
    if model in _models:
        return model
    if len(_models) >= MAX_MODELS:
        return OTHER_MODEL
    _models.add(model)
    return model


def _export(namespace: str, agent: str, items: Iterable[ModelUsage], attribution: str) -> None:
    for item in items:
        model = _model_label(item.model)
        usage = item.usage
        for kind, value in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("total", usage.total_tokens),
        ):
            TOKENS.labels(namespace, agent, model, kind, attribution).inc(value)
        for currency, cost in usage.cost.items():
            COST.labels(namespace, agent, model, currency, attribution).inc(cost)


def count_usage(namespace: str, decision: Decision, ledger: Ledger) -> None:
    """Count the usage of the attempts `decision` ended (its status is written)."""
    for release in decision.releases:
        used = release.usage
        if not used.attributed and not used.unattributed:
            continue
        _export(namespace, release.agent, used.attributed, "step")
        _export(namespace, release.agent, used.unattributed, "unattributed")
        ledger.add_usage(
            (namespace, release.agent),
            attributed=used.attributed_total(),
            unattributed=total(m.usage for m in used.unattributed),
        )
