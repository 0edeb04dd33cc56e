"""Desk login, roles, sessions and scoped API tokens over real HTTP, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import pytest

from desk.__main__ import main as desk_cli
from tests.integration.desk_stack import PASSWORD, desk_stack, login

pytestmark = pytest.mark.integration


async def test_roles_sessions_tokens_and_the_bootstrap_cli(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with desk_stack("originate", fresh_pg_dsn, redis_url, redis_prefix) as st:
        admin, admin_csrf = await login(st.base, "admin")  # from [desk] bootstrap_admin
        anna, anna_csrf = await login(st.base, "anna")
        async with admin, anna:
            async with anna.get(f"{st.base}/api/desk/users") as r:
                assert r.status == 403  # operators do not manage users
            async with admin.get(f"{st.base}/api/desk/users") as r:
                assert {u["login"] for u in (await r.json())["users"]} == {"admin", "anna",
                                                                            "boris"}  # fmt: skip
            # a WebSocket opened from another site with anna's cookie is refused
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await anna.ws_connect(f"{st.base}/ws/desk", origin="http://evil.example")
            assert refused.value.status == 403

            async with admin.post(f"{st.base}/api/desk/tokens", headers={
                    "X-CSRF-Token": admin_csrf}, json={"name": "BI", "roles": ["marketer"]}) as r:
                assert r.status == 201
                issued = await r.json()  # fmt: skip
            token = issued["token"]
            bearer = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=bearer) as bi:
                async with bi.get(f"{st.base}/api/desk/operators") as r:
                    assert r.status == 200
                async with bi.get(f"{st.base}/api/desk/users") as r:
                    assert r.status == 403  # a marketer's token, not an admin's
                async with admin.delete(f"{st.base}/api/desk/tokens/{issued['id']}",
                                        headers={"X-CSRF-Token": admin_csrf}) as r:  # fmt: skip
                    assert r.status == 200
                async with bi.get(f"{st.base}/api/desk/operators") as r:
                    assert r.status == 401  # revoked
            conn = await asyncpg.connect(fresh_pg_dsn)
            try:
                stored = await conn.fetchrow("SELECT token_hash, revoked_at FROM desk_api_tokens")
                hashes = await conn.fetch("SELECT password_hash FROM desk_users")
            finally:
                await conn.close()
            assert stored is not None and len(stored["token_hash"]) == 32
            assert token.encode() not in stored["token_hash"] and stored["revoked_at"]
            assert all(h["password_hash"].startswith("$argon2id$") for h in hashes)

            async with anna.post(f"{st.base}/api/desk/logout",
                                 headers={"X-CSRF-Token": anna_csrf}) as r:  # fmt: skip
                assert r.status == 200
            async with anna.get(f"{st.base}/api/desk/me") as r:
                assert r.status == 401

        async with aiohttp.ClientSession() as guess:
            for _ in range(5):
                async with guess.post(f"{st.base}/api/desk/login",
                                      json={"login": "boris", "password": "wrong-one"}) as r:
                    assert r.status == 401
            async with guess.post(f"{st.base}/api/desk/login",
                                  json={"login": "boris", "password": PASSWORD}) as r:
                assert r.status == 429  # even the right password, until the window passes

        monkeypatch.setenv("DESK_PASSWORD", "root-pass-123")
        code = await asyncio.to_thread(desk_cli, ["create-admin", "--dsn", fresh_pg_dsn,
                                                  "--login", "root", "--name", "Главный"])
        assert code == 0
        root, _ = await login_with(st.base, "root", "root-pass-123")
        async with root, root.get(f"{st.base}/api/desk/users") as r:
            assert r.status == 200


async def login_with(base: str, name: str, password: str) -> tuple[aiohttp.ClientSession, str]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/desk/login",
                         json={"login": name, "password": password}) as resp:  # fmt: skip
        assert resp.status == 200, await resp.text()
        return http, (await resp.json())["csrf"]
