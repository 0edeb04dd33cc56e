"""Plugins in a running server: a clinic's own plugin from outside the tree, and the ARI
events reader never waiting on one call's Stasis handling."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callserver.app import CallServer
from callserver.config import Config, load_config
from callserver.plugin_api import Contribution, PluginDeps
from callserver.plugins import LoadedPlugin, load_plugins, order
from devtools.services import free_port
from tests.ari_fake import FakeAri

TOKEN = "plugins-token"


def _config(dsn: str, redis_url: str, prefix: str, **env: str) -> Config:
    return load_config(None, env={
        "CALLSERVER_AMI_ENABLED": "false",
        "CALLSERVER_AGI_ENABLED": "false",
        "CALLSERVER_ARI_ENABLED": "false",
        "CALLSERVER_DATABASE_DSN": dsn,
        "CALLSERVER_REDIS_URL": redis_url,
        "CALLSERVER_REDIS_PREFIX": prefix,
        "CALLSERVER_HTTP_PORT": str(free_port()),
        "CALLSERVER_HTTP_API_TOKEN": TOKEN,
        **env,
    })  # fmt: skip


CLINIC_PLUGIN = '''
from dataclasses import dataclass
from aiohttp import web
from callserver.errors import ConfigError
from callserver.plugin_api import Contribution

@dataclass(frozen=True)
class Settings:
    greeting: str = "hello"

class ClinicPlugin:
    name = "clinic_ext"
    config_type = Settings
    migrations = None
    requires = ()
    optional = ("patient_lookup",)
    provides = ()

    def validate(self, config):
        if not config.greeting:
            raise ConfigError(message="clinic_ext.greeting: empty", key="clinic_ext.greeting")

    def build(self, config, deps):
        has_crm = "patient_lookup" in deps.ports

        async def hello(request):
            return web.json_response({"greeting": config.greeting, "crm": has_crm})

        return Contribution(routes=[web.get("/api/clinic/hello", hello)])

plugin = ClinicPlugin()
'''


async def test_a_plugin_from_outside_the_tree_is_loaded_from_config_and_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_pg_dsn: str, redis_url: str,
    redis_prefix: str,
) -> None:  # fmt: skip
    (tmp_path / "clinic_ext.py").write_text(textwrap.dedent(CLINIC_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "callserver.toml"
    path.write_text(
        '[plugins]\nenabled = ["crm", "routing", "clinic_ext:plugin"]\n'
        '[clinic_ext]\ngreeting = "здравствуйте"\n'
    )
    base = _config(fresh_pg_dsn, redis_url, redis_prefix)
    config = load_config(path, env={**base.env})
    server = await CallServer.create(config)
    await server.start()
    try:
        url = f"http://127.0.0.1:{config.http.port}/api/clinic/hello"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as resp:
                assert resp.status == 401  # behind the same auth as every API route
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with session.get(url, headers=auth) as resp:
                assert resp.status == 200
                assert await resp.json() == {"greeting": "здравствуйте", "crm": True}
    finally:
        await server.aclose()


class SlowCrm:
    """A CRM plugin whose lookup for one number is held for ``hold`` seconds."""

    name = "slow_crm"
    config_type = None
    migrations = None
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides = ("patient_lookup",)

    def __init__(self, slow_phone: str, hold: float) -> None:
        self.slow_phone, self.hold = slow_phone, hold

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        return Contribution(ports={"patient_lookup": self})

    async def lookup(self, phone: str) -> Any:
        if phone == self.slow_phone:
            await asyncio.sleep(self.hold)
        return None


def _stasis_start(channel_id: str, caller: str) -> dict[str, Any]:
    return {
        "type": "StasisStart", "application": "callserver", "args": ["inbound", "74959990000"],
        "channel": {"id": channel_id, "name": f"PJSIP/trunk-{channel_id}", "state": "Up",
                    "caller": {"name": "", "number": caller},
                    "dialplan": {"context": "from-trunk", "exten": "74959990000", "priority": 3}},
    }  # fmt: skip


@pytest.fixture
async def fake_ari() -> AsyncIterator[FakeAri]:
    ari = FakeAri()
    await ari.start()
    yield ari
    await ari.aclose()


async def test_one_calls_slow_lookup_does_not_hold_up_another_calls_stasis_start(
    fake_ari: FakeAri, fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    """Issue 8: StasisStart routing ran inside the ARI events reader, so one caller's CRM
    lookup held up every other ARI event. Here the first caller's lookup is held 2 s; the
    second caller's StasisStart gets its ROUTE_* variables within 50 ms."""
    config = _config(
        fresh_pg_dsn, redis_url, redis_prefix,
        CALLSERVER_ARI_ENABLED="true", CALLSERVER_ARI_URL=fake_ari.url,
        CALLSERVER_ARI_PASSWORD="callserver", CALLSERVER_ROUTING_LOOKUP_BUDGET_MS="5000",
        CALLSERVER_PLUGINS_ENABLED="routing",
    )  # fmt: skip
    plugins = order([*load_plugins(config), LoadedPlugin(SlowCrm("+79161110001", 2.0), None)])
    server = await CallServer.create(config, plugins)
    await server.start()
    try:
        await fake_ari.wait_ws(1)

        def variables_set_for(channel: str) -> bool:
            return any(f"/channels/{channel}/variable" in path for _, path in fake_ari.requests)

        await fake_ari.send(_stasis_start("slow-1", "79161110001"))
        await asyncio.sleep(0.1)  # the slow call is now inside its lookup
        started = time.monotonic()
        await fake_ari.send(_stasis_start("fast-2", "79162220002"))
        await fake_ari.wait_for(lambda: variables_set_for("fast-2"))
        elapsed = time.monotonic() - started
        assert not variables_set_for("slow-1")
        assert elapsed < 0.05, f"second call answered after {elapsed * 1000:.0f} ms"
        await fake_ari.wait_for(lambda: variables_set_for("slow-1"))
        assert server.stasis.calls_started == 2
    finally:
        await server.aclose()


async def test_calls_beyond_max_calls_go_back_to_the_dialplan_counted(
    fake_ari: FakeAri, fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    config = _config(
        fresh_pg_dsn, redis_url, redis_prefix,
        CALLSERVER_ARI_ENABLED="true", CALLSERVER_ARI_URL=fake_ari.url,
        CALLSERVER_ARI_PASSWORD="callserver", CALLSERVER_ARI_MAX_CALLS="1",
        CALLSERVER_ROUTING_LOOKUP_BUDGET_MS="5000", CALLSERVER_PLUGINS_ENABLED="routing",
    )  # fmt: skip
    plugins = order([*load_plugins(config), LoadedPlugin(SlowCrm("+79161110001", 1.0), None)])
    server = await CallServer.create(config, plugins)
    await server.start()
    try:
        await fake_ari.wait_ws(1)
        await fake_ari.send(_stasis_start("held-1", "79161110001"))
        await fake_ari.send(_stasis_start("over-2", "79162220002"))
        await fake_ari.wait_for(
            lambda: ("POST", "/ari/channels/over-2/continue") in fake_ari.requests
        )
        assert server.stasis.calls_refused == 1
    finally:
        await server.aclose()
