"""PostgreSQL tables of the desk (``migrations/0001_desk.sql``). Every query has a deadline
(``timeout`` seconds); library errors become ``callserver.store.errors.StoreError``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from callserver.store.errors import StoreConflict
from callserver.store.postgres import store_errors
from desk.errors import DeskConflict, DeskNotFound
from desk.models import Outcome, User, UserInput

_USER_COLS = "id, login, name, roles, extension, queues, skills, active"


def _user(row: Any) -> User:
    return User(row["id"], row["login"], row["name"], tuple(row["roles"]), row["extension"],
                tuple(row["queues"]), tuple(row["skills"]), row["active"])  # fmt: skip


class DeskStore:
    def __init__(self, pool: asyncpg.Pool, *, timeout: float = 3.0) -> None:
        self._pool = pool
        self._timeout = timeout

    @contextlib.asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[Any]:
        with store_errors(f"desk: {what}"):
            async with asyncio.timeout(self._timeout), self._pool.acquire() as conn:
                yield conn

    # users ------------------------------------------------------------------------------
    async def count_users(self) -> int:
        async with self._conn("count users") as c:
            return int(await c.fetchval("SELECT count(*) FROM desk_users"))

    async def create_user(self, u: UserInput, password_hash: str) -> User:
        """Raises DeskConflict when the login or the extension is taken."""
        try:
            async with self._conn("create user") as c:
                row = await c.fetchrow(
                    "INSERT INTO desk_users (login, name, password_hash, roles, extension, queues,"
                    f" skills, active) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING {_USER_COLS}",
                    u.login, u.name, password_hash, list(u.roles), u.extension, list(u.queues),
                    list(u.skills), u.active,
                )  # fmt: skip
        except StoreConflict as exc:
            raise DeskConflict(message="login or extension already taken") from exc
        return _user(row)

    async def update_user(self, user_id: int, u: UserInput, password_hash: str | None) -> User:
        """Raises DeskNotFound / DeskConflict."""
        try:
            async with self._conn("update user") as c:
                row = await c.fetchrow(
                    "UPDATE desk_users SET login=$2, name=$3, roles=$4, extension=$5, queues=$6,"
                    " skills=$7, active=$8, password_hash=coalesce($9, password_hash),"
                    f" updated_at=now() WHERE id=$1 RETURNING {_USER_COLS}",
                    user_id, u.login, u.name, list(u.roles), u.extension, list(u.queues),
                    list(u.skills), u.active, password_hash,
                )  # fmt: skip
                if row is not None and (password_hash is not None or not u.active):
                    await c.execute("DELETE FROM desk_sessions WHERE user_id=$1", user_id)
        except StoreConflict as exc:
            raise DeskConflict(message="login or extension already taken") from exc
        if row is None:
            raise DeskNotFound(message=f"no user {user_id}")
        return _user(row)

    async def users(self) -> list[User]:
        async with self._conn("list users") as c:
            rows = await c.fetch(f"SELECT {_USER_COLS} FROM desk_users ORDER BY name")
        return [_user(r) for r in rows]

    async def credentials(self, login: str) -> tuple[User, str] | None:
        async with self._conn("read credentials") as c:
            row = await c.fetchrow(
                f"SELECT {_USER_COLS}, password_hash FROM desk_users WHERE login=$1 AND active",
                login,
            )
        return None if row is None else (_user(row), row["password_hash"])

    # sessions ---------------------------------------------------------------------------
    async def create_session(self, user_id: int, digest: bytes, csrf: str, ttl: float) -> None:
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        async with self._conn("create session") as c:
            await c.execute(
                "INSERT INTO desk_sessions (token_hash, user_id, csrf, expires_at)"
                " VALUES ($1,$2,$3,$4)", digest, user_id, csrf, expires,
            )  # fmt: skip
            await c.execute("DELETE FROM desk_sessions WHERE expires_at < now()")

    async def session(self, digest: bytes) -> tuple[User, str] | None:
        """The live session's user and CSRF token, or None (unknown, expired, user disabled)."""
        async with self._conn("read session") as c:
            row = await c.fetchrow(
                f"SELECT {', '.join('u.' + k for k in _USER_COLS.split(', '))}, s.csrf"
                " FROM desk_sessions s JOIN desk_users u ON u.id = s.user_id"
                " WHERE s.token_hash=$1 AND s.expires_at > now() AND u.active", digest,
            )  # fmt: skip
        return None if row is None else (_user(row), row["csrf"])

    async def delete_session(self, digest: bytes) -> None:
        async with self._conn("delete session") as c:
            await c.execute("DELETE FROM desk_sessions WHERE token_hash=$1", digest)

    # scripts ----------------------------------------------------------------------------
    async def scripts(self) -> dict[str, dict[str, str]]:
        async with self._conn("list scripts") as c:
            rows = await c.fetch("SELECT segment, title, body, updated_by FROM desk_scripts")
        return {r["segment"]: {"segment": r["segment"], "title": r["title"], "body": r["body"],
                               "updated_by": r["updated_by"]} for r in rows}  # fmt: skip

    async def put_script(self, segment: str, title: str, body: str, by: str) -> None:
        async with self._conn("save script") as c:
            await c.execute(
                "INSERT INTO desk_scripts (segment, title, body, updated_by) VALUES ($1,$2,$3,$4)"
                " ON CONFLICT (segment) DO UPDATE SET title=$2, body=$3, updated_by=$4,"
                " updated_at=now()", segment, title, body, by,
            )  # fmt: skip

    async def delete_script(self, segment: str) -> bool:
        async with self._conn("delete script") as c:
            done = await c.execute("DELETE FROM desk_scripts WHERE segment=$1", segment)
        return bool(done.endswith(" 1"))

    # outcomes ---------------------------------------------------------------------------
    async def save_outcome(self, o: Outcome, user: User, phone: str, recording: str) -> None:
        """Insert or replace the call's outcome (the latest save wins)."""
        async with self._conn("save outcome") as c:
            await c.execute(
                "INSERT INTO desk_call_outcomes (call_id, user_id, operator, extension, phone,"
                " tags, outcome, reason, notes, recording) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
                " ON CONFLICT (call_id) DO UPDATE SET user_id=$2, operator=$3, extension=$4,"
                " phone=$5, tags=$6, outcome=$7, reason=$8, notes=$9,"
                " recording=coalesce(nullif($10, ''), desk_call_outcomes.recording),"
                " updated_at=now()",
                o.call_id, user.id, user.name, user.extension, phone, list(o.tags), o.outcome,
                o.reason, o.notes, recording,
            )  # fmt: skip

    async def outcome(self, call_id: str) -> dict[str, Any] | None:
        async with self._conn("read outcome") as c:
            row = await c.fetchrow(
                "SELECT call_id, user_id, operator, extension, phone, tags, outcome, reason,"
                " notes, recording FROM desk_call_outcomes WHERE call_id=$1", call_id,
            )  # fmt: skip
        return None if row is None else {**dict(row), "tags": list(row["tags"])}

    async def call_facts(self, call_id: str) -> tuple[str, str, dict[str, str]] | None:
        """(agent, caller, variables) of a finished call from the core's ``calls`` table."""
        async with self._conn("read call") as c:
            row = await c.fetchrow(
                "SELECT agent, caller, variables::text AS v FROM calls WHERE id=$1", call_id
            )
        if row is None:
            return None
        variables = json.loads(row["v"])
        return row["agent"], row["caller"], {str(k): str(v) for k, v in variables.items()}

    # API tokens -------------------------------------------------------------------------
    async def create_token(self, name: str, roles: tuple[str, ...], digest: bytes,
                           by: str) -> int:  # fmt: skip
        async with self._conn("create token") as c:
            return int(await c.fetchval(
                "INSERT INTO desk_api_tokens (name, token_hash, roles, created_by)"
                " VALUES ($1,$2,$3,$4) RETURNING id", name, digest, list(roles), by,
            ))  # fmt: skip

    async def tokens(self) -> list[dict[str, Any]]:
        async with self._conn("list tokens") as c:
            rows = await c.fetch(
                "SELECT id, name, roles, created_by, extract(epoch FROM created_at) AS created_at,"
                " extract(epoch FROM revoked_at) AS revoked_at FROM desk_api_tokens ORDER BY id"
            )
        return [{**dict(r), "roles": list(r["roles"]), "created_at": float(r["created_at"]),
                 "revoked_at": None if r["revoked_at"] is None else float(r["revoked_at"])}
                for r in rows]  # fmt: skip

    async def revoke_token(self, token_id: int) -> bool:
        async with self._conn("revoke token") as c:
            done = await c.execute(
                "UPDATE desk_api_tokens SET revoked_at=now() WHERE id=$1 AND revoked_at IS NULL",
                token_id,
            )
        return bool(done.endswith(" 1"))

    async def token(self, digest: bytes) -> tuple[int, str, tuple[str, ...]] | None:
        async with self._conn("read token") as c:
            row = await c.fetchrow(
                "SELECT id, name, roles FROM desk_api_tokens WHERE token_hash=$1"
                " AND revoked_at IS NULL", digest,
            )  # fmt: skip
        return None if row is None else (row["id"], row["name"], tuple(row["roles"]))
