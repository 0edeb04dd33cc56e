"""Outbound calls answered by simulated patients (AMI Originate of ``PJSIP/<n>@trunk``).

Outcomes pinned per number (answer after a ring, answering machine, busy, no answer) with
their OriginateResponse reasons and ledger lines; and a voice-bot style originate into
``Stasis(callserver,…)`` whose externalMedia stream carries the patient's WAV as RTP. pbxsim
runs in-process; the AMI and ARI clients here are test-local (no callserver code).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import wave
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.ari import AriConfig, AriServer, attach
from pbxsim.rtp import RtpPacket, ulaw_encode
from pbxsim.scenario import load

pytestmark = pytest.mark.integration
SPEED = 20.0
LOGIN = b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n"
NUMBERS = {
    "79160000001": "answer",
    "79160000002": "machine",
    "79160000003": "busy",
    "79160000004": "noanswer",
}


def _wav(path: Path, hz: float, seconds: float = 2.0) -> bytes:
    n = int(8000 * seconds)
    pcm = struct.pack(
        f"<{n}h", *(int(8000 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(n))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    return pcm


def _scenario(tmp_path: Path) -> Path:
    _wav(tmp_path / "patient.wav", 440)
    _wav(tmp_path / "machine.wav", 1000)
    pinned = ", ".join(f'"{k}" = "{v}"' for k, v in NUMBERS.items())
    path = tmp_path / "patients.toml"
    path.write_text(
        f"""name = "patients"
[originate]
ring_s = [1.0, 1.0]
talk_s = [4.0, 4.0]
machine_s = [2.0, 2.0]
numbers = {{ {pinned} }}
audio = {{ "79160000001" = ["{tmp_path / "patient.wav"}"] }}
machine_audio = ["{tmp_path / "machine.wav"}"]
""",
        encoding="utf-8",
    )
    return path


def _originate(number: str, app: str, data: str, extra: str = "") -> bytes:
    return (
        f"Action: Originate\r\nActionID: o-{number}\r\nChannel: PJSIP/{number}@trunk\r\n"
        f"Application: {app}\r\nData: {data}\r\nTimeout: 3000\r\nAsync: true\r\n{extra}\r\n"
    ).encode()


async def test_patients_answer_machine_busy_no_answer_and_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "calls.jsonl"
    opts = PbxOptions(ami_port=0, agi_port=1, speed=SPEED, ledger_path=str(ledger))
    pbx = Pbx(load(str(_scenario(tmp_path))), opts)
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    data = b""
    try:
        await reader.readline()
        writer.write(LOGIN + b"".join(_originate(n, "Wait", "30") for n in NUMBERS))
        async with asyncio.timeout(20):
            while data.count(b"Event: OriginateResponse") < len(NUMBERS) or (
                not ledger.exists() or len(ledger.read_text().splitlines()) < len(NUMBERS)
            ):
                data += await asyncio.wait_for(reader.read(65536), 20)
    finally:
        writer.close()
        await pbx.aclose()
    reasons = {}
    for block in data.split(b"\r\n\r\n"):
        text = block.decode()
        if text.startswith("Event: OriginateResponse"):
            fields = dict(line.split(": ", 1) for line in text.split("\r\n") if ": " in line)
            reasons[fields["ActionID"][2:]] = fields["Reason"]
    assert reasons == {
        "79160000001": "4", "79160000002": "4", "79160000003": "5", "79160000004": "3",
    }  # fmt: skip
    rows = {r["number"]: r for r in map(json.loads, ledger.read_text().splitlines())}
    assert {n: r["outcome"] for n, r in rows.items()} == NUMBERS
    assert all(r["direction"] == "outbound" for r in rows.values())
    assert rows["79160000001"]["talk_s"] == pytest.approx(4.0, abs=0.5)  # hung up before Wait(30)
    assert rows["79160000002"]["talk_s"] == pytest.approx(2.0, abs=0.5)  # the greeting
    assert rows["79160000001"]["audio"].endswith("patient.wav")
    assert rows["79160000002"]["audio"].endswith("machine.wav")
    assert rows["79160000003"]["answer"] is None and rows["79160000003"]["hangup_cause"] == 17


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.packets.append(data)


async def test_stasis_originate_sends_the_patients_wav_on_external_media(tmp_path: Path) -> None:
    """The Originate's ``Variable: PBXSIM_AUDIO=…`` (control hook) wins over the scenario's
    list; the bot's externalMedia socket receives exactly that audio, ulaw-encoded."""
    pcm = _wav(tmp_path / "hook.wav", 700)
    pbx = Pbx(load(str(_scenario(tmp_path))), PbxOptions(ami_port=0, agi_port=1, speed=2.0))
    await pbx.start()
    ari = AriServer(pbx.engine, AriConfig(port=0))
    attach(pbx.engine, ari)
    await ari.start()
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    auth = {"Authorization": "Basic " + base64.b64encode(b"callserver:callserver").decode()}
    base = f"http://127.0.0.1:{ari.port}/ari"
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    try:
        async with (
            aiohttp.ClientSession(headers=auth) as http,
            http.ws_connect(f"{base}/events?app=callserver") as ws,
        ):
            await reader.readline()
            hook = f"Variable: PBXSIM_AUDIO={tmp_path / 'hook.wav'}\r\n"
            writer.write(LOGIN + _originate("79160000001", "Stasis", "callserver,outbound", hook))
            async with asyncio.timeout(10):
                while (start := json.loads((await ws.receive()).data))["type"] != "StasisStart":
                    pass
            cid = start["channel"]["id"]
            assert start["args"] == ["outbound"]
            assert start["channel"]["name"].startswith("PJSIP/trunk-")
            async with http.post(f"{base}/bridges", params={"type": "mixing"}) as r:
                bid = (await r.json())["id"]
            await http.post(f"{base}/bridges/{bid}/addChannel", params={"channel": cid})
            host = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
            params = {"app": "callserver", "external_host": host, "format": "ulaw"}
            async with http.post(f"{base}/channels/externalMedia", params=params) as r:
                rtp = await r.json()
            await http.post(f"{base}/bridges/{bid}/addChannel", params={"channel": rtp["id"]})
            async with asyncio.timeout(10):
                while len(sink.packets) < 10:  # noqa: ASYNC110 (UDP arrivals)
                    await asyncio.sleep(0.02)
    finally:
        writer.close()
        transport.close()
        await ari.aclose()
        await pbx.aclose()
    payloads = [RtpPacket.parse(d).payload for d in sink.packets[:10]]
    assert payloads == [ulaw_encode(pcm[n * 320 : (n + 1) * 320]) for n in range(10)]


