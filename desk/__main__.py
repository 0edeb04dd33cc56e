"""``python -m desk``: bootstrap the operator desk.

  create-admin [--config callserver.toml | --dsn DSN] --login LOGIN [--name NAME]
      creates (or resets the password and admin role of) a desk user; the password is read
      from $DESK_PASSWORD or asked for on the terminal. Applies the desk's migrations first.

Exit status: 0 done, 2 failure (message on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

import asyncpg

from callserver.config import load_config
from callserver.errors import CallserverError
from callserver.store.migrate import MigrationSource, apply_migrations
from desk import policy
from desk.models import UserInput
from desk.passwords import hash_password
from desk.store import DeskStore

MIGRATIONS = [MigrationSource("desk", Path(__file__).parent / "migrations")]


async def create_admin(dsn: str, login: str, name: str, password: str) -> str:
    """Create the admin ``login`` (or make an existing one admin with this password)."""
    u = policy.parse_user({"login": login, "name": name or login, "roles": ["admin"],
                           "password": password}, creating=True)  # fmt: skip
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await apply_migrations(conn, MIGRATIONS)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        store = DeskStore(pool)
        found = await store.credentials(u.login)
        hashed = await hash_password(u.password)
        if found is None:
            await store.create_user(u, hashed)
            return f"admin {u.login!r} created"
        user = found[0]
        roles = tuple(dict.fromkeys((*user.roles, "admin")))
        await store.update_user(user.id, UserInput(
            user.login, user.name, roles, user.extension, user.queues, user.skills, "", True,
        ), hashed)  # fmt: skip
        return f"user {u.login!r} is now admin with the new password"
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desk")
    sub = parser.add_subparsers(dest="command", required=True)
    admin = sub.add_parser("create-admin", help="create the first admin (or reset one)")
    admin.add_argument("--config", help="callserver.toml (its [database] dsn)")
    admin.add_argument("--dsn", help="PostgreSQL DSN (instead of --config)")
    admin.add_argument("--login", required=True)
    admin.add_argument("--name", default="")
    args = parser.parse_args(argv)
    try:
        dsn = args.dsn or load_config(args.config).database.dsn
        password = os.environ.get("DESK_PASSWORD") or getpass.getpass("password: ")
        print(asyncio.run(create_admin(dsn, args.login, args.name, password)))
    except (CallserverError, OSError, asyncpg.PostgresError) as exc:
        print(f"desk: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
