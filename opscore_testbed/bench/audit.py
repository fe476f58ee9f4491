"""Writes attributed to their writer, from the API server's audit log.

`apiserver_request_total` counts writes cluster-wide: the control plane's own Lease renewals
and the bench's creates land in the same counters as Ops-Core's (issue 20: B5's "cold start:
4 writes" were 0 of ours). The audit log (`ControlPlane(audit=True)`) names the user of every
write, and the bench runs the operator and the sidecar as their own ServiceAccounts, so each
write falls in one column: `operator`, `sidecar`, `bench` (the admin the bench creates
workflows as), `control-plane` (everyone else: kube-apiserver's and kube-controller-manager's
leases, namespace and ServiceAccount controllers).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
#: The ServiceAccount names `Bench.stack` runs the two Ops-Core processes as.
OPERATOR_ACCOUNT = "opscore-operator"
SIDECAR_ACCOUNT = "opscore-sidecar"
#: The admin client certificate's CN (opscore_testbed/pki.py): the bench and kubectl.
BENCH_USER = "opscore-admin"
OPSCORE_WRITERS = ("operator", "sidecar")


def writer_of(username: str) -> str:
    """The column a request's user falls in."""
    if username.startswith("system:serviceaccount:"):
        account = username.rsplit(":", 1)[-1]
        if account == OPERATOR_ACCOUNT:
            return "operator"
        if account == SIDECAR_ACCOUNT:
            return "sidecar"
    if username == BENCH_USER:
        return "bench"
    return "control-plane"


@dataclass(frozen=True)
class WritesByWriter:
    """Write requests the API server answered, by (writer, resource[/subresource])."""

    counts: Counter[tuple[str, str]]

    def writer_total(self, writer: str) -> int:
        return sum(n for (who, _), n in self.counts.items() if who == writer)

    @property
    def opscore_total(self) -> int:
        """The operator's and the sidecar's writes: what per-step figures count."""
        return sum(self.writer_total(w) for w in OPSCORE_WRITERS)

    def table(self) -> dict[str, dict[str, int]]:
        """{writer: {resource: count}}, for the results JSON."""
        out: dict[str, dict[str, int]] = {}
        for (who, resource), n in sorted(self.counts.items()):
            out.setdefault(who, {})[resource] = n
        return out


class AuditLog:
    """Reads the audit log from a byte offset: `mark()` before a window, `writes_since()`
    after it. Lines are whole once their request has been answered (blocking mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        """The log's end now (0 when the API server has not logged anything yet)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def writes_since(self, offset: int) -> WritesByWriter:
        with self.path.open("rb") as log:
            log.seek(offset)
            return parse_audit_lines(log.read().decode())


def parse_audit_lines(text: str) -> WritesByWriter:
    """Count write requests by writer and resource in audit-log JSON lines. Only the
    ResponseComplete stage counts (one line per answered request; a panic line is an
    unanswered one); a partial line (one being written) is skipped."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITE_VERBS:
            continue
        ref = event.get("objectRef") or {}
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        user = (event.get("user") or {}).get("username", "")
        counts[writer_of(user), resource] += 1
    return WritesByWriter(counts)
