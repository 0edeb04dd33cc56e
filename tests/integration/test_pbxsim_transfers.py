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


async def test_transfer_actions_errors_and_a_transfer_to_nobody() -> None:
    """BlindTransfer/Atxfer answers like manager.c for bad requests; only the operator's
    leg of a connected queue call can be transferred; a target that does not exist ends
    the call (the caller's Dial fails: DIALSTATUS CHANUNAVAIL, then Hangup)."""
    pbx = Pbx(load("hold"), PbxOptions(ami_port=0, agi_port=1, speed=20, agi_timeout_s=0.3))
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    buf = b""

    async def until(marker: bytes) -> str:
        nonlocal buf
        while marker not in buf:
            buf += await reader.read(65536)
        at = buf.index(marker)
        start = buf.rfind(b"\r\n\r\n", 0, at) + 4 if b"\r\n\r\n" in buf[:at] else 0
        end = buf.index(b"\r\n\r\n", at)
        text, buf = buf[start : end + 4].decode(), buf[end + 4 :]
        return text

    def send(i: str, action: str, **fields: str) -> None:
        lines = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        writer.write(f"Action: {action}\r\nActionID: {i}\r\n{lines}\r\n".encode())

    run = asyncio.create_task(pbx.run_scenario())
    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
        async with asyncio.timeout(20):
            connect = await until(b"Event: AgentConnect")
            op = connect.split("DestChannel: ", 1)[1].split("\r\n", 1)[0]
            caller = connect.split("\r\nChannel: ", 1)[1].split("\r\n", 1)[0]
            send("e1", "BlindTransfer", Exten="102")
            send("e2", "Atxfer", Channel=op)
            send("e3", "BlindTransfer", Channel="PJSIP/nobody-00000099", Exten="102")
            send("e4", "Atxfer", Channel="PJSIP/nobody-00000099", Exten="102")
            send("e5", "BlindTransfer", Channel=caller, Exten="102")
            replies = [await until(f"ActionID: e{n}".encode()) for n in range(1, 6)]
            send("ok", "BlindTransfer", Channel=op, Exten="999", Context="operators")
            ok = await until(b"ActionID: ok")
            blind = await until(b"Event: BlindTransfer")
            status = await until(b"Value: CHANUNAVAIL")
            await until(b"Event: Hangup\r\nPrivilege: call,all\r\nTimestamp")
            await run
    finally:
        writer.close()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await pbx.aclose()
    messages = [r.split("Message: ", 1)[1].split("\r\n", 1)[0] for r in replies]
    assert messages == [
        "No channel specified",
        "No extension specified",
        "No such channel",
        "Channel specified does not exist",
        "Transfer failed",
    ]
    assert all("Response: Error" in r for r in replies)
    assert "Message: Transfer succeeded" in ok
    assert "Extension: 999" in blind and "Context: operators" in blind
    assert "Variable: DIALSTATUS" in status
    assert pbx.engine.channels == {}
