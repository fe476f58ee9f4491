"""The API server's own request counters: how many writes a scenario cost."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from opscore_testbed.bench.kube import BenchKube

WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE"}


@dataclass(frozen=True)
class WriteCounts:
    """Write requests the API server served, by resource (subresource joined with '/')."""

    by_resource: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.by_resource.values())

    def __sub__(self, other: WriteCounts) -> WriteCounts:
        diff = Counter(self.by_resource)
        diff.subtract(other.by_resource)
        return WriteCounts(Counter({k: v for k, v in diff.items() if v}))


async def write_counts(kube: BenchKube) -> WriteCounts:
    """The API server's write counters now (subtract two readings for a scenario's cost)."""
    return parse_write_counts(await kube.raw_get("/metrics"))


def parse_write_counts(text: str) -> WriteCounts:
    """Sum `apiserver_request_total` over codes for write verbs, by resource; reads and
    other metrics are left out."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name not in ("apiserver_request", "apiserver_request_total"):
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            labels = sample.labels
            if labels.get("verb", "").upper() not in WRITE_VERBS:
                continue
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            counts[resource] += int(sample.value)
    return WriteCounts(counts)


async def served_requests(kube: BenchKube, *, verb: str, resource: str) -> int:
    """How many `verb` requests on `resource` ("agents/status") the API server answered
    with 2xx so far (subtract two readings for a window's count)."""
    return parse_served_requests(await kube.raw_get("/metrics"), verb=verb, resource=resource)


def parse_served_requests(text: str, *, verb: str, resource: str) -> int:
    """`apiserver_request_total` summed over 2xx codes for one verb and resource."""
    kind, _, subresource = resource.partition("/")
    total = 0
    for family in text_string_to_metric_families(text):
        if family.name not in ("apiserver_request", "apiserver_request_total"):
            continue
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_total")
                and labels.get("verb", "").upper() == verb.upper()
                and labels.get("resource") == kind
                and labels.get("subresource", "") == subresource
                and labels.get("code", "").startswith("2")
            ):
                total += int(sample.value)
    return total


Buckets = dict[float, float]  # upper bound (s) -> cumulative count, a histogram's buckets


def parse_histogram(text: str, family: str, labels: dict[str, str]) -> Buckets:
    """One histogram's cumulative buckets (`le` -> count), summed over the series whose
    labels include `labels` (e.g. every code of one verb and resource)."""
    buckets: Buckets = {}
    for parsed in text_string_to_metric_families(text):
        if parsed.name != family:
            continue
        for sample in parsed.samples:
            if not sample.name.endswith("_bucket"):
                continue
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            bound = float(sample.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def histogram_delta(after: Buckets, before: Buckets) -> Buckets:
    """The observations between two readings of one histogram."""
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def share_over(buckets: Buckets, bound: float) -> float:
    """The share of observations above `bound` seconds, which must be a bucket's bound."""
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return 0.0
    return 1.0 - buckets[bound] / total


async def apiserver_latency(kube: BenchKube, *, verb: str, resource: str) -> Buckets:
    """kube-apiserver's own latency histogram of `verb` requests on `resource`
    ("agents/status") so far, over every code (subtract two readings for a window's)."""
    kind, _, subresource = resource.partition("/")
    return parse_histogram(
        await kube.raw_get("/metrics"),
        "apiserver_request_duration_seconds",
        {"verb": verb, "resource": kind, "subresource": subresource},
    )
