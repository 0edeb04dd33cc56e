"""Who is making a request: the API token (machine clients) or what a plugin recognises
(e.g. the operator desk's session cookie). The auth middleware stores the result as
``request[PRINCIPAL]``; handlers and plugins read it from there.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from callserver.errors import CallserverError, ErrorCategory

ALL_ROLES = frozenset({"operator", "supervisor", "marketer", "admin"})


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``roles`` decide what it may see (the API token has all)."""

    kind: str
    """``token`` or ``user`` (or a plugin's own kind)."""
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    user_id: str = ""
    extension: str = ""
    """The operator's phone interface (``PJSIP/op101``), when bound."""


PRINCIPAL = web.RequestKey("principal", Principal)
Authenticator = Callable[[web.Request], Awaitable[Principal | None]]
"""Recognises a request (cookie, header …) or returns None; raising is a bug, not a refusal."""


def token_authenticator(api_token: str) -> Authenticator:
    """``Authorization: Bearer <api_token>`` (constant-time); an empty token admits no one."""
    expected = api_token.encode()

    async def check(request: web.Request) -> Principal | None:
        header = request.headers.get("Authorization", "")
        if not expected or not header.startswith("Bearer "):
            return None
        if hmac.compare_digest(header[7:].strip().encode(), expected):
            return Principal("token", "api-token", ALL_ROLES)
        return None

    return check


def same_origin(request: web.Request) -> bool:
    """A browser's ``Origin`` (when sent) names this server: WebSocket and form requests from
    another site are refused (cross-site WebSocket hijacking, CSRF)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    host = request.headers.get("Host", "")
    return origin in (f"http://{host}", f"https://{host}")


class AccessDenied(CallserverError):
    """The caller is authenticated but its roles do not allow this."""

    error_id = "forbidden"
    category = ErrorCategory.FORBIDDEN


def require_role(request: web.Request, *roles: str) -> Principal:
    """The request's principal when it has one of ``roles``; raises AccessDenied otherwise
    (the auth middleware already answered 401 for a request with no principal)."""
    denied = AccessDenied(message=f"needs one of the roles: {', '.join(roles)}", roles=roles)
    try:
        principal = request[PRINCIPAL]
    except KeyError:
        raise denied from None
    if not principal.roles & set(roles):
        raise denied
    return principal
