"""Writes attributed to their writer from audit-log lines: Ops-Core's two ServiceAccounts,
the bench's admin, and the control plane apart; reads and unanswered requests not at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opscore_testbed.bench.audit import AuditLog, parse_audit_lines, writer_of


def line(
    user: str, verb: str, resource: str, sub: str = "", stage: str = "ResponseComplete"
) -> str:
    ref: dict[str, Any] = {"resource": resource, "namespace": "ns"}
    if sub:
        ref["subresource"] = sub
    return json.dumps({"stage": stage, "verb": verb, "user": {"username": user}, "objectRef": ref})


OPERATOR = "system:serviceaccount:bench-b1:opscore-operator"
SIDECAR = "system:serviceaccount:bench-b1:opscore-sidecar"


def test_each_identity_falls_in_its_own_column() -> None:
    assert writer_of(OPERATOR) == "operator"
    assert writer_of(SIDECAR) == "sidecar"
    assert writer_of("opscore-admin") == "bench"
    assert writer_of("system:apiserver") == "control-plane"
    assert writer_of("system:kube-controller-manager") == "control-plane"
    assert writer_of("system:serviceaccount:kube-system:opscore-other") == "control-plane"


def test_writes_are_counted_by_writer_and_resource_with_subresources() -> None:
    counted = parse_audit_lines(
        "\n".join(
            [
                line(OPERATOR, "patch", "workflows", "status"),
                line(OPERATOR, "patch", "workflows", "status"),
                line(OPERATOR, "create", "events"),
                line(SIDECAR, "patch", "agents", "status"),
                line("opscore-admin", "create", "workflows"),
                line("system:apiserver", "update", "leases"),
            ]
        )
    )
    assert counted.table() == {
        "operator": {"events": 1, "workflows/status": 2},
        "sidecar": {"agents/status": 1},
        "bench": {"workflows": 1},
        "control-plane": {"leases": 1},
    }
    assert counted.opscore_total == 4


def test_reads_other_stages_and_a_partial_line_are_not_writes() -> None:
    text = "\n".join(
        [
            line(OPERATOR, "get", "workflows"),
            line(OPERATOR, "watch", "workflows"),
            line(OPERATOR, "patch", "workflows", "status", stage="Panic"),
            line(OPERATOR, "patch", "workflows", "status")[:40],
        ]
    )
    assert parse_audit_lines(text).opscore_total == 0


def test_the_log_is_read_from_a_mark_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    assert log.mark() == 0  # no file yet: the API server has logged nothing
    path.write_text(line(OPERATOR, "patch", "workflows", "status") + "\n")
    mark = log.mark()
    with path.open("a") as out:
        out.write(line(SIDECAR, "patch", "agents", "status") + "\n")
    assert log.writes_since(mark).table() == {"sidecar": {"agents/status": 1}}
