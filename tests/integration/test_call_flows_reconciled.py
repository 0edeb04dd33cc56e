"""Every call flow pbxsim knows, through callserver over real sockets, reconciled call by call
against pbxsim's ground-truth ledger (PostgreSQL, route decisions, the CRM outbox, Redis)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from callserver.app import CallServer
from devtools.reconcile import read_ledger, reconcile
from devtools.services import free_port
from tests.integration.test_end_to_end import server_config
from tests.pbxsim_proc import run_pbxsim

SCENARIOS = ("single-answered", "single-abandoned", "blind-transfer", "attended-transfer",
             "hold", "two-callers")  # fmt: skip


async def _ended_in_db(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL"))
    finally:
        await conn.close()


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_flow_matches_the_ledger_call_by_call(
    scenario: str, tmp_path: Path, fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    agi_port = free_port()
    extra = ("--ledger", str(ledger))
    async with run_pbxsim(scenario, speed=4.0, agi_port=agi_port, extra=extra) as pbx:
        config = server_config(pbx, fresh_pg_dsn, redis_url, redis_prefix)
        server = await CallServer.create(config)
        await server.start()
        try:
            deadline, settled = time.monotonic() + 60, 0
            while time.monotonic() < deadline and settled < 3:  # 3 checks in a row: done
                truth = read_ledger(ledger) if ledger.exists() else []
                done = truth and not server.model.calls()
                if done and await _ended_in_db(fresh_pg_dsn) >= len(truth):
                    settled += 1
                else:
                    settled = 0
                await asyncio.sleep(0.3)
            await asyncio.sleep(1.5)  # the CRM record writer and live state catch up
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{config.http.port}/api/live"
                auth = {"Authorization": "Bearer e2e-token"}
                async with http.get(url, headers=auth) as resp:
                    live = await resp.json()
        finally:
            await server.aclose()
    truth = read_ledger(ledger)
    assert truth, f"pbxsim wrote no ledger line:\n{pbx.output()[-2000:]}"
    report = await reconcile(truth, fresh_pg_dsn, redis_url=redis_url, redis_prefix=redis_prefix)
    assert report.ok, "\n".join(report.problems()) + "\n" + json.dumps(truth, indent=1)
    assert live["calls"] == []  # nothing left live once every call ended
