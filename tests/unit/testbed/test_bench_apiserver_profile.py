"""The API server profile's table: stages picked from `go tool pprof -top -cum` by name,
CPU per PATCH from the window's /proc figures."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_mock import MockerFixture

from opscore_testbed.bench.apiserver_profile import Measured, table

PPROF_TOP = "\n".join(
    [
        "File: kube-apiserver",
        "Duration: 13s, Total samples = 9.06s (69.69%)",
        "      flat  flat%   sum%        cum   cum%",
        "     0.01s  0.11%  0.11%      5.15s 56.84%  "
        "k8s.io/apiserver/pkg/endpoints/handlers.(*patcher).patchResource.func2",
        "     0.02s  0.22%  0.33%      5.08s 56.07%  "
        "k8s.io/apiserver/pkg/storage/etcd3.(*store).GuaranteedUpdate",
        "     0.01s  0.11%  0.44%      1.19s 13.13%  runtime.gcBgMarkWorker",
        "     0.00s  0.00%  0.44%      0.88s  9.71%  "
        "k8s.io/apimachinery/pkg/util/managedfields/internal.(*FieldManager).Update",
        "     0.00s  0.00%  0.44%      0.50s  5.52%  some/other.Function",
    ]
)


def test_the_table_names_each_stage_once_by_its_share(mocker: MockerFixture) -> None:
    run = mocker.patch("opscore_testbed.bench.apiserver_profile.subprocess.run")
    run.return_value.stdout = PPROF_TOP
    measured = Measured(
        results=[(0.010, 202, "idle"), (0.200, 202, "idle"), (0.003, 202, "active")],
        cpu={"kube_apiserver": 7.5, "sidecar": 3.0, "bench": 1.0},
        window=10.0,
        machine_cores=1.25,
        patches=1000,
        agents=100,
        pprof=b"profile",
        server_latency={0.025: 800, 0.05: 900, 0.1: 980, float("inf"): 1000},
    )
    lines = table(measured, 100, 10, Path("p.pprof"))
    text = "\n".join(lines)
    assert "kube-apiserver 7.5 ms of CPU per PATCH" in text
    assert "| kube_apiserver | 0.75 |" in text
    assert "| bench | 0.10 |" in text  # the load generator, on the same cores
    assert f"| the whole machine (of {os.cpu_count()}) | 1.25 |" in text
    assert "| PATCH handler, all | 57 % |" in text
    assert "| read-modify-write to etcd | 56 % |" in text
    assert "| managedFields bookkeeping | 10 % |" in text
    assert "| Go garbage collector | 13 % |" in text
    assert "| kube-apiserver itself | 1000 | 20.0 % | 10.0 % | 2.0 % |" in text
    assert "| the sidecar, around the call | 0 | - | - | - |" in text  # none read
    assert "some/other" not in text
    assert text.index("PATCH handler") < text.index("Go garbage collector")  # by share
