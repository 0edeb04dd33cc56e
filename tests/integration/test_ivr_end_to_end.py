"""The voice bot end to end: pbxsim (a separate process: AMI, ARI, externalMedia RTP) →
callserver with every plugin (routing decides ``bot``, ivr answers) → PostgreSQL.

* speech: the caller's espeak-ng "I want to book an appointment … yes" arrives over real RTP;
  the bot recognises it (pocketsphinx in worker processes), confirms, and the appointment
  request is in the CRM outbox;
* keypad only (recognition switched off): 1 (book), 1 (yes) → the same request;
* operator frees up while the caller is in the bot: AMI QueueAdd puts op101 in the queue, the
  bot sends the call back with ROUTE_PRIORITY raised and ROUTE_MODE=queue.
"""

from __future__ import annotations

import contextlib
import json
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import numpy as np
import pytest

from callserver.app import CallServer
from callserver.config import load_config
from callserver.plugins import LoadedPlugin, load_plugins, order
from devtools.services import free_port
from tests.fixtures.speech.synth import speak
from tests.integration.test_end_to_end import CapturePlugin, wait_for
from tests.pbxsim_proc import Pbx, run_pbxsim

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ivr"
RULES = """version = "ivr-test"
[defaults]
queue = "reception"
language = "en"
languages = ["en", "ru"]
[queues.reception]
priority = 0
empty_mode = "bot"
"""


def write_wav(path: Path, samples: Any) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return path


def caller_wav(tmp: Path, *phrases: str, gap_s: float = 1.6) -> Path:
    """The caller's side: each phrase, then ``gap_s`` of silence (room for the bot's prompt)."""
    parts = [speak(p, pad_s=(0.3, gap_s)) for p in phrases]
    return write_wav(tmp / "caller.wav", np.concatenate(parts))


@pytest.fixture
def bot_stack(fresh_pg_dsn: str, redis_url: str, redis_prefix: str,
              tmp_path: Path) -> Callable[..., Any]:  # fmt: skip
    @contextlib.asynccontextmanager
    async def start(scenario: str, *, speed: float, extra: tuple[str, ...] = (),
                    env: dict[str, str] | None = None, plugins: tuple[Any, ...] = (),
                    ) -> AsyncIterator[tuple[CallServer, Pbx]]:  # fmt: skip
        rtp = min(free_port(), 65400)
        rules = tmp_path / "rules.toml"
        rules.write_text(RULES)
        async with run_pbxsim(str(FIXTURES / f"{scenario}.toml"), speed=speed,
                              agi_port=free_port(), extra=extra) as pbx:
            config = load_config(None, env={
                "CALLSERVER_AMI_PORT": str(pbx.ami_port), "CALLSERVER_AMI_SECRET": "callserver",
                "CALLSERVER_ARI_URL": f"http://127.0.0.1:{pbx.ari_port}/ari",
                "CALLSERVER_ARI_PASSWORD": "callserver",
                "CALLSERVER_AGI_PORT": str(pbx.agi_port),
                "CALLSERVER_DATABASE_DSN": fresh_pg_dsn,
                "CALLSERVER_DATABASE_FLUSH_INTERVAL": "0.05",
                "CALLSERVER_REDIS_URL": redis_url, "CALLSERVER_REDIS_PREFIX": redis_prefix,
                "CALLSERVER_HTTP_PORT": str(free_port()), "CALLSERVER_HTTP_API_TOKEN": "t",
                "CALLSERVER_ROUTING_RULES_FILE": str(rules),
                "CALLSERVER_IVR_LANGUAGE": "en", "CALLSERVER_IVR_WORKERS": "1",
                "CALLSERVER_IVR_LOAD_AT_START": "true",
                "CALLSERVER_IVR_SILENCE_S": "3",
                "CALLSERVER_IVR_RTP_PORT_MIN": str(rtp),
                "CALLSERVER_IVR_RTP_PORT_MAX": str(rtp + 99),
                **(env or {}),
            })  # fmt: skip
            loaded = [*load_plugins(config), *(LoadedPlugin(p, None) for p in plugins)]
            server = await CallServer.create(config, order(loaded))
            await server.start()
            try:
                yield server, pbx
            finally:
                await server.aclose()

    return start


