"""callserver against pbxsim over real sockets (AMI, FastAGI, ARI), with real PostgreSQL and
Redis: calls end up in PostgreSQL with the right timeline; AMI reconnects and resyncs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import asyncpg
import pytest

from callserver.app import CallServer
from callserver.config import Config, load_config
from callserver.core.events import CallEnded, DomainEvent
from callserver.plugin_api import Contribution, PluginDeps
from callserver.plugins import LoadedPlugin, load_plugins, order
from devtools.services import free_port
from tests.integration.store_support import TcpProxy
from tests.pbxsim_proc import Pbx, run_pbxsim


def server_config(
    pbx: Pbx, dsn: str, redis_url: str, prefix: str, ami_port: int | None = None
) -> Config:
    return load_config(None, env={
        "CALLSERVER_AMI_PORT": str(ami_port or pbx.ami_port),
        "CALLSERVER_AMI_SECRET": "callserver",
        "CALLSERVER_AMI_RECONNECT_MIN": "0.1",
        "CALLSERVER_AMI_RECONNECT_MAX": "0.5",
        "CALLSERVER_ARI_URL": f"http://127.0.0.1:{pbx.ari_port}/ari",
        "CALLSERVER_ARI_PASSWORD": "callserver",
        "CALLSERVER_AGI_PORT": str(pbx.agi_port),
        "CALLSERVER_DATABASE_DSN": dsn,
        "CALLSERVER_DATABASE_FLUSH_INTERVAL": "0.05",
        "CALLSERVER_REDIS_URL": redis_url,
        "CALLSERVER_REDIS_PREFIX": prefix,
        "CALLSERVER_HTTP_PORT": str(free_port()),
        "CALLSERVER_HTTP_API_TOKEN": "e2e-token",
    })  # fmt: skip


@pytest.fixture
def stack(fresh_pg_dsn: str, redis_url: str, redis_prefix: str) -> Callable[..., Any]:
    @contextlib.asynccontextmanager
    async def start(scenario: str, *, speed: float, proxy_ami: bool = False,
                    before_start: Callable[[CallServer], None] | None = None,
                    extra_plugins: tuple[Any, ...] = (),
                    ) -> AsyncIterator[tuple[CallServer, Pbx, TcpProxy | None]]:  # fmt: skip
        """pbxsim + CallServer; with ``proxy_ami`` AMI goes through a TcpProxy the test cuts."""
        agi_port = free_port()
        async with run_pbxsim(scenario, speed=speed, agi_port=agi_port) as pbx:
            ami_port, proxy = None, None
            if proxy_ami:
                proxy = TcpProxy("127.0.0.1", pbx.ami_port)
                await proxy.restore()
                ami_port = proxy.port
            config = server_config(pbx, fresh_pg_dsn, redis_url, redis_prefix, ami_port)
            plugins = [*load_plugins(config), *(LoadedPlugin(p, None) for p in extra_plugins)]
            server = await CallServer.create(config, order(plugins))
            if before_start is not None:
                before_start(server)
            await server.start()
            try:
                yield server, pbx, proxy
            finally:
                await server.aclose()
                if proxy is not None:
                    await proxy.cut()

    return start


async def wait_for(check: Callable[[], Any], within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def fetch_call(dsn: str, state: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow("SELECT * FROM calls WHERE state = $1", state)
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()


async def event_types(dsn: str, call_id: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT type FROM call_events WHERE call_id = $1 ORDER BY at, id", call_id
        )
        return [r["type"] for r in rows]
    finally:
        await conn.close()


async def test_answered_queue_call_lands_in_postgres_with_its_timeline(
    stack: Callable[..., Any], fresh_pg_dsn: str
) -> None:
    async with stack("single-answered", speed=4.0) as (server, _pbx, _):
        row = await wait_for(lambda: fetch_call(fresh_pg_dsn, "ended"))
        assert row["caller"] == "79161234567"
        assert row["did"] == "74951234567"
        assert row["ad_source"] == "source-a"
        assert row["queue"] == "reception"
        assert row["agent"] == "PJSIP/op101"
        assert row["direction"] == "inbound"
        assert row["wait_seconds"] == pytest.approx(3, abs=1)
        assert row["talk_seconds"] == pytest.approx(11, abs=1)
        assert row["hangup_by"] == "caller"
        types = await event_types(fresh_pg_dsn, row["id"])
        assert types[0] == "CallStarted"
        order = [t for t in types if t in
                 ("CallQueued", "AgentRinging", "CallAnswered", "CallEnded")]  # fmt: skip
        assert order == ["CallQueued", "AgentRinging", "CallAnswered", "CallEnded"]
        assert server.agi.sessions_total == 1  # the dialplan's AGI(route) reached us
        # the call tracking record is in the API, beside the call
        url = f"http://127.0.0.1:{server.config.http.port}/api/calls?limit=5"
        async with aiohttp.ClientSession() as http:
            resp = await http.get(url, headers={"Authorization": "Bearer e2e-token"})
            calls = (await resp.json())["calls"]
        assert [c["id"] for c in calls] == [row["id"]]
        routing = calls[0]["routing"]
        assert routing["origin"] == "agi"
        assert routing["did"] == "74951234567"
        assert routing["ad_source"] == "source-a"
        assert routing["queue"] == "reception"
        assert routing["mode"] == "queue"
        assert routing["rule_version"]


async def test_abandoned_call_is_recorded_as_abandoned(
    stack: Callable[..., Any], fresh_pg_dsn: str
) -> None:
    async with stack("single-abandoned", speed=4.0):
        row = await wait_for(lambda: fetch_call(fresh_pg_dsn, "abandoned"))
        assert row["caller"] == "79035550101"
        assert row["ad_source"] == "source-b"
        assert row["queue"] == "reception"
        assert row["wait_seconds"] == pytest.approx(9, abs=1)  # the queue wait (issue 15.6)
        assert row["hold_seconds"] is None  # never answered, never on hold
        assert row["caller_e164"] == "+79035550101"
        assert row["answered_at"] is None
        types = await event_types(fresh_pg_dsn, row["id"])
        assert "CallAbandoned" in types and "CallAnswered" not in types


class CapturePlugin:
    """A plugin whose quick ARI handler records every event."""

    name = "capture"
    config_type = None
    migrations = None
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.seen: list[Mapping[str, Any]] = []

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        return Contribution(ari_event_handlers=[self.seen.append])


async def test_stasis_start_reaches_the_ari_client(stack: Callable[..., Any]) -> None:
    capture = CapturePlugin()
    seen = capture.seen

    async with stack("stasis-dtmf", speed=4.0, extra_plugins=(capture,)):
        start = await wait_for(lambda: [e for e in seen if e.get("type") == "StasisStart"])
        assert start[0]["application"] == "callserver"
        assert start[0]["args"] == ["inbound", "74959990000"]
        assert start[0]["channel"]["caller"]["number"] == "79161234567"


async def test_ami_reconnect_resyncs_and_closes_a_call_that_ended_meanwhile_once(
    stack: Callable[..., Any], fresh_pg_dsn: str
) -> None:
    ended: list[DomainEvent] = []

    def capture(server: CallServer) -> None:
        server.bus.subscribe(lambda e: ended.append(e) if isinstance(e, CallEnded) else None)

    async with stack("single-answered", speed=1.0, proxy_ami=True, before_start=capture) as (
        server,
        _pbx,
        proxy,
    ):
        assert proxy is not None
        await wait_for(lambda: any(c.state == "answered" for c in server.model.calls()))
        await proxy.cut()  # AMI link lost while the call is up
        await asyncio.sleep(11.5)  # the caller hangs up while we are blind
        assert ended == []
        assert server.ami.state != "connected"
        await proxy.restore()
        await wait_for(lambda: server.ami.state == "connected")
        assert server.ami.reconnects >= 1
        await wait_for(lambda: len(ended) == 1)
        await asyncio.sleep(0.5)
        assert len(ended) == 1, "the call must be closed exactly once"
        assert server.model.calls() == []
        row = await wait_for(lambda: fetch_call(fresh_pg_dsn, "ended"))
        assert row["agent"] == "PJSIP/op101"
        types = await event_types(fresh_pg_dsn, row["id"])
        assert types.count("CallEnded") == 1
