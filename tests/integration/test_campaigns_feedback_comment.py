"""A feedback campaign's comment, end to end: pbxsim (its own process: AMI, ARI, externalMedia
RTP) answers the Originate as a patient who waits for the bot's question, presses 2 (a low
score), then after the comment prompt says an English sentence (espeak-ng over RTP,
``reply_after = "keys"``); callserver runs every installed plugin — campaigns dials, ivr takes
the call, records the comment to a WAV under ``[ivr] recordings_dir`` and transcribes it
free-form (pocketsphinx's language model in a worker process) — and PostgreSQL ends with the
comment (transcript, recording, length) on the dial, the manager's task carrying the
transcript, and the results API and CSV export showing it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import wave
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from callserver.app import CallServer
from callserver.config import load_config
from callserver.plugins import load_plugins, order
from devtools.services import free_port
from tests.integration.test_campaigns_voice import said
from tests.pbxsim_proc import run_pbxsim

pytestmark = pytest.mark.integration
TOKEN = "feedback-comment"
PATIENT = "+79990000201"
SENTENCE = "the doctor was very good thank you"
HEARD = {"doctor", "very", "good", "thank"}
"""Words of the sentence; pocketsphinx hears "the doctor was really good thank you"."""
SCENARIO = """name = "feedback-comment"
description = "a patient scoring a visit by key and leaving a spoken comment"
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
reply_after = "keys"
answer = 1.0
noanswer = 0.0
busy = 0.0
congestion = 0.0
audio = {{ "79990000201" = ["{comment}"] }}
dtmf = {{ "79990000201" = ["2"] }}
"""


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def test_a_spoken_feedback_comment_is_recorded_transcribed_and_reaches_the_manager(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "feedback.toml"
    scenario.write_text(SCENARIO.format(comment=said(tmp_path, "comment", SENTENCE)))
    recordings = tmp_path / "recordings"
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
            "CALLSERVER_IVR_RECORDINGS_DIR": str(recordings),
        })  # fmt: skip
        server = await CallServer.create(config, order(load_plugins(config)))
        await server.start()
        pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=3)
        try:
            async with asyncio.timeout(30):
                await server.database.ready.wait()
            async with aiohttp.ClientSession(f"http://127.0.0.1:{config.http.port}") as http:
                cid = await _campaign(http)
                dial = await _settled(pool, cid, within=40.0)
                results = await (await http.get(f"/api/campaigns/{cid}", headers=_auth())).json()
                export = await (await http.get(f"/api/campaigns/{cid}/export.csv",
                                               headers=_auth())).text()  # fmt: skip
            jobs = await pool.fetch("SELECT phone, reason, queue, comment FROM callback_jobs")
        finally:
            await pool.close()
            await server.aclose()
    _check(dial, results, export, jobs, recordings)


async def _campaign(http: aiohttp.ClientSession) -> int:
    settings = {"clinic_name": "Smile", "tz": "UTC", "window": "00:00-23:59",
                "max_attempts": 1}  # fmt: skip
    made = await http.post("/api/campaigns", headers=_auth(), json={
        "name": "Feedback", "kind": "feedback", "settings": settings, "source": {"type": "csv"}})
    cid = int((await made.json())["id"])
    added = await http.post(f"/api/campaigns/{cid}/csv", headers=_auth(),
                            data=f"phone,name,lang\n{PATIENT},Patient A,en\n")  # fmt: skip
    assert (await added.json())["added"] == 1
    run = await http.post(f"/api/campaigns/{cid}/state", json={"state": "running"},
                          headers=_auth())  # fmt: skip
    assert run.status == 200
    return cid


async def _settled(pool: asyncpg.Pool, cid: int, within: float) -> asyncpg.Record:
    async with asyncio.timeout(within):
        while True:
            row = await pool.fetchrow(
                "SELECT result, outcome, data::text AS data FROM campaign_dials "
                "WHERE campaign_id = $1 AND result <> 'dialing'", cid)  # fmt: skip
            if row is not None:
                return row
            await asyncio.sleep(0.2)


def _check(dial: asyncpg.Record, results: dict[str, object], export: str,
           jobs: list[asyncpg.Record], recordings: Path) -> None:  # fmt: skip
    assert (dial["result"], dial["outcome"]) == ("answered", "low_score"), dial
    data = json.loads(dial["data"])
    assert data["score"] == "2" and data["comment_status"] == "transcribed", data
    words = set(data["comment"].split())
    assert words & HEARD, data  # really transcribed: words of the sentence
    wav = Path(data["comment_recording"])
    assert wav.parent == recordings and wav.name.startswith("dial-") and wav.stat().st_size > 0
    with wave.open(str(wav), "rb") as w:
        seconds = w.getnframes() / w.getframerate()
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
    assert 1.5 < seconds < 6.0 and float(data["comment_duration_s"]) == pytest.approx(seconds,
                                                                                    abs=0.01)
    # the manager's task (callbacks plugin) carries the patient's words
    assert [(j["phone"], j["reason"], j["queue"]) for j in jobs] == [
        (PATIENT, "campaign_feedback_low_score", "managers")]
    assert data["comment"] in jobs[0]["comment"]
    # the results API and the CSV export show the comment
    feedback = results["feedback"]
    assert isinstance(feedback, list) and feedback[0]["comment"] == data["comment"]
    assert feedback[0]["comment_recording"] == str(wav) and feedback[0]["score"] == "2"
    rows = list(csv.DictReader(io.StringIO(export)))
    assert rows[0]["comment"] == data["comment"] and rows[0]["score"] == "2"
    assert rows[0]["comment_status"] == "transcribed"