async def callback_jobs(dsn: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT phone, reason FROM callback_jobs")
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def outbox(dsn: str, kind: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT kind, payload FROM crm_outbox WHERE kind = $1", kind)
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()
    return [json.loads(r["payload"]) if isinstance(r["payload"], str) else dict(r["payload"])
            for r in rows]  # fmt: skip


async def bot_calls(server: CallServer) -> dict[str, Any]:
    url = f"http://127.0.0.1:{server.config.http.port}/api/ivr/calls"
    async with aiohttp.ClientSession() as http:
        resp = await http.get(url, headers={"Authorization": "Bearer t"})
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


async def test_spoken_booking_becomes_an_appointment_request(
    bot_stack: Callable[..., Any], fresh_pg_dsn: str, tmp_path: Path
) -> None:
    wav = caller_wav(tmp_path, "i want to book an appointment", "yes")
    async with bot_stack("bot-line", speed=1.0, extra=("--ari-audio", str(wav))) as (server, _):
        requests = await wait_for(lambda: outbox(fresh_pg_dsn, "appointment_request"), 40)
        data = await wait_for(lambda: _finished(server), 10)
    assert len(requests) == 1
    req = requests[0]
    assert req["phone"].lstrip("+") == "79161234567"
    assert "intent=book" in req["comment"]
    call = data["calls"][0]
    assert call["speech"] is True
    assert call["outcome"] == "appointment"
    intents = [h["intent"] for h in call["heard"] if h["text"]]
    assert intents[:2] == ["book", "yes"], call["heard"]
    assert call["prompts_stopped"] >= 1  # the caller spoke over the greeting: barge-in
    assert data["recognition"]["available"] is True


async def _finished(server: CallServer) -> dict[str, Any] | None:
    data = await bot_calls(server)
    return data if data["calls"] else None


async def test_keypad_only_booking_when_recognition_is_off(
    bot_stack: Callable[..., Any], fresh_pg_dsn: str
) -> None:
    env = {"CALLSERVER_IVR_BACKEND": "none"}
    async with bot_stack("bot-line-dtmf", speed=2.0, env=env) as (server, _):
        requests = await wait_for(lambda: outbox(fresh_pg_dsn, "appointment_request"), 30)
        data = await wait_for(lambda: _finished(server), 10)
    assert len(requests) == 1
    assert "intent=book" in requests[0]["comment"]
    call = data["calls"][0]
    assert call["speech"] is False
    assert data["recognition"]["available"] is False
    assert call["keys"] == "11"
    assert call["outcome"] == "appointment"


async def test_operator_freeing_up_sends_the_caller_back_to_the_queue_first(
    bot_stack: Callable[..., Any], fresh_pg_dsn: str
) -> None:
    capture = CapturePlugin()
    env = {"CALLSERVER_IVR_BACKEND": "none", "CALLSERVER_IVR_SILENCE_S": "20"}
    async with bot_stack("bot-line", speed=1.0, env=env, plugins=(capture,)) as (server, _):
        await wait_for(lambda: _active(server), 20)
        reply = await server.ami.send_action(
            "QueueAdd", {"Queue": "reception", "Interface": "PJSIP/op101"}, timeout=5)
        assert reply.get("Response") == "Success"
        data = await wait_for(lambda: _finished(server), 15)
        sets = {e["variable"]: e["value"] for e in capture.seen
                if e.get("type") == "ChannelVarset" and e.get("variable", "").startswith(
                    ("ROUTE_", "IVR_"))}  # fmt: skip
        ends = [e for e in capture.seen if e.get("type") == "StasisEnd"]
    assert data["calls"][0]["outcome"] == "queue"
    assert sets["ROUTE_MODE"] == "queue"
    assert sets["ROUTE_QUEUE"] == "reception"
    assert sets["ROUTE_PRIORITY"] == "10"  # 0 from routing + priority_boost 10
    assert sets["IVR_OUTCOME"] == "queue"
    assert ends, "the caller left Stasis (continue)"
    assert await outbox(fresh_pg_dsn, "callback_request") == []


async def _active(server: CallServer) -> bool:
    return bool((await bot_calls(server))["active"])


async def test_a_silent_caller_is_asked_twice_then_gets_a_callback_request(
    bot_stack: Callable[..., Any], fresh_pg_dsn: str
) -> None:
    env = {"CALLSERVER_IVR_BACKEND": "none", "CALLSERVER_IVR_SILENCE_S": "1"}
    async with bot_stack("bot-line", speed=2.0, env=env) as (server, _):
        # the callbacks plugin provides callback_jobs: the bot's callback is a job there
        jobs = await wait_for(lambda: callback_jobs(fresh_pg_dsn), 30)
        data = await wait_for(lambda: _finished(server), 10)
    assert len(jobs) == 1
    assert jobs[0]["reason"] == "bot_no_input"
    assert jobs[0]["phone"].lstrip("+") == "79161234567"
    assert data["calls"][0]["outcome"] == "callback"
    assert await outbox(fresh_pg_dsn, "appointment_request") == []
