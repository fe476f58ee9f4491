"""The write-shapes measurement: what one run's figures are, when a run has failed, and how
rounds fold into the table's median and spread."""

from __future__ import annotations

from opscore_testbed.bench.spread import fold
from opscore_testbed.bench.write_shapes import SHAPES, Result, figures, line

SHAPE = {shape.name: shape for shape in SHAPES}
AGENT_JSON_PATCH = SHAPE["agent-status json patch, 4"]
SHARED_BY_5 = SHAPE["shared configmap, 5 per write"]


def result(**overrides: object) -> Result:
    values: dict[str, object] = {
        "shape": SHARED_BY_5,
        "window": 10.0,
        "writes_ok": 500,
        "errors": [],
        "served": 500,
        "latencies": [0.004] * 98 + [0.040] * 2,
        "cpu": {"kube_apiserver": 2.5, "etcd": 0.5, "bench": 1.0},
        "machine_cores": 0.6,
        "idle_cores": 0.01,
    }
    values.update(overrides)
    return Result(**values)  # type: ignore[arg-type]


def test_cpu_per_write_and_per_report_count_the_writes_kube_apiserver_served() -> None:
    row = figures(result())
    assert row["writes_per_s"] == 50.0
    assert row["apiserver_ms_per_write"] == 5.0  # 2.5 s over 500 writes
    assert row["apiserver_ms_per_report"] == 1.0  # each write carries 5 reports
    assert row["apiserver_cores"] == 0.25
    assert row["write_p99_ms"] == 40.0
    assert row["problems"] == []


def test_a_failed_write_fails_the_run() -> None:
    problems = figures(result(writes_ok=499, served=499, errors=["Invalid: 422"]))["problems"]
    assert problems == ["1 writes failed, e.g. Invalid: 422"]


def test_a_count_the_api_server_disagrees_with_fails_the_run() -> None:
    # Writes that failed client-side after the server served them, or writes of someone
    # else on the resource: the per-write figures would divide by the wrong count.
    problems = figures(result(served=520))["problems"]
    assert problems == ["kube-apiserver counted 520 writes, the client 500"]
    assert figures(result(served=504))["problems"] == []  # within COUNT_TOLERANCE


def test_a_run_with_no_write_fails() -> None:
    problems = figures(result(writes_ok=0, served=0, latencies=[]))["problems"]
    assert "no write succeeded" in problems


def test_rounds_fold_into_the_median_with_the_spread_beside_it() -> None:
    runs = [
        figures(result(shape=AGENT_JSON_PATCH, writes_ok=n, served=n, cpu={"kube_apiserver": c}))
        for n, c in ((2500, 10.0), (2500, 12.5), (2500, 15.0))
    ]
    text = line(fold(runs))
    assert text.startswith("| agent-status json patch, 4 | 1 | 250 | 5.00 [4.00-6.00] |")


def test_a_failed_round_fails_the_folded_row() -> None:
    runs = [figures(result()), figures(result(served=0, writes_ok=0, latencies=[]))]
    assert fold(runs)["problems"]


def test_every_shape_has_its_own_name_and_counts_the_resource_it_writes() -> None:
    assert len(SHAPE) == len(SHAPES)
    for shape in SHAPES:
        # The served count is read from apiserver_request_total under this resource.
        assert shape.counted_as.split("/")[0] == shape.watch.plural, shape.name
