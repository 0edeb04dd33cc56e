"""A reminder campaign spoken by the real voice bot, end to end: pbxsim (its own process: AMI,
ARI, externalMedia RTP) answers the Originates as patients who listen to the bot's prompt and
then speak (espeak-ng WAVs over RTP) or press keys (ARI ChannelDtmfReceived); callserver runs
every installed plugin — campaigns dials, ivr takes each answered call from the
``campaign_calls`` port, synthesises what the campaign says, recognises the answer
(pocketsphinx in a worker process) — and PostgreSQL ends with the CRM's appointment statuses,
a callback job, the do-not-call entry and a retry. No test-only plugin drives the sessions.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import numpy as np
import pytest

from callserver.app import CallServer
from callserver.config import load_config
from callserver.plugins import load_plugins, order
from devtools.services import free_port
from tests.fixtures.speech.synth import speak
from tests.integration.campaigns_support import seed_day
from tests.integration.test_ivr_end_to_end import write_wav
from tests.pbxsim_proc import run_pbxsim

pytestmark = pytest.mark.integration
TOKEN = "campaign-voice"
YES, NO, RESCHEDULE, OPT_OUT, AWAY = (
    "+79990000101", "+79990000102", "+79990000103", "+79990000104", "+79990000105")  # fmt: skip
SCENARIO = """name = "campaign-voice"
description = "patients answering the voice bot's reminders by voice and keypad"
[pbx]
dids = {{ "74951234567" = "source-a" }}
[[queues]]
name = "reception"
strategy = "ringall"
members = ["op101"]
[agents]
count = 1
registered = ["op101"]
[originate]
ring_s = [0.3, 0.6]
talk_s = [60.0, 60.0]
reply_after = "prompt"
answer = 1.0
noanswer = 0.0
busy = 0.0
congestion = 0.0
numbers = {{ "79990000105" = "noanswer" }}
audio = {{ "79990000101" = ["{yes}"], "79990000103" = ["{reschedule}"] }}
dtmf = {{ "79990000102" = ["2"], "79990000104" = ["9"] }}
"""


def said(tmp: Path, name: str, text: str) -> Path:
    """The patient's answer: ``text`` by espeak-ng (8 kHz telephone band), then silence."""
    return write_wav(tmp / f"{name}.wav", np.asarray(speak(text, pad_s=(0.2, 1.5))))


async def test_a_reminder_campaign_answered_by_voice_and_keypad(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "campaign-voice.toml"
    scenario.write_text(SCENARIO.format(yes=said(tmp_path, "yes", "yes"),
                                        reschedule=said(tmp_path, "re", "reschedule")))
    rtp = min(free_port(), 65400)
    async with run_pbxsim(str(scenario), speed=1.0, agi_port=free_port()) as pbx:
        config = load_config(None, env={
            "CALLSERVER_AMI_PORT": str(pbx.ami_port), "CALLSERVER_AMI_SECRET": "callserver",
            "CALLSERVER_ARI_URL": f"http://127.0.0.1:{pbx.ari_port}/ari",
            "CALLSERVER_ARI_PASSWORD": "callserver", "CALLSERVER_AGI_PORT": str(pbx.agi_port),
            "CALLSERVER_DATABASE_DSN": fresh_pg_dsn, "CALLSERVER_REDIS_URL": redis_url,
            "CALLSERVER_REDIS_PREFIX": redis_prefix, "CALLSERVER_HTTP_PORT": str(free_port()),
            "CALLSERVER_HTTP_API_TOKEN": TOKEN, "CALLSERVER_CAMPAIGNS_POLL_S": "0.1",
            "CALLSERVER_CAMPAIGNS_PICKUP_S": "10",
            "CALLSERVER_IVR_LANGUAGE": "en", "CALLSERVER_IVR_WORKERS": "1",
            "CALLSERVER_IVR_LOAD_AT_START": "true", "CALLSERVER_IVR_SILENCE_S": "4",
            "CALLSERVER_IVR_RTP_PORT_MIN": str(rtp), "CALLSERVER_IVR_RTP_PORT_MAX": str(rtp + 99),
            "CALLSERVER_IVR_SOUNDS_DIR": str(tmp_path / "sounds"),
        })  # fmt: skip
        server = await CallServer.create(config, order(load_plugins(config)))
        await server.start()
        pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=3)
        try:
            async with asyncio.timeout(30):
                await server.database.ready.wait()
            async with aiohttp.ClientSession(f"http://127.0.0.1:{config.http.port}") as http:
                appointments, cid = await _campaign(http, pool)
                await _settled(pool, cid, within=45.0)
                bot = await (await http.get("/api/ivr/calls", headers=_auth())).json()
            await _check(pool, appointments, cid, bot, tmp_path)
        finally:
            await pool.close()
            await server.aclose()


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def _campaign(http: aiohttp.ClientSession, pool: asyncpg.Pool) -> tuple[dict[str, int], int]:
    """Five booked visits 2 h (+ a few seconds) from now; a «2h» reminder campaign, running."""
    visit = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2, seconds=4)
    phones = [YES, NO, RESCHEDULE, OPT_OUT, AWAY]
    ids = await seed_day(pool, visit, [(p, f"Patient {n}", 0) for n, p in enumerate(phones)])
    await pool.execute("UPDATE crm_patients SET language = 'en'")
    settings = {"clinic_name": "Smile", "tz": "UTC", "window": "00:00-23:59", "rules": ["2h"],
                "max_attempts": 2, "retry_delay_min": 60, "same_day_retry": True}  # fmt: skip
    source = {"type": "appointments", "date_from": visit.date().isoformat(),
              "date_to": (visit.date() + timedelta(days=1)).isoformat()}  # fmt: skip
    made = await http.post("/api/campaigns", headers=_auth(), json={
        "name": "Reminders", "kind": "reminder", "settings": settings, "source": source})
    body = await made.json()
    assert made.status == 201 and body["targets"] == 5, body
    run = await http.post(f"/api/campaigns/{body['id']}/state", json={"state": "running"},
                          headers=_auth())  # fmt: skip
    assert run.status == 200
    return ids, int(body["id"])


