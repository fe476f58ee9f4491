"""Errors raised by the Kubernetes API client, one class per answer callers act on."""

from __future__ import annotations


class KubeApiError(Exception):
    """The API server answered with an error status (or could not be reached)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(KubeApiError):
    """404: the object (or its kind) does not exist."""


class Conflict(KubeApiError):
    """409: already exists, or a resourceVersion precondition failed."""


class Invalid(KubeApiError):
    """422 (or 400): the API server rejected the object; `message` says why."""


class Gone(KubeApiError):
    """410: a watch's resourceVersion is older than the API server keeps; only a new LIST
    can go on from there."""


class Unavailable(KubeApiError):
    """The API server could not be reached or answered 5xx/429 past our retries."""


def error_for(status: int, reason: str, message: str) -> KubeApiError:
    """The most specific error class for an HTTP status."""
    if status == 404:
        return NotFound(status, reason, message)
    if status == 409:
        return Conflict(status, reason, message)
    if status in (400, 422):
        return Invalid(status, reason, message)
    if status == 410:
        return Gone(status, reason or "Expired", message)
    if status == 0 or status == 429 or status >= 500:
        return Unavailable(status, reason, message)
    return KubeApiError(status, reason, message)
