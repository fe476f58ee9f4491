"""The test bed API server's audit log: which writes it records and how.

The benchmarks attribute every write to its writer from this log (opscore_testbed/bench/
audit.py); `ControlPlane(audit=True)` turns it on, and it is off by default because every
write then costs the API server one more synchronous log line.
"""

from __future__ import annotations

from pathlib import Path

# Writes at Metadata level (user, verb, resource, code; no bodies), nothing else: the cheapest
# policy that attributes every write to its writer (opscore_testbed/bench/audit.py reads it).
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
"""


def audit_args(*, policy: Path, log: Path) -> list[str]:
    """kube-apiserver flags for the audit log at `log`, writing its policy to `policy`.
    Blocking mode: a line is in the file before the client has its answer, so a reader
    after a quiet period misses nothing."""
    policy.write_text(AUDIT_POLICY)
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={log}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
    ]
