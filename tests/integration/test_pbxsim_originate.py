"""pbxsim's AMI Originate to the trunk honours the action's Timeout like Asterisk.

``__ast_request_and_dial`` waits ``Timeout`` ms for an answer; when it expires the outcome
is Reason 3 (ringing). pbxsim in-process, a plain test-local AMI reader.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.scenario import load

pytestmark = pytest.mark.integration
SPEED = 50.0


async def _originate(number: str, timeout_ms: int) -> tuple[str, float]:
    """(Reason, scenario seconds from the queued response to OriginateResponse)."""
    sc = dataclasses.replace(load("originate"), calls=())
    pbx = Pbx(sc, PbxOptions(ami_port=0, agi_port=1, speed=SPEED))
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
        writer.write(
            f"Action: Originate\r\nChannel: PJSIP/{number}@trunk\r\nApplication: Wait\r\n"
            f"Data: 1\r\nTimeout: {timeout_ms}\r\nAsync: true\r\n\r\n".encode()
        )
        buf, queued = b"", 0.0
        async with asyncio.timeout(20.0):
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = await reader.read(65536)
                    assert chunk
                    buf += chunk
                raw, buf = buf.split(b"\r\n\r\n", 1)
                text = raw.decode()
                if "Originate successfully queued" in text:
                    queued = time.monotonic()
                if text.startswith("Event: OriginateResponse"):
                    reason = text.split("Reason: ", 1)[1].split("\r\n", 1)[0]
                    return reason, (time.monotonic() - queued) * SPEED
    finally:
        writer.close()
        await pbx.aclose()


async def test_answer_after_the_timeout_is_no_answer() -> None:
    """Bug: an 'answer' outcome whose ring time (3–12 s) exceeded Timeout answered anyway
    at the timeout (Reason 4)."""
    reason, took = await _originate("79990000004", 1000)
    assert reason == "3"
    assert took >= 0.9


async def test_no_answer_rings_until_the_timeout() -> None:
    """Bug: the 'noanswer' outcome gave Reason 3 after the drawn 3–12 s ring time, before
    the Originate's Timeout (20 s here) could have expired."""
    reason, took = await _originate("79990000003", 20000)
    assert reason == "3"
    assert took >= 19.0


async def test_ami_hangup_of_a_ringing_originate_ends_it() -> None:
    """Bug: the originated channel was only known to AMI Hangup once answered, so hanging
    up a ringing callback answered ``No such channel`` and the call rang on."""
    sc = dataclasses.replace(load("originate"), calls=())
    pbx = Pbx(sc, PbxOptions(ami_port=0, agi_port=1, speed=5.0))
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    buf = b""

    async def until(marker: bytes) -> str:
        nonlocal buf
        while marker not in buf:
            chunk = await reader.read(65536)
            assert chunk
            buf += chunk
        at = buf.index(marker)
        end = buf.index(b"\r\n\r\n", at)
        text, buf = buf[at : end + 4].decode(), buf[end + 4 :]
        return text

    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
        writer.write(
            b"Action: Originate\r\nChannel: PJSIP/79990000003@trunk\r\nApplication: Wait\r\n"
            b"Data: 1\r\nTimeout: 30000\r\nAsync: true\r\n\r\n"
        )
        async with asyncio.timeout(10.0):
            ringing = await until(b"Event: Newstate")
            name = ringing.split("Channel: ", 1)[1].split("\r\n", 1)[0]
            writer.write(f"Action: Hangup\r\nChannel: {name}\r\nActionID: h\r\n\r\n".encode())
            reply = await until(b"ActionID: h")
            response = await until(b"Event: OriginateResponse")
    finally:
        writer.close()
        await pbx.aclose()
    assert "Channel Hungup" in reply
    assert "Response: Failure" in response and "Reason: 1\r\n" in response
