"""The plugin's only contact with the API server: the official `kubernetes` client.

The connection is chosen the way kubectl chooses it (KUBECONFIG, possibly a `:`-separated
list, or `--kubeconfig`; `--context`; the namespace from `-n` or the context), so
`kubectl opscore` and `kubectl get` look at the same cluster and namespace. Failures come
out as `CliError`s worded like kubectl's (`Error from server (NotFound): ...`), so people
and scripts that know kubectl's messages know these.

Synchronous on purpose: a command does one to three requests, one after the other.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

GROUP = "opscore.opspawn.io"
VERSION = "v1alpha1"
REQUEST_TIMEOUT = 30
MERGE_PATCH = "application/merge-patch+json"

Body = dict[str, Any]


class CliError(Exception):
    """Something to print on stderr (already worded for people) before exiting with 1."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to look: kubeconfig file(s), context, namespace (None: the context's)."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


class Cluster:
    """Workflows, templates, agents and Approvals of one namespace."""

    def __init__(self, api: Any, namespace: str) -> None:
        self._api = k8s.CustomObjectsApi(api)
        self._auth = k8s.AuthenticationV1Api(api)
        self.namespace = namespace

    @classmethod
    def connect(cls, target: Target) -> Cluster:
        config_file = target.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            contexts, current = k8s_config.list_kube_config_contexts(config_file)  # type: ignore[no-untyped-call]
            if target.context is not None:
                matching = [c for c in contexts if c.get("name") == target.context]
                if not matching:
                    raise CliError(f'error: context "{target.context}" does not exist')
                current = matching[0]
            api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=config_file, context=target.context, persist_config=False
            )
        except (ConfigException, OSError) as exc:
            raise CliError(f"error: cannot load kubeconfig {config_file}: {exc}") from None
        namespace = (
            target.namespace or ((current or {}).get("context") or {}).get("namespace") or "default"
        )
        return cls(api, namespace)

    def workflow(self, name: str) -> Body:
        return self._call("get_namespaced_custom_object", "workflows", name=name)

    def template(self, name: str) -> Body | None:
        """The WorkflowTemplate, or None when it is gone or not readable (the run's
        status still names its steps)."""
        try:
            return self._call("get_namespaced_custom_object", "workflowtemplates", name=name)
        except CliError:
            return None

    def workflows(self) -> list[Body]:
        items: list[Body] = self._call("list_namespaced_custom_object", "workflows")["items"]
        return items

    def agents(self) -> list[Body]:
        items: list[Body] = self._call("list_namespaced_custom_object", "agents")["items"]
        return items

    def patch_workflow(self, name: str, patch: Body) -> Body:
        """A JSON merge patch (the client would pick strategic merge, which CRs lack)."""
        return self._call(
            "patch_namespaced_custom_object",
            "workflows",
            name=name,
            body=patch,
            _content_type=MERGE_PATCH,
        )

    def create_approval(self, body: Body) -> Body:
        return self._call("create_namespaced_custom_object", "approvals", body=body)

    def whoami(self) -> Body:
        """Who the API server says this client is: `{username, groups, ...}` from a
        SelfSubjectReview (what `kubectl auth whoami` asks)."""
        review = k8s.V1SelfSubjectReview(
            api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"
        )
        try:
            answer = self._auth.create_self_subject_review(review, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise CliError(server_error(exc.status, exc.reason, exc.body)) from None
        except urllib3.exceptions.HTTPError as exc:
            raise CliError(f"Unable to connect to the server: {exc}") from None
        info = answer.status.user_info if answer.status is not None else None
        if info is None or not info.username:
            raise CliError("error: the API server did not say who you are (SelfSubjectReview)")
        return {"username": info.username, "groups": list(info.groups or [])}

    def _call(self, method: str, plural: str, **kwargs: Any) -> Body:
        try:
            result: Body = getattr(self._api, method)(
                GROUP,
                VERSION,
                self.namespace,
                plural,
                _request_timeout=REQUEST_TIMEOUT,
                **kwargs,
            )
        except ApiException as exc:
            raise CliError(server_error(exc.status, exc.reason, exc.body)) from None
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise CliError(f"Unable to connect to the server: {reason}") from None
        return result


def server_error(status: int | None, reason: str | None, body: str | bytes | None) -> str:
    """kubectl's wording: `Error from server (Reason): message` from the API's Status body."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        decoded = json.loads(body or b"")
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        why = decoded.get("reason") or reason or "Unknown"
        return f"Error from server ({why}): {decoded.get('message') or reason}"
    return f"Error from server ({reason or 'Unknown'}): {status} {body or ''}".rstrip()
