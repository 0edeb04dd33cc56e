"""The campaigns plugin inside a whole CallServer (every installed plugin) against pbxsim over
real sockets: a campaign created, filled from CSV, run and watched through ``/api/campaigns``;
the answered call's dialog taken through the ``campaign_calls`` port the way the voice bot
takes it (the ivr plugin switched off — the port is optional to it — and a test plugin requiring
the port stands in for it and presses 1; the real voice bot on that port:
``test_campaigns_voice.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from callserver.app import CallServer
from callserver.config import load_config
from callserver.plugin_api import Contribution, PluginDeps
from callserver.plugins import LoadedPlugin, load_plugins, order
from devtools.services import free_port
from tests.pbxsim_proc import run_pbxsim

pytestmark = pytest.mark.integration
SCENARIO = str(Path(__file__).resolve().parents[2] / "pbxsim" / "scenarios" / "campaign.toml")
TOKEN = "campaign-token"


class VoiceBotStandIn:
    """Requires ``campaign_calls`` like the ivr plugin does; the test drives the sessions."""

    name = "voicebot_standin"
    config_type: type[Any] | None = None
    migrations: Path | None = None
    requires: tuple[str, ...] = ("campaign_calls",)
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    port: Any = None

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        from campaigns.dialer import IvrSessions

        self.port = deps.ports.get("campaign_calls", IvrSessions)
        return Contribution()


async def test_a_campaign_through_the_api_and_the_voice_bot_port(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    bot = VoiceBotStandIn()
    async with run_pbxsim(SCENARIO, speed=20.0, agi_port=free_port()) as pbx:
        config = load_config(None, env={
            "CALLSERVER_AMI_PORT": str(pbx.ami_port), "CALLSERVER_AMI_SECRET": "callserver",
            "CALLSERVER_ARI_URL": f"http://127.0.0.1:{pbx.ari_port}/ari",
            "CALLSERVER_ARI_PASSWORD": "callserver", "CALLSERVER_AGI_PORT": str(pbx.agi_port),
            "CALLSERVER_DATABASE_DSN": fresh_pg_dsn, "CALLSERVER_REDIS_URL": redis_url,
            "CALLSERVER_REDIS_PREFIX": redis_prefix, "CALLSERVER_HTTP_PORT": str(free_port()),
            "CALLSERVER_HTTP_API_TOKEN": TOKEN, "CALLSERVER_CAMPAIGNS_POLL_S": "0.1",
            "CALLSERVER_CAMPAIGNS_PICKUP_S": "5", "CALLSERVER_IVR_ENABLED": "false",
        })  # fmt: skip
        server = await CallServer.create(config, order([*load_plugins(config),
                                                        LoadedPlugin(bot, None)]))  # fmt: skip
        await server.start()
        async with asyncio.timeout(30):
            await server.database.ready.wait()
        base = f"http://127.0.0.1:{config.http.port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        try:
            async with aiohttp.ClientSession(base) as http:
                await _drive(http, auth, bot, fresh_pg_dsn)
        finally:
            await server.aclose()


async def _drive(http: aiohttp.ClientSession, auth: dict[str, str], bot: VoiceBotStandIn,
                 dsn: str) -> None:  # fmt: skip
    assert (await http.get("/api/campaigns")).status == 401
    page = await http.get("/campaigns")
    assert page.status == 200 and "Обзвоны" in await page.text()
    bad = await http.post("/api/campaigns", json={"name": "x", "kind": "spam"}, headers=auth)
    assert bad.status == 400 and (await bad.json())["error_id"] == "campaign-invalid"
    settings = {"clinic_name": "Улыбка", "text": "Приглашаем на бесплатную консультацию.",
                "tz": "UTC", "window": "00:00-23:59", "max_attempts": 1}  # fmt: skip
    made = await http.post(
        "/api/campaigns",
        headers=auth,
        json={
            "name": "Консультации",
            "kind": "custom",
            "settings": settings,
            "source": {"type": "csv"},
        },
    )
    assert made.status == 201
    cid = (await made.json())["id"]
    csv_text = "phone,name\n+7 999 000-00-04,Анна\n8 (999) 000-00-04,Анна дубль\nnot-a-phone,X\n"
    up = await http.post(f"/api/campaigns/{cid}/csv", data=csv_text.encode(), headers=auth)
    body = await up.json()
    assert body["added"] == 1 and [e["line"] for e in body["errors"]] == [4]
    # an upload arriving in pieces is read whole (the first piece alone used to be imported)
    other = await http.post("/api/campaigns", headers=auth, json={
        "name": "Куски", "kind": "custom", "settings": settings, "source": {"type": "csv"}})
    rows = "phone,name\n" + "".join(f"+7999111{i:04d},Пациент {i}\n" for i in range(60))

    async def pieces() -> AsyncIterator[bytes]:
        raw = rows.encode()
        for i in range(0, len(raw), 256):
            yield raw[i : i + 256]
            await asyncio.sleep(0.01)

    up = await http.post(f"/api/campaigns/{(await other.json())['id']}/csv", data=pieces(),
                         headers=auth)  # fmt: skip
    assert (await up.json()) == {"added": 60, "errors": []}
    dnc = await http.post(
        "/api/campaigns/dnc", json={"phones": ["89990000005", "??"]}, headers=auth
    )
    assert (await dnc.json())["added"] == 1
    run = await http.post(f"/api/campaigns/{cid}/state", json={"state": "running"}, headers=auth)
    assert (await run.json())["state"] == "running"
    # the call is answered on pbxsim's trunk (the number is pinned "answer" in the scenario);
    # wait for its attempt row, then take its dialog as the voice bot would
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        async with asyncio.timeout(20):
            while True:
                row = await pool.fetchrow(
                    "SELECT id, result FROM campaign_dials WHERE campaign_id = $1", cid
                )
                session = bot.port.session(row["id"]) if row is not None else None
                if session is not None or (row is not None and row["result"] != "dialing"):
                    break
                await asyncio.sleep(0.05)
    finally:
        await pool.close()
    assert session is not None and row is not None  # answered; nobody else took its dialog
    first = session.start()
    assert "Улыбка" in first["say"][0] and "консультацию" in first["say"][0]
    assert session.feed("dtmf", "1")["outcome"] == "accepted"
    assert bot.port.session(row["id"]) is None  # a session is handed out once
    async with asyncio.timeout(20):
        while True:
            campaign = await (await http.get(f"/api/campaigns/{cid}", headers=auth)).json()
            if campaign["state"] == "done":
                break
            await asyncio.sleep(0.1)
    stats = (await (await http.get(f"/api/campaigns/{cid}", headers=auth)).json())["stats"]
    assert stats["dialled"] == 1
    assert stats["reached"] == 1 and stats["outcomes"] == {"accepted": 1}
    export = await http.get(f"/api/campaigns/{cid}/export.csv", headers=auth)
    lines = (await export.text()).splitlines()
    assert lines[0].startswith("phone,") and lines[1].startswith("+79990000004,Анна,")
    assert lines[1].split(",")[7] == "accepted"
    listing = (await (await http.get("/api/campaigns", headers=auth)).json())["campaigns"]
    assert [c["id"] for c in listing] == [cid + 1, cid]  # newest first: "Куски" too
