"""Hangups at awkward moments of a transfer or a hold (beyond the golden transcripts):
every call flow ends, every channel is hung up, nothing is left behind.

pbxsim runs in-process at 20x; a test-local AMI client sends ``Action: Hangup`` of the
caller's or the operator's channel a second (scenario) after a chosen event.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.scenario import load

pytestmark = pytest.mark.integration


async def _rest(reader: asyncio.StreamReader) -> bytes:
    """What is still in flight once the scenario ended (until 0.3 s of quiet)."""
    data = b""
    while True:
        try:
            async with asyncio.timeout(0.3):
                chunk = await reader.read(65536)
        except TimeoutError:
            return data
        data += chunk


async def _hangup_after(scenario: str, event: str, prefix: str) -> tuple[bytes, list[str]]:
    """Run ``scenario``; 1 s after the first ``event`` hang up the channel named ``prefix…``.
    Returns the AMI bytes read and the channels still up when the scenario ended."""
    pbx = Pbx(load(scenario), PbxOptions(ami_port=0, agi_port=1, speed=20, agi_timeout_s=0.3))
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    buf, sent = b"", False
    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
        run = asyncio.create_task(pbx.run_scenario())
        async with asyncio.timeout(40):
            while not run.done():
                try:
                    async with asyncio.timeout(0.1):
                        buf += await reader.read(65536)
                except TimeoutError:
                    continue
                if not sent and f"Event: {event}\r\n".encode() in buf:
                    await asyncio.sleep(1.0 / 20)
                    name = next(c for c in pbx.engine.channels if c.startswith(prefix))
                    writer.write(f"Action: Hangup\r\nChannel: {name}\r\n\r\n".encode())
                    sent = True
            await run
            buf += await _rest(reader)
        left = list(pbx.engine.channels)
    finally:
        writer.close()
        await pbx.aclose()
    assert sent, f"{event} never came"
    return buf, left


@pytest.mark.parametrize(
    ("scenario", "event", "who"),
    [
        ("blind-transfer", "DialBegin", "PJSIP/trunk"),  # caller gone while op102 rings
        ("attended-transfer", "LocalBridge", "PJSIP/trunk"),  # caller gone in consultation
        ("attended-transfer", "LocalBridge", "PJSIP/op101"),  # transferer gone early
        ("hold", "MusicOnHoldStart", "PJSIP/trunk"),  # caller hangs up on hold
        ("hold", "MusicOnHoldStart", "PJSIP/op101"),  # operator hangs up while holding
    ],
)
async def test_hangup_during_transfer_or_hold_leaves_nothing_behind(
    scenario: str, event: str, who: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="pbxsim")
    data, left = await _hangup_after(scenario, event, who)
    assert left == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert b"Message: Channel Hungup" in data
    assert data.count(b"Event: Newchannel\r\n") == data.count(b"Event: Hangup\r\n")
    if scenario == "hold":  # the music on hold always stops
        assert data.count(b"Event: MusicOnHoldStart") == data.count(b"Event: MusicOnHoldStop")
