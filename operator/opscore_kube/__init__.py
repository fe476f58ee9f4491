"""Asynchronous Kubernetes API access shared by the Ops-Core operator and sidecar."""

from opscore_kube.client import KubeClient
from opscore_kube.connection import Connection, load_connection
from opscore_kube.errors import Conflict, Gone, Invalid, KubeApiError, NotFound, Unavailable
from opscore_kube.resources import (
    AGENTS,
    APPROVALS,
    EVENTS,
    LEASES,
    SECRETS,
    WORKFLOW_SCHEDULES,
    WORKFLOW_TEMPLATES,
    WORKFLOW_TRIGGERS,
    WORKFLOWS,
    Resource,
)

__all__ = [
    "AGENTS",
    "APPROVALS",
    "EVENTS",
    "LEASES",
    "SECRETS",
    "WORKFLOWS",
    "WORKFLOW_SCHEDULES",
    "WORKFLOW_TEMPLATES",
    "WORKFLOW_TRIGGERS",
    "Conflict",
    "Connection",
    "Gone",
    "Invalid",
    "KubeApiError",
    "KubeClient",
    "NotFound",
    "Resource",
    "Unavailable",
    "load_connection",
]
