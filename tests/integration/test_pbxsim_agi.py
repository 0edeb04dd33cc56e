"""pbxsim's FastAGI client when the caller hangs up during the AGI (real sockets).

res_agi: the channel hanging up during FastAGI sends ``HANGUP`` to the server, later
commands that need a live channel get 511, the session goes on until the server closes,
and AGISTATUS is ``HANGUP``. The AGI server and AMI reader here are test-local.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.dialplan import InboundCall
from pbxsim.scenario import load

pytestmark = pytest.mark.integration


async def test_caller_hangup_during_agi_tells_the_server_and_sets_agistatus_hangup() -> None:
    """Bug: an AMI Hangup during FastAGI was not passed to the server (no ``HANGUP`` line),
    commands were served as if the channel lived, and AGISTATUS was SUCCESS."""
    env: dict[str, str] = {}
    connected, replies = asyncio.Event(), asyncio.Queue[bytes]()

    async def agi_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (line := await reader.readline()) not in (b"\n", b""):
            key, _, value = line.decode().rstrip("\n").partition(": ")
            env[key] = value
        connected.set()
        await replies.put(await reader.readline())  # the HANGUP notification
        for command in (b"ANSWER\n", b"GET VARIABLE DID\n"):
            writer.write(command)
            await replies.put(await reader.readline())
        writer.close()

    server = await asyncio.start_server(agi_server, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    sc = dataclasses.replace(load("single-answered"), calls=())
    pbx = Pbx(sc, PbxOptions(ami_port=0, agi_port=port, speed=20.0, agi_timeout_s=10.0))
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
        pbx.start_call(InboundCall("74951234567", "79161234567"))
        async with asyncio.timeout(10.0):
            await connected.wait()
            hangup = f"Action: Hangup\r\nChannel: {env['agi_channel']}\r\n\r\n"
            writer.write(hangup.encode())
            got = [await replies.get() for _ in range(3)]
            text = b""
            while b"Event: Hangup\r\n" not in text:
                text += await reader.read(65536)
    finally:
        writer.close()
        await pbx.aclose()
        server.close()
    assert got[0] == b"HANGUP\n"
    assert got[1] == b"511 Command Not Permitted on a dead channel or intercept routine\n"
    assert got[2] == b"200 result=1 (74951234567)\n"
    assert b"Variable: AGISTATUS\r\nValue: HANGUP\r\n" in text
    assert b"Event: QueueCallerJoin" not in text
