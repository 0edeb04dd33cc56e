"""kill -9 of callserver while a callback is on the line: the next instance adopts the live
call (its lease expired, resync shows the channel), records the attempt once with its real
result, and never dials the patient a second time."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from typing import Any

import pytest

from devtools.services import free_port
from tests.integration.test_callbacks_e2e import callbacks_env, rows, server
from tests.integration.test_end_to_end import wait_for
from tests.pbxsim_proc import run_pbxsim

pytestmark = pytest.mark.integration


async def kill_9_during(dsn: str, env: dict[str, str], sql: str) -> Any:
    """Run ``python -m callserver`` until ``sql`` finds one attempt row, then SIGKILL it."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callserver", "run", env={**os.environ, **env},
        stdout=log, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        (attempt,) = await wait_for(lambda: rows(dsn, sql), within=40.0)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        return attempt
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


async def test_kill_9_mid_dial_the_next_instance_adopts_the_call(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    async with run_pbxsim("callbacks-restart", speed=2.0, agi_port=free_port()) as pbx:
        env = callbacks_env(pbx, fresh_pg_dsn, redis_url, redis_prefix,
                            {"CALLSERVER_CALLBACKS_LEASE_S": "1.5"})  # fmt: skip
        # the operator answered and the patient's leg is being dialled / talking
        sql = "SELECT * FROM callback_attempts WHERE state = 'dialing' AND uniqueid <> ''"
        attempt = await kill_9_during(fresh_pg_dsn, env, sql)
        env2 = {**env, "CALLSERVER_HTTP_PORT": str(free_port())}
        async with server(env2):
            done = "SELECT * FROM callback_attempts WHERE state = 'done'"
            (finished,) = await wait_for(lambda: rows(fresh_pg_dsn, done), within=40.0)
            assert finished["id"] == attempt["id"]
            assert finished["result"] == "answered" and finished["cause"] == "ANSWER"
            await asyncio.sleep(1.0)  # a second dial would show up as another attempt row
            assert len(await rows(fresh_pg_dsn, "SELECT * FROM callback_attempts")) == 1
            (job,) = await rows(fresh_pg_dsn, "SELECT * FROM callback_jobs")
            assert job["state"] == "done" and job["outcome"] == "reached"
            assert job["attempts"] == 1


async def test_kill_9_while_the_originate_rings_the_operator(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    """The Originate was in flight (no OriginateResponse, no Uniqueid recorded): after the
    restart the resync shows the operator's ringing leg, whose caller ID is the patient's
    number; the call is adopted and its result recorded once."""
    async with run_pbxsim("callbacks-restart-ringing", speed=2.0, agi_port=free_port()) as pbx:
        env = callbacks_env(pbx, fresh_pg_dsn, redis_url, redis_prefix,
                            {"CALLSERVER_CALLBACKS_LEASE_S": "1.5"})  # fmt: skip
        sql = "SELECT * FROM callback_attempts WHERE state = 'dialing' AND uniqueid = ''"
        attempt = await kill_9_during(fresh_pg_dsn, env, sql)
        async with server({**env, "CALLSERVER_HTTP_PORT": str(free_port())}):
            done = "SELECT * FROM callback_attempts WHERE state = 'done'"
            (finished,) = await wait_for(lambda: rows(fresh_pg_dsn, done), within=40.0)
            assert finished["id"] == attempt["id"]
            assert (finished["result"], finished["cause"]) == ("answered", "ANSWER")
            assert finished["uniqueid"]  # the adopted call's Linkedid
            await asyncio.sleep(1.0)
            assert len(await rows(fresh_pg_dsn, "SELECT * FROM callback_attempts")) == 1
            (job,) = await rows(fresh_pg_dsn, "SELECT * FROM callback_jobs")
            assert (job["state"], job["outcome"], job["attempts"]) == ("done", "reached", 1)
