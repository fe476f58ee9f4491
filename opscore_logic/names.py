"""From an AgentKit agent (its name, its id) to the Kubernetes object that holds it.

An Agent Ops-Core creates is named after the agent's AgentKit `agentName` when it knows
one (`agent_names_for`): that is the name people chose, and it survives an AgentKit
restart, which gives the agent a new id but not a new name. A report that arrives before
registration carries only the id, so that Agent is named after the id
(`agent_resource_name`) until the registration merges it into the named one.

AgentKit ids are free strings (uuid4 in practice, but anything in the wild); Kubernetes
names are DNS-1123 labels. The mapping is deterministic so that every sidecar and operator
process finds the same object without a lookup table, and it never maps two ids to one
name: an id that is already a valid name is used verbatim (a lowercase uuid4 is), any other
id is sanitised and suffixed with a hash of the original, so ids that differ only in
characters the sanitiser folds (case, punctuation, length) still get distinct names.

`agent_key` is the same idea for label values: a fixed-length hash, so a label selector
can find an Agent whatever its name (user-declared Agents are named by their users).
"""

from __future__ import annotations

import hashlib
import re

AGENT_KEY_LABEL = "opscore.opspawn.io/agent-key"

MAX_NAME_LENGTH = 63
_HASH_CHARS = 8
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_INVALID = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


def is_dns1123_label(value: str) -> bool:
    """Whether `value` is a valid DNS-1123 label (what Kubernetes accepts as a name here)."""
    return len(value) <= MAX_NAME_LENGTH and _LABEL.fullmatch(value) is not None


def _digest(agent_id: str) -> str:
    return hashlib.sha256(agent_id.encode("utf-8", "surrogatepass")).hexdigest()


def agent_resource_name(agent_id: str) -> str:
    """The Agent object name for an AgentKit id (deterministic, always a DNS-1123 label).

    Valid ids map to themselves so that `kubectl get agent <uuid>` just works. Others become
    `<sanitised prefix>-<8 hex of sha256(id)>` (or `agent-<hash>` when nothing survives
    sanitising); the hash keeps distinct ids apart.
    """
    if is_dns1123_label(agent_id):
        return agent_id
    suffix = _digest(agent_id)[:_HASH_CHARS]
    prefix = _DASHES.sub("-", _INVALID.sub("-", agent_id.lower())).strip("-")
    prefix = prefix[: MAX_NAME_LENGTH - _HASH_CHARS - 1].rstrip("-")
    return f"{prefix or 'agent'}-{suffix}"


_COLLISION_PREFIX = MAX_NAME_LENGTH - _HASH_CHARS - 1


def normalised_agent_name(agent_name: str | None) -> str | None:
    """`agentName` as a DNS-1123 label: lower-cased, every run of other characters one
    dash, trimmed to 63; None when nothing valid is left (no name, or only punctuation)."""
    if not agent_name:
        return None
    label = _DASHES.sub("-", _INVALID.sub("-", agent_name.lower())).strip("-")
    label = label[:MAX_NAME_LENGTH].rstrip("-")
    return label or None


def agent_names_for(agent_name: str | None, agent_id: str) -> tuple[str, ...]:
    """The resource names to try, best first, for a new Agent (each a DNS-1123 label).

    With a usable `agentName`: its normalised form, then that form (shortened) with
    `-<8 hex of sha256(agentName)>`, for when another agent's name normalised to the same
    label (`Researcher` and `researcher`). The suffix hashes the name, not the id, so it is
    the same after an AgentKit restart. Without one: the id-derived name. The caller falls
    back to `generateName` when every candidate is held by someone else.
    """
    label = normalised_agent_name(agent_name)
    if label is None or agent_name is None:
        return (agent_resource_name(agent_id),)
    suffix = _digest(agent_name)[:_HASH_CHARS]
    return label, f"{label[:_COLLISION_PREFIX].rstrip('-')}-{suffix}"


def agent_key(agent_id: str) -> str:
    """A label-safe key for an AgentKit id: 32 hex chars (128 bits) of sha256(id).

    Used as the value of `AGENT_KEY_LABEL`, so the sidecar can find an Agent declared under
    any name with one label-selected LIST.
    """
    return _digest(agent_id)[:32]
