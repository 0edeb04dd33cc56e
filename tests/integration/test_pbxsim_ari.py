"""pbxsim's ARI server over real sockets, driven by a plain-aiohttp ARI client.

The main test replays the lab session of ``ari-stasis-call.jsonl`` / ``ari-rest-examples.txt``
(the same requests in the same order) against the ``stasis-dtmf`` call and compares the
event types, their order and their key sets (values such as ids and timestamps may differ),
and the REST statuses and body shapes. It also checks the externalMedia RTP stream (headers,
20 ms pacing, the caller's WAV audio) and that the bot's RTP is received.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import itertools
import json
import math
import socket
import statistics
import struct
import sys
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.ari import AriConfig, AriServer, attach
from pbxsim.ari.app_adapter import AriApp
from pbxsim.dialplan import InboundCall
from pbxsim.rtp import RtpEndpoint, RtpPacket, alaw_encode, get_format
from pbxsim.scenario import load
from tests.contract import golden as ami_golden
from tests.transcripts import from_asterisk

pytestmark = pytest.mark.integration
AMI_GOLDEN = "ami-during-ari-call.txt"

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk"
SPEED = 2.0


def basic(user: str, password: str) -> dict[str, str]:
    """An ``Authorization: Basic`` header, built by hand (no client library's helper)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


AUTH = basic("callserver", "callserver")
TIMEOUT_S = 8.0


# -- golden data --------------------------------------------------------------------------
def shape(value: Any) -> Any:
    """Keys and value types, recursively (list contents vary between runs)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def golden_events() -> list[dict[str, Any]]:
    lines = (GOLDEN / "ari-stasis-call.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def golden_exchanges() -> list[tuple[str, int, Any]]:
    """(method, status, JSON body or None) of each request/response in the REST transcript."""
    text = (GOLDEN / "ari-rest-examples.txt").read_text()
    blocks = text.split("\n### ")[1:]
    out: list[tuple[str, int, Any]] = []
    method = ""
    for block in blocks:
        head, _, body = block.partition("\n")
        if head.endswith(">>> request"):
            method = body.split(" ", 1)[0]
        elif head.endswith("<<< response"):
            status = int(body.split(" ", 2)[1])
            payload = body.replace("\r\n", "\n").split("\n\n", 1)[1].strip()
            out.append((method, status, json.loads(payload) if payload else None))
    return out


def describe(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e.get('type')} {json.dumps(shape(e), sort_keys=True)}" for e in events]


def stable(ev: dict[str, Any]) -> str:
    """The values that must match the golden call too (no ids, names or timestamps)."""
    parts = [str(ev.get("type"))]
    for key in ("args", "variable", "digit", "duration_ms", "dialstatus", "cause", "soft"):
        if key in ev:
            parts.append(f"{key}={ev[key]}")
    for key in ("channel", "peer"):
        if key in ev:
            ch = ev[key]
            parts.append(f"{key}={ch['name'].split('/')[0]}:{ch['state']}")
    if "playback" in ev:
        parts.append(f"playback={ev['playback']['media_uri']}:{ev['playback']['state']}")
    if "bridge" in ev:
        br = ev["bridge"]
        parts.append(
            f"bridge={br['bridge_type']}:{br['bridge_class']}:{br['creator']}:{br['name']}"
        )
    return " ".join(parts)


def assert_same_shapes(expected: list[str], actual: list[str], what: str) -> None:
    if expected != actual:
        diff = "\n".join(difflib.unified_diff(expected, actual, "golden", "pbxsim", lineterm=""))
        pytest.fail(f"{what} drifted from the golden transcript:\n{diff}")


# -- harness --------------------------------------------------------------------------------
@dataclass
class Harness:
    pbx: Pbx
    ari: AriServer
    http: aiohttp.ClientSession
    wav_pcm: bytes
    exchanges: list[tuple[str, int, Any, str]] = field(default_factory=list)
    ami: list[bytes] = field(default_factory=list)
    """Every AMI event the engine emitted (what an AMI client would have read)."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ari.port}/ari"

    async def call(self, method: str, path: str, **params: str) -> Any:
        """One REST request; records (method, status, body, Location) and returns the body."""
        async with self.http.request(method, self.base + path, params=params) as resp:
            raw = await resp.text()
            body = json.loads(raw) if raw else None
            self.exchanges.append((method, resp.status, body, resp.headers.get("Location", "")))
            return body


class Events:
    """Frames of one events websocket, read on demand."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def until(self, type_: str, count: int = 1, channel: str = "") -> dict[str, Any]:
        """The ``count``-th event of ``type_`` (about ``channel`` when given)."""

        def hits() -> list[dict[str, Any]]:
            return [
                e
                for e in self.seen
                if e["type"] == type_
                and (not channel or e.get("channel", e.get("peer", {})).get("id") == channel)
            ]

        async with asyncio.timeout(TIMEOUT_S):
            while len(hits()) < count:
                msg = await self.ws.receive()
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                self.seen.append(json.loads(msg.data))
        return hits()[count - 1]

    async def start_of(self, caller: str) -> str:
        """The channel id of the StasisStart whose caller number is ``caller``."""
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                for e in self.seen:
                    if e["type"] == "StasisStart" and e["channel"]["caller"]["number"] == caller:
                        return str(e["channel"]["id"])
                msg = await self.ws.receive()
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                self.seen.append(json.loads(msg.data))


def tone_wav(path: Path, seconds: float = 1.0) -> bytes:
    samples = [
        int(9000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(int(8000 * seconds))
    ]
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    return pcm


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    pcm = tone_wav(tmp_path / "caller.wav")
    pbx = Pbx(load("stasis-dtmf"), PbxOptions(ami_port=0, speed=SPEED))
    await pbx.start()
    ari = AriServer(pbx.engine, AriConfig(port=0, audio=tmp_path / "caller.wav"))
    attach(pbx.engine, ari)
    ami: list[bytes] = []
    tap = pbx.engine.sink

    def record(data: bytes) -> None:
        tap(data)
        ami.append(data)

    pbx.engine.sink = record
    await ari.start()
    try:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with aiohttp.ClientSession(headers=AUTH, timeout=timeout) as http:
            yield Harness(pbx, ari, http, pcm, ami=ami)
    finally:
        await ari.aclose()
        await pbx.aclose()


class RtpSink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes]] = []

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.packets.append((asyncio.get_running_loop().time(), data))


def the_call() -> InboundCall:
    return load("stasis-dtmf").calls[0][1]


# -- the golden Stasis call -------------------------------------------------------------------
async def test_stasis_dtmf_call_matches_golden_events_rest_and_rtp(harness: Harness) -> None:
    h = harness
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(RtpSink, local_addr=("127.0.0.1", 0))
    rtp_port = transport.get_extra_info("sockname")[1]
    try:
        url = f"{h.base}/events?app=callserver&subscribeAll=false"
        async with h.http.ws_connect(url) as ws:
            events = Events(ws)
            await h.call("GET", "/asterisk/info")
            await h.call("GET", "/applications/callserver")
            h.pbx.start_call(the_call())
            start = await events.until("StasisStart")
            assert start["args"] == ["inbound", "74959990000"]
            cid = start["channel"]["id"]
            bot_port = await _drive_call(h, events, cid, rtp_port)
            await events.until("BridgeDestroyed")
    finally:
        transport.close()
    assert_same_shapes(describe(golden_events()), describe(events.seen), "ARI events")
    want = [stable(e) for e in golden_events()]
    assert_same_shapes(want, [stable(e) for e in events.seen], "ARI event values")
    _check_rest(h)
    _check_rtp_out(h, sink.packets)
    _check_rtp_in(h, bot_port)
    await h.pbx.wait_idle(TIMEOUT_S)
    _check_ami(h)


async def _drive_call(h: Harness, events: Events, cid: str, rtp_port: int) -> str:
    """The lab client's requests, in the order of ari-rest-examples.txt."""
    channels = await h.call("GET", "/channels")
    assert cid in [c["id"] for c in channels]
    assert await h.call("GET", f"/channels/{cid}/variable", variable="DID") == {
        "value": "74959990000"
    }
    await h.call("POST", f"/channels/{cid}/answer")
    assert (await events.until("ChannelStateChange"))["channel"]["state"] == "Up"
    await h.call("POST", f"/channels/{cid}/play/pb-hello", media="sound:hello-world", lang="en")
    assert (await events.until("PlaybackFinished"))["playback"]["state"] == "done"
    bridge = await h.call("POST", "/bridges", type="mixing", name="lab-bridge")
    bid = bridge["id"]
    await h.call("POST", f"/bridges/{bid}/addChannel", channel=cid)
    rtp = await h.call(
        "POST",
        "/channels/externalMedia",
        app="callserver",
        external_host=f"127.0.0.1:{rtp_port}",
        format="alaw",
        encapsulation="rtp",
        transport="udp",
        direction="both",
    )
    await h.call("POST", f"/bridges/{bid}/addChannel", channel=rtp["id"])
    assert (await h.call("GET", f"/bridges/{bid}"))["channels"] == [cid, rtp["id"]]
    await h.call("POST", f"/bridges/{bid}/play/pb-bridge", media="sound:tt-monkeys")
    _send_bot_audio(int(rtp["channelvars"]["UNICASTRTP_LOCAL_PORT"]))
    digits = [(await events.until("ChannelDtmfReceived", n))["digit"] for n in (1, 2)]
    assert digits == ["1", "2"]
    await h.call("DELETE", f"/channels/{rtp['id']}")
    await h.call("DELETE", f"/channels/{cid}", reason="normal")
    await h.call("DELETE", f"/bridges/{bid}")
    return str(rtp["id"])


def _send_bot_audio(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n in range(5):
            payload = alaw_encode(struct.pack("<160h", *([1000 * (n + 1)] * 160)))
            s.sendto(RtpPacket(8, 500 + n, 160 * n, 0xB07, payload).encode(), ("127.0.0.1", port))


def _check_ami(h: Harness) -> None:
    """The AMI side of the ARI-driven call is the one real Asterisk produced for it."""
    login = {"FullyBooted", "SuccessfulAuth"}
    want = [b for b in ami_golden.blocks(from_asterisk(AMI_GOLDEN)) if b[0][1] not in login]
    got = ami_golden.blocks(b"".join(h.ami))
    drift = ami_golden.compare(want, got)
    assert not drift, f"AMI during the ARI call drifted from {AMI_GOLDEN}:\n" + "\n\n".join(drift)


def _check_rest(h: Harness) -> None:
    golden = golden_exchanges()
    want = [f"{m} {s} {json.dumps(shape(b), sort_keys=True)}" for m, s, b in golden]
    got = [f"{m} {s} {json.dumps(shape(b), sort_keys=True)}" for m, s, b, _ in h.exchanges]
    assert_same_shapes(want, got, "REST responses")
    assert [loc for *_, loc in h.exchanges if loc] == [
        "/ari/playbacks/pb-hello",
        "/ari/playbacks/pb-bridge",
    ]


def _check_rtp_out(h: Harness, received: list[tuple[float, bytes]]) -> None:
    assert len(received) >= 30, f"only {len(received)} RTP packets"
    packets = [RtpPacket.parse(data) for _, data in received]
    assert {(p.version, p.payload_type, len(p.payload)) for p in packets} == {(2, 8, 160)}
    assert len({p.ssrc for p in packets}) == 1
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    for a, b in itertools.pairwise(packets):
        assert (b.sequence - a.sequence) % 65536 == 1
        assert (b.timestamp - a.timestamp) % 2**32 == 160
    for n in range(5):
        assert packets[n].payload == alaw_encode(h.wav_pcm[n * 320 : (n + 1) * 320])
    times = [t for t, _ in received]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 0.015 <= statistics.median(gaps) <= 0.025, statistics.median(gaps)
    assert 0.018 <= (times[-1] - times[0]) / (len(times) - 1) <= 0.024


def _check_rtp_in(h: Harness, channel_id: str) -> None:
    media = h.ari.media(channel_id)
    assert media is not None
    assert [p.sequence for p in media.received] == [500, 501, 502, 503, 504]
    pcm = media.received_pcm()
    assert len(pcm) == 5 * 160 * 2
    first = struct.unpack("<160h", pcm[:320])
    assert all(abs(v - 1000) < 64 for v in first)


# -- other flows --------------------------------------------------------------------------------
async def test_caller_hangup_in_stasis_ends_the_app_session(harness: Harness) -> None:
    h = harness
    async with h.http.ws_connect(f"{h.base}/events?app=callserver") as ws:
        events = Events(ws)
        spec = InboundCall(did="74959990000", caller="79035550101", stasis_hold_s=1.0)
        h.pbx.start_call(spec)
        cid = (await events.until("StasisStart"))["channel"]["id"]
        await h.call("POST", f"/channels/{cid}/answer")
        await h.call("POST", f"/channels/{cid}/play/long", media="sound:tt-monkeys")
        end = await events.until("StasisEnd")
    assert end["channel"]["id"] == cid
    types = [e["type"] for e in events.seen]
    assert types.index("ChannelHangupRequest") < types.index("PlaybackFinished")
    assert types.index("PlaybackFinished") == types.index("StasisEnd") - 1
    assert events.seen[types.index("PlaybackFinished")]["playback"]["state"] == "failed"
    request = next(e for e in events.seen if e["type"] == "ChannelHangupRequest")
    assert "soft" not in request and isinstance(request["cause"], int)
    await h.pbx.wait_idle(TIMEOUT_S)
    assert await h.call("GET", f"/channels/{cid}") == {"message": "Channel not found"}
    assert h.exchanges[-1][1] == 404


async def test_auth_errors_and_bad_requests(harness: Harness) -> None:
    h = harness
    async with aiohttp.ClientSession() as anon:
        bad = basic("callserver", "wrong")
        async with anon.get(f"{h.base}/asterisk/info", headers=bad) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Basic")
        async with anon.get(f"{h.base}/asterisk/info", params={"api_key": "callserver:x"}) as resp:
            assert resp.status == 401
        async with anon.get(
            f"{h.base}/channels", params={"api_key": "callserver:callserver"}
        ) as resp:
            assert resp.status == 200 and await resp.json() == []
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await anon.ws_connect(f"{h.base}/events?app=callserver&api_key=callserver:nope")
        assert err.value.status == 401
    assert await h.call("POST", "/channels/1795413228.999/answer") == {
        "message": "Channel not found"
    }
    assert h.exchanges[-1][1] == 404
    async with h.http.post(
        f"{h.base}/channels/1795413228.999/variable",
        data=b'{"variable": "X", "value": ',
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        assert await resp.json() == {"message": "Error parsing request body"}
    assert await h.call("DELETE", "/bridges/nope") == {"message": "Bridge not found"}
    assert await h.call("GET", "/nothing/here") == {"message": "Resource not found"}
    assert h.exchanges[-1][1] == 404


async def test_app_registered_only_while_a_socket_is_connected(harness: Harness) -> None:
    h = harness
    registry = h.pbx.engine.stasis
    builtin = registry.get("callserver")
    assert builtin is not None and not isinstance(builtin, AriApp)
    async with h.http.ws_connect(f"{h.base}/events?app=callserver"):
        assert isinstance(registry.get("callserver"), AriApp)
        app = await h.call("GET", "/applications/callserver")
        assert app["name"] == "callserver"
    async with asyncio.timeout(TIMEOUT_S):
        while registry.get("callserver") is not builtin:  # noqa: ASYNC110 (server-side state)
            await asyncio.sleep(0.01)
    assert await h.call("GET", "/applications/callserver") == {"message": "Application not found"}


async def _bridged_media(
    h: Harness, events: Events, caller: str, fmt: str, port: int
) -> tuple[str, str, str]:
    """Call from ``caller`` → answer → mixing bridge with an externalMedia leg to ``port``."""
    h.pbx.start_call(InboundCall(did="74959990000", caller=caller, stasis_hold_s=60.0))
    cid = await events.start_of(caller)
    await h.call("POST", f"/channels/{cid}/answer")
    bid = (await h.call("POST", "/bridges", type="mixing"))["id"]
    await h.call("POST", f"/bridges/{bid}/addChannel", channel=cid)
    host = f"127.0.0.1:{port}"
    rtp = await h.call(
        "POST", "/channels/externalMedia", app="callserver", external_host=host, format=fmt
    )
    await h.call("POST", f"/bridges/{bid}/addChannel", channel=rtp["id"])
    return cid, str(rtp["id"]), bid


@pytest.mark.parametrize(
    ("fmt", "pt", "size", "step"), [("ulaw", 0, 160, 160), ("slin16", 118, 640, 320)]
)
async def test_external_media_formats_and_teardown_by_caller_hangup(
    harness: Harness, fmt: str, pt: int, size: int, step: int
) -> None:
    h = harness
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(RtpSink, local_addr=("127.0.0.1", 0))
    try:
        async with h.http.ws_connect(f"{h.base}/events?app=callserver") as ws:
            events = Events(ws)
            port = transport.get_extra_info("sockname")[1]
            cid, rid, bid = await _bridged_media(h, events, "79990000001", fmt, port)
            async with asyncio.timeout(TIMEOUT_S):
                while len(sink.packets) < 10:  # noqa: ASYNC110 (UDP arrivals)
                    await asyncio.sleep(0.02)
            await h.call("DELETE", f"/channels/{cid}")
            await events.until("BridgeDestroyed")
    finally:
        transport.close()
    packets = [RtpPacket.parse(d) for _, d in sink.packets[:10]]
    assert {(p.payload_type, len(p.payload)) for p in packets} == {(pt, size)}
    assert all((b.timestamp - a.timestamp) % 2**32 == step for a, b in itertools.pairwise(packets))
    rtp_events = [e["type"] for e in events.seen if e.get("channel", {}).get("id") == rid]
    assert rtp_events[-2:] == ["StasisEnd", "ChannelDestroyed"]
    assert [e["type"] for e in events.seen if e.get("channel", {}).get("id") == cid][
        -1
    ] == "StasisEnd"
    assert await h.call("DELETE", f"/bridges/{bid}") is None
    assert h.exchanges[-1][1] == 204
    media = h.ari.media(rid)
    assert media is not None
    sent = media.sent
    await asyncio.sleep(0.1)
    assert media.sent == sent, "RTP kept flowing after the channel was destroyed"


async def test_concurrent_calls_keep_their_own_bridges_and_media(harness: Harness) -> None:
    h = harness
    async with h.http.ws_connect(f"{h.base}/events?app=callserver") as ws:
        events = Events(ws)
        first = await _bridged_media(h, events, "79990000011", "alaw", 9)
        second = await _bridged_media(h, events, "79990000022", "alaw", 9)
        bridges = {b["id"]: b["channels"] for b in await h.call("GET", "/bridges")}
        assert bridges == {first[2]: list(first[:2]), second[2]: list(second[:2])}
        await h.call("DELETE", f"/channels/{first[0]}")
        await events.until("ChannelDestroyed", channel=first[1])
        assert (await h.call("GET", f"/bridges/{second[2]}"))["channels"] == list(second[:2])
        assert (await h.call("GET", f"/channels/{second[1]}"))["state"] == "Up"
        await h.call("DELETE", f"/channels/{second[0]}")
        await events.until("ChannelDestroyed", channel=second[1])
    assert await h.call("GET", "/bridges") == []
    assert await h.call("GET", "/channels") == []


async def test_client_leaving_mid_call_leaves_the_call_to_the_caller(harness: Harness) -> None:
    h = harness
    async with h.http.ws_connect(f"{h.base}/events?app=callserver") as ws:
        events = Events(ws)
        h.pbx.start_call(InboundCall(did="74959990000", caller="79990000033", stasis_hold_s=1.0))
        cid = await events.start_of("79990000033")
        await h.call("POST", f"/channels/{cid}/answer")
    await h.pbx.wait_idle(TIMEOUT_S)
    assert h.pbx.engine.active_tasks == 0
    assert h.pbx.engine.find(cid) is None
    assert not isinstance(h.pbx.engine.stasis.get("callserver"), AriApp)


async def test_cli_serves_ari_with_its_credentials() -> None:
    """``python -m pbxsim --ari HOST:PORT --ari-user --ari-password`` over real sockets."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pbxsim", "--scenario", "stasis-dtmf", "--speed", "0.5",
        "--ami", "127.0.0.1:0", "--agi", "127.0.0.1:9", "--ari", f"127.0.0.1:{port}",
        "--ari-user", "bot", "--ari-password", "s3cret", "--keep-running",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(TIMEOUT_S):
            line = await proc.stdout.readline()
        assert f"ARI 127.0.0.1:{port}" in line.decode(), line
        base = f"http://127.0.0.1:{port}/ari"
        async with (
            aiohttp.ClientSession(headers=basic("bot", "s3cret")) as http,
            http.ws_connect(f"{base}/events?app=callserver") as ws,
        ):
            start = await Events(ws).until("StasisStart")
            assert start["args"] == ["inbound", "74959990000"]
            cid = start["channel"]["id"]
            async with http.delete(f"{base}/channels/{cid}") as resp:
                assert resp.status == 204
        async with (
            aiohttp.ClientSession(headers=AUTH) as http,
            http.get(f"{base}/channels") as resp,
        ):
            assert resp.status == 401
    finally:
        proc.terminate()
        async with asyncio.timeout(TIMEOUT_S):
            await proc.wait()


async def test_rtp_stream_restarts_without_gap_or_sequence_jump() -> None:
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(RtpSink, local_addr=("127.0.0.1", 0))
    media = RtpEndpoint(get_format("alaw"), ("127.0.0.1", transport.get_extra_info("sockname")[1]))
    try:
        await media.open()
        first_round = 0
        for want in (5, 10):
            media.start()
            async with asyncio.timeout(TIMEOUT_S):
                while len(sink.packets) < max(want, first_round + 3):  # noqa: ASYNC110 (UDP)
                    await asyncio.sleep(0.005)
            await media.stop()
            assert not media.running
            await asyncio.sleep(0.1)
            first_round = first_round or len(sink.packets)
    finally:
        await media.aclose()
        transport.close()
    packets = [RtpPacket.parse(d) for _, d in sink.packets]
    assert all((b.sequence - a.sequence) % 65536 == 1 for a, b in itertools.pairwise(packets))
    times = [t for t, _ in sink.packets]
    n = first_round  # the first packet after the restart
    assert times[n] - times[n - 1] >= 0.1
    assert times[n + 1] - times[n] < 0.06, "restart waited for the packets it did not send"
