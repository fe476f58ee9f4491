"""API-key authentication for agents: `Authorization: Bearer <key>`.

Keys come from `OPSCORE_API_KEY` (one key, allowed for every agent) and/or
`OPSCORE_API_KEYS_FILE` (one key per line, optionally scoped to some agent ids). The file is
re-read whenever it changes, so rotating a key is editing a Secret, not restarting.

The presented key is compared with every configured key, always all of them, in constant
time over fixed-length digests: neither timing nor an early exit tells a caller which key
(or how long a key) came close. Keys are never logged; only their count is.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

logger = logging.getLogger("opscore.sidecar.auth")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A configured key (as its digest) and the agent ids it may act for (None: all)."""

    digest: bytes
    scope: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request authenticated as: the union of what its matching keys allow.

    `key_id` is the digest of the key presented (what its rate limit is counted by); it
    identifies the key without holding it, and is never logged.
    """

    scope: frozenset[str] | None
    key_id: bytes = b""

    def may_act_for(self, agent_id: str) -> bool:
        return self.scope is None or agent_id in self.scope


def parse_keys_file(text: str) -> list[ApiKey]:
    """Parse the keys file: `KEY` or `KEY agentId1,agentId2` per line, `#` comment lines.

    A scope with no ids in it (`KEY ,`) allows nothing: failing closed beats guessing.
    """
    keys: list[ApiKey] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, *rest = line.split(None, 1)
        if not rest:
            keys.append(ApiKey(_digest(key)))
            continue
        ids = frozenset(part.strip() for part in rest[0].split(",") if part.strip())
        keys.append(ApiKey(_digest(key), ids))
    return keys


class KeyStore:
    """The configured keys; `refresh()` re-reads the keys file when its stat changes."""

    def __init__(self, *, single_key: str | None = None, keys_file: Path | None = None) -> None:
        self._static = [ApiKey(_digest(single_key))] if single_key else []
        self._file = keys_file
        self._file_keys: list[ApiKey] = []
        self._file_stamp: tuple[int, int, int] | None = None
        self.refresh()

    @property
    def loaded(self) -> bool:
        """Whether any key is configured (without one, every request gets 401)."""
        return bool(self._static or self._file_keys)

    def refresh(self) -> None:
        """Reload the keys file if its mtime (or size, or inode) changed since last time.

        One stat() per request: cheap, and it follows Kubernetes' atomic symlink swaps of
        mounted Secrets. A file that cannot be read counts as holding no keys (fail closed:
        deleting the file must revoke its keys).
        """
        if self._file is None:
            return
        try:
            st = os.stat(self._file)
        except OSError as exc:
            if self._file_stamp is not None or self._file_keys:
                logger.error("API keys file unreadable, its keys are revoked: %s", exc.strerror)
            self._file_stamp, self._file_keys = None, []
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._file_stamp:
            return
        try:
            keys = parse_keys_file(self._file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            logger.error("API keys file unreadable, its keys are revoked: %r", type(exc).__name__)
            self._file_stamp, self._file_keys = None, []
            return
        self._file_stamp, self._file_keys = stamp, keys
        logger.info("API keys loaded", extra={"keys": len(keys), "file": str(self._file)})

    def authenticate(self, token: str) -> Principal | None:
        """The principal for a presented key, or None when no configured key matches."""
        self.refresh()
        presented = _digest(token)
        matched = False
        unscoped = False
        scope: set[str] = set()
        for key in (*self._static, *self._file_keys):
            hit = hmac.compare_digest(presented, key.digest)
            matched |= hit
            if hit:
                if key.scope is None:
                    unscoped = True
                else:
                    scope |= key.scope
        if not matched:
            return None
        return Principal(None if unscoped else frozenset(scope), key_id=presented)


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="OpsCoreApiKey",
    description="An Ops-Core API key (OPSCORE_API_KEY or a line of OPSCORE_API_KEYS_FILE).",
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: a valid Bearer key, else 401 with `WWW-Authenticate: Bearer`.

    `async` although it never awaits: FastAPI runs plain `def` dependencies in a thread
    pool, a hop per dependency per report on the heartbeat path.
    """
    if credentials is None or not credentials.credentials:
        raise _unauthorized("Missing bearer token (Authorization: Bearer <OPSCORE_API_KEY>)")
    store = request.app.state.keys
    assert isinstance(store, KeyStore)
    principal = store.authenticate(credentials.credentials)
    if principal is None:
        raise _unauthorized("Invalid API key")
    return principal


async def require_agent_access(
    agentId: Annotated[str, PathParam(description="The agent's AgentKit id.")],
    principal: Annotated[Principal, Depends(require_api_key)],
) -> Principal:
    """FastAPI dependency: the key must be allowed to act for the path's agent, else 403."""
    if not principal.may_act_for(agentId):
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"This API key is not allowed to act for agent {agentId!r}",
        )
    return principal