async def _settled(pool: asyncpg.Pool, cid: int, within: float) -> None:
    """Every target dialled once and its dial settled."""
    async with asyncio.timeout(within):
        while True:
            rows = await pool.fetch(
                "SELECT result FROM campaign_dials WHERE campaign_id = $1", cid)
            if len(rows) == 5 and all(r["result"] != "dialing" for r in rows):
                return
            await asyncio.sleep(0.2)


async def _check(pool: asyncpg.Pool, appointments: dict[str, int], cid: int,
                 bot: dict[str, Any], tmp: Path) -> None:  # fmt: skip
    dials = {r["phone"]: r for r in await pool.fetch(
        "SELECT phone, result, outcome FROM campaign_dials WHERE campaign_id = $1", cid)}
    outcomes = {p: (r["result"], r["outcome"]) for p, r in dials.items()}
    assert outcomes == {
        YES: ("answered", "confirmed"), NO: ("answered", "cancelled"),
        RESCHEDULE: ("answered", "reschedule"), OPT_OUT: ("answered", "opt_out"),
        AWAY: ("no_answer", ""),
    }, outcomes
    status = {p: await pool.fetchval("SELECT status FROM crm_appointments WHERE id = $1", a)
              for p, a in appointments.items()}  # fmt: skip
    assert status[YES] == "confirmed" and status[NO] == "cancelled"
    assert status[RESCHEDULE] == status[OPT_OUT] == status[AWAY] == "booked"
    jobs = await pool.fetch("SELECT phone, reason FROM callback_jobs")
    assert [(j["phone"], j["reason"]) for j in jobs] == [
        (RESCHEDULE, "campaign_reminder_reschedule")]
    assert await pool.fetchval("SELECT array_agg(phone) FROM campaign_dnc") == [OPT_OUT]
    # outbound campaign calls are not inbound calls to route
    assert await pool.fetchval("SELECT count(*) FROM route_decisions") == 0
    retry = await pool.fetchrow(
        "SELECT state, attempts, last_result, next_attempt_at FROM campaign_targets "
        "WHERE campaign_id = $1 AND phone = $2", cid, AWAY)  # fmt: skip
    assert retry["state"] == "pending" and retry["attempts"] == 1
    assert retry["last_result"] == "no_answer"
    assert retry["next_attempt_at"] >= datetime.now(UTC) + timedelta(minutes=50)
    # the bot's side: recognised words for the voice answers, keys for the keypad ones
    calls = bot["calls"]
    assert len(calls) == 4 and all(c["speech"] for c in calls), calls
    heard = sorted(h["intent"] for c in calls for h in c["heard"] if h["text"])
    assert heard == ["reschedule", "yes"], calls
    assert sorted(c["keys"] for c in calls) == ["", "", "2", "9"]
    assert sorted(c["outcome"] for c in calls) == ["cancelled", "confirmed", "opt_out",
                                                   "reschedule"]
    spoken = list((tmp / "sounds" / "en" / "callserver" / "spoken").glob("*.wav"))
    assert len(spoken) >= 7  # an intro per doctor, the question, four goodbyes: each once
    intro = json.dumps(calls)
    assert "+7999" not in intro  # transcripts mask the patients' numbers
