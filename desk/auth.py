"""Who is at the desk: login sessions (an HttpOnly cookie + a CSRF token the page sends back in
``X-CSRF-Token`` on every state-changing request) and scoped API tokens for machine clients.

Both are authenticators for the core's auth middleware. A cookie request that changes state
without the right CSRF token, or from another site's Origin, is not recognised (401): this
covers every plugin's routes, not only the desk's. Sessions and tokens are stored as SHA-256
digests; lookups are cached for ``CACHE_SECONDS`` (a logout or user edit clears the cache here;
other instances see it within that time).
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from callserver.web.auth import Principal, same_origin
from desk.models import User
from desk.passwords import token_digest
from desk.store import DeskStore

COOKIE = "desk_session"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PREFIX = "dsk_"
CACHE_SECONDS = 5.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str


SESSION = web.RequestKey("desk_session", Session)


def principal_of(user: User) -> Principal:
    return Principal("user", user.name, frozenset(user.roles), str(user.id), user.extension)


class SessionAuth:
    """The desk's two authenticators (``session`` and ``api_token``) with a short cache."""

    def __init__(self, store: DeskStore) -> None:
        self._store = store
        self._sessions: dict[bytes, tuple[float, Session | None]] = {}
        self._tokens: dict[bytes, tuple[float, Principal | None]] = {}

    def forget(self, digest: bytes | None = None) -> None:
        """Drop a cached session (logout) or, with no digest, every cached lookup."""
        if digest is None:
            self._sessions.clear()
            self._tokens.clear()
        else:
            self._sessions.pop(digest, None)

    async def session(self, request: web.Request) -> Principal | None:
        cookie = request.cookies.get(COOKIE, "")
        if not cookie or len(cookie) > 100:
            return None
        found = await self._session_for(token_digest(cookie))
        if found is None:
            return None
        if request.method not in SAFE_METHODS:
            given = request.headers.get(CSRF_HEADER, "")
            if not same_origin(request) or not hmac.compare_digest(given.encode(),
                                                                   found.csrf.encode()):
                return None  # fmt: skip
        request[SESSION] = found
        return principal_of(found.user)

    async def api_token(self, request: web.Request) -> Principal | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer " + TOKEN_PREFIX) or len(header) > 200:
            return None
        digest = token_digest(header[7:].strip())
        now = time.monotonic()
        cached = self._tokens.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self._store.token(digest)
        principal = None if row is None else Principal("api-token", row[1], frozenset(row[2]))
        self._remember(self._tokens, digest, (now + CACHE_SECONDS, principal))
        return principal

    async def _session_for(self, digest: bytes) -> Session | None:
        now = time.monotonic()
        cached = self._sessions.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self._store.session(digest)
        found = None if row is None else Session(row[0], row[1])
        self._remember(self._sessions, digest, (now + CACHE_SECONDS, found))
        return found

    @staticmethod
    def _remember(cache: dict[bytes, tuple[float, T]], key: bytes, value: tuple[float, T]) -> None:
        if len(cache) > 10_000:  # a flood of random cookies must not grow memory without end
            cache.clear()
        cache[key] = value
