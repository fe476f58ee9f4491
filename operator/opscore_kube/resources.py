"""The API resources Ops-Core reads and writes, as (group, version, plural) triples."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "opscore.opspawn.io"
VERSION = "v1alpha1"


@dataclass(frozen=True, slots=True)
class Resource:
    """Where a kind lives in the API: enough to build its URLs."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The collection path, or an object's path when `name` is given."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        ns = f"/namespaces/{namespace}" if namespace else ""
        obj = f"/{name}" if name else ""
        return f"{prefix}{ns}/{self.plural}{obj}"


AGENTS = Resource(GROUP, VERSION, "agents")
WORKFLOWS = Resource(GROUP, VERSION, "workflows")
WORKFLOW_TEMPLATES = Resource(GROUP, VERSION, "workflowtemplates")
WORKFLOW_SCHEDULES = Resource(GROUP, VERSION, "workflowschedules")
APPROVALS = Resource(GROUP, VERSION, "approvals")
WORKFLOW_TRIGGERS = Resource(GROUP, VERSION, "workflowtriggers")
SECRETS = Resource("", "v1", "secrets")
EVENTS = Resource("", "v1", "events")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