async def _until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while (ev := json.loads((await ws.receive()).data))["type"] != kind:
            pass
    return ev  # type: ignore[no-any-return]


async def test_the_patient_answers_after_each_prompt_by_voice_then_keys(tmp_path: Path) -> None:
    """``PBXSIM_REPLY_AFTER=prompt``: silence on externalMedia until the bot's first prompt
    finished, then the WAV; ``PBXSIM_DTMF=4|#``: one key group after each following prompt, as
    ARI ``ChannelDtmfReceived`` (``digit``, ``duration_ms`` 280 as in ari-stasis-call.jsonl)."""
    pcm = _wav(tmp_path / "yes.wav", 700)
    scenario = _scenario(tmp_path)  # the patient listens longer than the scenario's 4 s
    text = scenario.read_text().replace("talk_s = [4.0, 4.0]", "talk_s = [60.0, 60.0]")
    scenario.write_text(text)
    pbx = Pbx(load(str(scenario)), PbxOptions(ami_port=0, agi_port=1, speed=4.0))
    await pbx.start()
    ari = AriServer(pbx.engine, AriConfig(port=0))
    attach(pbx.engine, ari)
    await ari.start()
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    auth = {"Authorization": "Basic " + base64.b64encode(b"callserver:callserver").decode()}
    base = f"http://127.0.0.1:{ari.port}/ari"
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    keys: list[tuple[str, int, int]] = []
    try:
        async with (
            aiohttp.ClientSession(headers=auth) as http,
            http.ws_connect(f"{base}/events?app=callserver") as ws,
        ):
            await reader.readline()
            hook = (f"Variable: PBXSIM_AUDIO={tmp_path / 'yes.wav'}\r\n"
                    "Variable: PBXSIM_DTMF=4|#\r\nVariable: PBXSIM_REPLY_AFTER=prompt\r\n")
            writer.write(LOGIN + _originate("79160000001", "Stasis", "callserver,campaign,7",
                                            hook))  # fmt: skip
            cid = (await _until(ws, "StasisStart"))["channel"]["id"]
            async with http.post(f"{base}/bridges", params={"type": "mixing"}) as r:
                bid = (await r.json())["id"]
            host = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
            params = {"app": "callserver", "external_host": host, "format": "ulaw"}
            async with http.post(f"{base}/channels/externalMedia", params=params) as r:
                rtp = await r.json()
            for chan in (cid, rtp["id"]):
                await http.post(f"{base}/bridges/{bid}/addChannel", params={"channel": chan})
            for n in range(3):
                await http.post(f"{base}/channels/{cid}/play", params={"media": "sound:q"})
                await _until(ws, "PlaybackFinished")
                if n == 0:
                    before = len(sink.packets)
                    await asyncio.sleep(0.4)  # 1.6 scenario s: past QUIET_S, the WAV flows
                else:
                    ev = await _until(ws, "ChannelDtmfReceived")
                    keys.append((ev["digit"], ev["duration_ms"], n))
                    assert ev["channel"]["id"] == cid
    finally:
        writer.close()
        transport.close()
        await ari.aclose()
        await pbx.aclose()
    assert keys == [("4", 280, 1), ("#", 280, 2)]
    payloads = [RtpPacket.parse(d).payload for d in sink.packets]
    assert all(set(p) == {0xFF} for p in payloads[: before - 5])  # silence during the prompt
    first = ulaw_encode(pcm[:320])
    at = payloads.index(first)  # then the WAV from its first sample
    assert at >= before - 5
    assert payloads[at + 1 : at + 5] == [ulaw_encode(pcm[n * 320 : (n + 1) * 320])
                                         for n in range(1, 5)]  # fmt: skip
