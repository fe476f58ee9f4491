"""Who may open the dashboard, and how a browser proves it.

Keys that open it: `OPSCORE_DASHBOARD_KEY` (read-only: it opens the dashboard and nothing
else, so it can be handed to people who must never be able to report as an agent), and
any *unscoped* API key (an operator's key already sees everything). A key scoped to some
agents gets 403: the dashboard shows every agent and every run, more than such a key may.

How a key arrives: `Authorization: Bearer KEY` (curl, scripts), or, for a browser, once as
`GET /dashboard?key=KEY` or the login form (`POST /dashboard`). Both set an HttpOnly
cookie and redirect to `/dashboard`, so the key leaves the address bar and the history,
and page scripts cannot read it. The cookie holds the key itself (base64url), checked on
every request like a header would be: rotating or revoking the key logs browsers out at
once, and the sidecar keeps no session state. `SameSite=Lax` because every dashboard
route is a read-only GET (login aside, which only sets the cookie), so a cross-site
request can change nothing; `Secure` when the request came over HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from enum import Enum

from fastapi import HTTPException, Request, Response, status

from opscore_sidecar.auth import KeyStore
from opscore_sidecar.components import Sidecar

COOKIE = "opscore_dashboard"
COOKIE_PATH = "/dashboard"


class Access(Enum):
    GRANTED = "granted"
    NO_KEY = "no key"
    INVALID = "invalid key"
    SCOPED = "scoped key"


def presented_key(request: Request) -> str | None:
    """The key from the Authorization header, else from the dashboard cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return _decode(request.cookies.get(COOKIE, ""))


def check(sidecar: Sidecar, key: str | None) -> Access:
    """Whether `key` opens the dashboard (comparing in constant time, as `auth` does)."""
    if not key:
        return Access.NO_KEY
    dashboard = sidecar.settings.dashboard_key
    if dashboard is not None and _same(key, dashboard.get_secret_value()):
        return Access.GRANTED
    keys: KeyStore = sidecar.keys
    principal = keys.authenticate(key)
    if principal is None:
        return Access.INVALID
    return Access.GRANTED if principal.scope is None else Access.SCOPED


def require(request: Request, sidecar: Sidecar) -> None:
    """For the JSON endpoints: 401 without a valid key, 403 for an agent-scoped key."""
    access = check(sidecar, presented_key(request))
    if access is Access.SCOPED:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=denial(access))
    if access is not Access.GRANTED:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=denial(access),
            headers={"WWW-Authenticate": "Bearer"},
        )


def denial(access: Access) -> str:
    return {
        Access.NO_KEY: "Missing key: Authorization: Bearer <key>, or log in at /dashboard",
        Access.INVALID: "Invalid key",
        Access.SCOPED: (
            "This API key is scoped to some agents; the dashboard needs OPSCORE_DASHBOARD_KEY "
            "or an unscoped API key"
        ),
        Access.GRANTED: "",
    }[access]


def set_cookie(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        COOKIE,
        _encode(key),
        path=_cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=_https(request),
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path=_cookie_path(request), httponly=True, samesite="lax", secure=_https(request)
    )


def _encode(key: str) -> str:
    """base64url: keys may hold characters a cookie value cannot (`;`, `,`, spaces)."""
    raw = base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass"))
    return raw.decode("ascii").rstrip("=")  # `=` would make the value a quoted string


def _decode(value: str) -> str | None:
    try:
        padded = value + "=" * (-len(value) % 4)
        return base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8") or None
    except (ValueError, UnicodeError):
        return None


def _cookie_path(request: Request) -> str:
    """`/dashboard`, under the prefix a proxy serves the sidecar at (ASGI root_path)."""
    return str(request.scope.get("root_path") or "").rstrip("/") + COOKIE_PATH


def _https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _same(a: str, b: str) -> bool:
    digest = hashlib.sha256
    return hmac.compare_digest(
        digest(a.encode("utf-8", "surrogatepass")).digest(),
        digest(b.encode("utf-8", "surrogatepass")).digest(),
    )
