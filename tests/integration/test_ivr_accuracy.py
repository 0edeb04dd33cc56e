"""Intent accuracy of the voice bot end to end: ≥ 60 espeak-ng English utterances, one pbxsim call
each, the caller's voice sent over real externalMedia RTP into callserver's bot (routing →
ivr session → RTP endpoint → jitter → VAD → pocketsphinx in worker processes → intent → dialog).

The utterances are the recognition helper's set (``tests/fixtures/speech/make_utterances.py``:
7 voices, 5 speeds, telephone band, 20–35 dB SNR, µ-law). A main-menu utterance is the caller's
first words; a yes/no one follows "book an appointment" in the same voice, so it is heard in
the confirm state. pbxsim runs as its own process (``tests/ivr_pbx.py``: a voice per caller).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callserver.app import CallServer
from callserver.config import load_config
from callserver.plugins import load_plugins, order
from devtools.services import free_port, port_open
from recognition.audio import pcm16_samples
from tests.fixtures.speech.make_utterances import ensure_utterances
from tests.fixtures.speech.synth import speak
from tests.integration.test_end_to_end import wait_for
from tests.integration.test_ivr_end_to_end import RULES, bot_calls, write_wav

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parent.parent / "fixtures" / "ivr"
SPACING_S = 0.4
HOLD_S = 25.0
"""The caller stays this long (scenario = wall seconds) unless the bot ends the call: room for
a machine busy with other work; the test ends as soon as every call has been heard."""


def caller(i: int) -> str:
    return f"7916000{i:04d}"


def make_plan(outdir: Path, items: list[dict[str, Any]], tmp: Path) -> dict[str, Any]:
    calls = []
    lead: dict[str, np.ndarray] = {}
    for i, item in enumerate(items):
        samples = pcm16_samples((outdir / str(item["file"])).read_bytes())
        if item["state"] == "confirm":
            voice = str(item["voice"])
            if voice not in lead:
                lead[voice] = speak("book an appointment", voice=voice, pad_s=(0.3, 1.6))
            samples = np.concatenate([lead[voice], samples])
        wav = write_wav(tmp / f"{i:03d}.wav", samples)
        calls.append({"caller": caller(i), "wav": str(wav), "at": i * SPACING_S, "hold_s": HOLD_S})
    return {"scenario": str(FIXTURES / "bot-line.toml"), "speed": 1.0, "calls": calls}


async def test_intent_accuracy_over_pbxsim_rtp_is_at_least_90_percent(
    request: pytest.FixtureRequest, fresh_pg_dsn: str, redis_url: str, redis_prefix: str,
    tmp_path: Path,
) -> None:
    outdir = Path(request.config.cache.mkdir("speech-utterances"))
    items = ensure_utterances(outdir)
    assert len(items) >= 60
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(make_plan(outdir, items, tmp_path)))
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    ami, ari, rtp = free_port(), free_port(), min(free_port(), 65000)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONTRACEMALLOC"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.ivr_pbx", "--plan", str(plan),
        "--ami", f"127.0.0.1:{ami}", "--ari", f"127.0.0.1:{ari}", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
    try:
        await wait_for(lambda: port_open("127.0.0.1", ari, 0.05), 30)
        config = load_config(None, env={
            "CALLSERVER_AMI_PORT": str(ami), "CALLSERVER_AMI_SECRET": "callserver",
            "CALLSERVER_ARI_URL": f"http://127.0.0.1:{ari}/ari",
            "CALLSERVER_ARI_PASSWORD": "callserver", "CALLSERVER_AGI_PORT": str(free_port()),
            "CALLSERVER_DATABASE_DSN": fresh_pg_dsn,
            "CALLSERVER_REDIS_URL": redis_url, "CALLSERVER_REDIS_PREFIX": redis_prefix,
            "CALLSERVER_HTTP_PORT": str(free_port()), "CALLSERVER_HTTP_API_TOKEN": "t",
            "CALLSERVER_ROUTING_RULES_FILE": str(rules), "CALLSERVER_IVR_LANGUAGE": "en",
            "CALLSERVER_IVR_SILENCE_S": "20", "CALLSERVER_IVR_RTP_PORT_MIN": str(rtp),
            "CALLSERVER_IVR_RTP_PORT_MAX": str(rtp + 199), "CALLSERVER_IVR_MAX_CALLS": "100",
            "CALLSERVER_IVR_PREWARM": "16", "CALLSERVER_IVR_LOAD_AT_START": "true",
        })  # fmt: skip
        server = await CallServer.create(config, order(load_plugins(config)))
        await server.start()
        try:
            done = await wait_for(lambda: _all_heard(server, items),
                                  len(items) * SPACING_S + HOLD_S + 30)  # fmt: skip
        finally:
            await server.aclose()
    finally:
        proc.terminate()
        await proc.wait()
    right, wrong = score(items, done["calls"])
    accuracy = right / len(items)
    print(f"ivr accuracy over pbxsim RTP: {accuracy:.3f} ({right}/{len(items)}); "
          f"misses: {sorted(wrong.items())}")  # fmt: skip
    assert accuracy >= 0.90, wrong


async def _all_heard(server: CallServer, items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Every call either ended or has been heard in the state its utterance is scored in."""
    data = await bot_calls(server)
    calls = data["calls"] + data["active_calls"]
    if data["calls_total"] < len(items):
        return None
    by_index = {int(str(c["caller"])[-4:]): c for c in data["active_calls"]}
    for i, call in by_index.items():
        if not any(h["state"] == items[i]["state"] and h["text"] for h in call["heard"]):
            return None
    return {"calls": calls}


def score(items: list[dict[str, Any]], calls: list[dict[str, Any]]
          ) -> tuple[int, Counter[str]]:  # fmt: skip
    """Right answers, and the misses as ``expected->heard`` counts. A call is matched to its
    utterance by the last four digits of the (masked) caller number."""
    by_index = {int(str(c["caller"])[-4:]): c for c in calls}
    right, wrong = 0, Counter[str]()
    for i, item in enumerate(items):
        heard = [h for h in by_index.get(i, {}).get("heard", [])
                 if h["state"] == item["state"] and h["text"]]  # fmt: skip
        got = heard[0]["intent"] if heard else "nothing"
        if got == item["intent"]:
            right += 1
        else:
            wrong[f"{item['intent']}->{got}"] += 1
    return right, wrong
