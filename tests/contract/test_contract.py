"""Contract check: pbxsim (run as ``python -m pbxsim``) against the golden Asterisk 22 transcripts.

For each mirrored scenario the test logs in over a real socket exactly like the capture
client did, collects the AMI stream and compares it with the golden file: the same event
types (plus VarSet variable / Newexten application) in the same order per channel, the
same field names per event type, the same response shapes. Values such as Uniqueid and
timestamps may differ. On drift the assertion message is a unified diff per channel.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.contract.golden import blocks, compare, events, responses
from tests.transcripts import from_asterisk, segments, text

ROOT = Path(__file__).resolve().parents[2]
SPEED = "20"


@dataclass
class FakeAgi:
    """A FastAGI server answering like the lab's routing script (agi-session.txt)."""

    port: int = 0
    envs: list[list[tuple[str, str]]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: list[tuple[str, str]] = []
        async with asyncio.timeout(10):
            while (line := (await reader.readline()).decode()) not in ("\n", ""):
                k, _, v = line.rstrip("\n").partition(": ")
                env.append((k, v))
            self.envs.append(env)
            d = dict(env)
            for cmd in (
                f'VERBOSE "callserver route: dnid={d["agi_dnid"]} callerid={d["agi_callerid"]}" 1',
                "GET VARIABLE AD_SOURCE",
                "SET VARIABLE ROUTE_QUEUE reception",
                "SET VARIABLE ROUTE_MODE queue",
            ):
                writer.write(cmd.encode() + b"\n")
                self.replies.append((await reader.readline()).decode())
        writer.close()


@pytest.fixture
async def agi() -> AsyncIterator[FakeAgi]:
    fake = FakeAgi()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    yield fake
    server.close()
    await server.wait_closed()


async def start_pbxsim(scenario: str, agi_port: int) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pbxsim",
        "--scenario",
        scenario,
        "--speed",
        SPEED,
        "--ami",
        "127.0.0.1:0",
        "--ari",
        "127.0.0.1:0",
        "--agi",
        f"127.0.0.1:{agi_port}",
        "--wait-for-ami",
        "--keep-running",
        "--log-level",
        "WARNING",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        line = (await proc.stdout.readline()).decode()
    match = re.search(r"AMI [\d.]+:(\d+)", line)
    assert match, f"pbxsim did not report its AMI port: {line!r}"
    return proc, int(match.group(1))


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


def client_actions(name: str) -> list[bytes]:
    """The capture client's actions in the golden file, in order."""
    return [s.data for s in segments(name) if not s.from_asterisk and s.data.strip()]


async def session(scenario: str, golden: str, agi: FakeAgi) -> bytes:
    """Replay the golden client side; read until as many Hangups as golden, then quiet."""
    want_hangups = sum(1 for b in events(blocks(from_asterisk(golden))) if b[0][1] == "Hangup")
    actions = client_actions(golden)
    proc, port = await start_pbxsim(scenario, agi.port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for act in actions[:-1]:  # login (and Originate); Logoff goes last
            writer.write(act)
        data = b""
        async with asyncio.timeout(60):
            while data.count(b"Event: Hangup\r\n") < want_hangups:
                chunk = await reader.read(65536)
                assert chunk, "pbxsim closed the AMI connection early"
                data += chunk
            while True:
                try:
                    async with asyncio.timeout(0.6):
                        chunk = await reader.read(65536)
                except TimeoutError:
                    break
                data += chunk
        writer.write(actions[-1])
        async with asyncio.timeout(10):
            data += await reader.read()
        writer.close()
        return data
    finally:
        await stop(proc)


MIRRORED = [
    ("single-answered", "ami-queue-answered-call.txt"),
    ("single-abandoned", "ami-queue-abandoned-call.txt"),
    ("originate", "ami-originate.txt"),
    ("stasis-dtmf", "ami-during-ari-call.txt"),
    ("local-member", "ami-local-member-cyrillic.txt"),
]


@pytest.mark.parametrize(("scenario", "golden"), MIRRORED)
async def test_scenario_matches_golden_transcript(scenario: str, golden: str, agi: FakeAgi) -> None:
    data = await session(scenario, golden, agi)
    assert data.startswith(b"Asterisk Call Manager/11.0.0\r\n")
    got, want = blocks(data), blocks(from_asterisk(golden))
    drift = compare(want, got)
    assert not drift, f"pbxsim drifted from {golden}:\n" + "\n\n".join(drift)
    assert responses(got) == responses(want)
    assert data.endswith(b"Message: Thanks for all the fish.\r\n\r\n")


async def test_agi_environment_matches_golden(agi: FakeAgi) -> None:
    await session("single-answered", "ami-queue-answered-call.txt", agi)
    golden_env = [
        line.split(": ", 1)[0] if ": " in line else line.rstrip(":")
        for line in text("agi-session.txt")
        .split("(environment)\n", 1)[1]
        .split("\n\n", 1)[0]
        .splitlines()
    ]
    assert [k for k, _ in agi.envs[0]] == golden_env
    env = dict(agi.envs[0])
    assert re.fullmatch(r"PJSIP/trunk-[0-9a-f]{8}", env["agi_channel"])
    assert re.fullmatch(r"\d{10}\.\d+", env["agi_uniqueid"])
    assert (env["agi_arg_1"], env["agi_arg_2"], env["agi_context"]) == (
        "74951234567",
        "source-a",
        "route-inbound",
    )
    assert agi.replies == [
        "200 result=1\n",
        "200 result=1 (source-a)\n",
        "200 result=1\n",
        "200 result=1\n",
    ]


async def test_login_failed_matches_golden(agi: FakeAgi) -> None:
    proc, port = await start_pbxsim("single-answered", agi.port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(client_actions("ami-login-failed.txt")[0])
        async with asyncio.timeout(10):
            data = await reader.read()  # EOF: pbxsim closes like Asterisk
        assert data == from_asterisk("ami-login-failed.txt")
        writer.close()
    finally:
        await stop(proc)


async def test_login_ping_coresettings_queuestatus_shapes(agi: FakeAgi) -> None:
    proc, port = await start_pbxsim("single-answered", agi.port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for act in client_actions("ami-login.txt"):
            writer.write(act.replace(b"Events: on", b"Events: off") if b"Login" in act else act)
        async with asyncio.timeout(10):
            data = await reader.read()
        writer.close()
    finally:
        await stop(proc)
    golden = [
        b
        for b in blocks(from_asterisk("ami-login.txt"))
        if b[0][1] not in ("FullyBooted", "SuccessfulAuth")
    ]
    got = blocks(data)
    shape = [tuple(k for k, _ in b) for b in got]
    assert shape == [tuple(k for k, _ in b) for b in golden]
    assert [b[0] for b in got] == [b[0] for b in golden]
