"""pbxsim's AMI server and call model over real sockets (pbxsim in-process, a plain client).

The client here parses AMI with a few test-local lines (not callserver's codec, not pbxsim's);
the Filter test asks for the filters callserver's translator would add.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable

import pytest

from callserver.asterisk.ami_connection import CLIENT_EVENTS
from callserver.asterisk.ami_filters import NOISE_EVENTS
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.core.bus import EventBus
from callserver.core.model import LiveModel
from pbxsim.app import Pbx, PbxOptions
from pbxsim.dialplan import InboundCall
from pbxsim.scenario import load

pytestmark = pytest.mark.integration
Msg = dict[str, str]


class Client:
    """Minimal AMI client: send actions, read messages, wait for a matching one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.seen: list[Msg] = []
        self._buf = b""

    async def send(self, **fields: str) -> None:
        self.writer.write("".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n")
        await self.writer.drain()

    async def next(self) -> Msg:
        while b"\r\n\r\n" not in self._buf:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise EOFError
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\r\n\r\n", 1)
        msg: Msg = {}
        for line in raw.decode().split("\r\n"):
            if ": " in line:
                k, v = line.split(": ", 1)
                msg.setdefault(k, v)
            elif line.endswith(":"):
                msg.setdefault(line[:-1], "")
        self.seen.append(msg)
        return msg

    async def wait(self, pred: Callable[[Msg], bool], wait_s: float = 10.0) -> Msg:
        async with asyncio.timeout(wait_s):
            while True:
                msg = await self.next()
                if pred(msg):
                    return msg

    async def action(self, **fields: str) -> Msg:
        aid = f"t-{len(self.seen)}"
        await self.send(ActionID=aid, **fields)
        return await self.wait(lambda m: m.get("ActionID") == aid and "Response" in m)


def ev(name: str, **want: str) -> Callable[[Msg], bool]:
    return lambda m: m.get("Event") == name and all(m.get(k) == v for k, v in want.items())


_OPEN: list[asyncio.StreamWriter] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _OPEN:
        w = _OPEN.pop()
        w.close()
        with contextlib.suppress(ConnectionError):
            await w.wait_closed()


async def connect(pbx: Pbx, login: bool = True) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    _OPEN.append(writer)
    assert await reader.readline() == b"Asterisk Call Manager/11.0.0\r\n"
    c = Client(reader, writer)
    if login:
        r = await c.action(Action="Login", Username="callserver", Secret="callserver")
        assert r["Response"] == "Success"
    return c


@pytest.fixture
async def agi_port() -> AsyncIterator[int]:
    """A port where nobody listens (FastAGI fails → AGISTATUS=FAILURE)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    yield port


async def make_pbx(name: str, agi_port: int, speed: float = 50.0, **agents: object) -> Pbx:
    sc = load(name)
    if agents:
        sc = dataclasses.replace(sc, agents=dataclasses.replace(sc.agents, **agents))
    sc = dataclasses.replace(sc, calls=())
    pbx = Pbx(sc, PbxOptions(ami_port=0, agi_port=agi_port, speed=speed, agi_timeout_s=2.0))
    await pbx.start()
    return pbx


async def test_unknown_action_and_auth_required(agi_port: int) -> None:
    pbx = await make_pbx("single-answered", agi_port)
    try:
        anon = await connect(pbx, login=False)
        r = await anon.action(Action="Ping")
        assert r["Response"] == "Error" and r["Message"] == "Permission denied"
        c = await connect(pbx)
        r = await c.action(Action="NoSuchThing")
        assert (r["Response"], r["Message"]) == ("Error", "Invalid/unknown command")
        r = await c.action(Action="Ping")
        assert r["Ping"] == "Pong"
    finally:
        await pbx.aclose()


async def test_agi_failure_continues_to_queue_and_lists_show_the_caller(agi_port: int) -> None:
    pbx = await make_pbx("single-answered", agi_port, never_answer=("op101",))
    try:
        c = await connect(pbx)
        pbx.start_call(InboundCall("74951234567", "79161234567", patience=60.0))
        var = await c.wait(ev("VarSet", Variable="AGISTATUS"))
        assert var["Value"] == "FAILURE"
        join = await c.wait(ev("QueueCallerJoin"))
        assert join["Queue"] == "reception"
        r = await c.action(Action="QueueStatus", Queue="reception")
        assert r["EventList"] == "start"
        entry = await c.wait(ev("QueueEntry"))
        assert entry["Channel"] == join["Channel"]
        done = await c.wait(ev("QueueStatusComplete"))
        assert done["EventList"] == "Complete" and int(done["ListItems"]) == 5
        r = await c.action(Action="QueueSummary")
        summary = await c.wait(ev("QueueSummary", Queue="reception"))
        assert summary["Callers"] == "1"
        r = await c.action(Action="CoreShowChannels")
        names = set()
        while (m := await c.next()).get("Event") != "CoreShowChannelsComplete":
            if m.get("Event") == "CoreShowChannel":
                names.add(m["Channel"])
        assert join["Channel"] in names
        r = await c.action(Action="Setvar", Channel=join["Channel"], Variable="TAG", Value="x")
        assert r["Message"] == "Variable Set"
        r = await c.action(Action="Getvar", Channel=join["Channel"], Variable="TAG")
        assert r["Value"] == "x"
        r = await c.action(Action="Hangup", Channel=join["Channel"])
        assert r["Message"] == "Channel Hungup"
        await c.wait(ev("QueueCallerAbandon"))
        await c.wait(ev("Hangup", Channel=join["Channel"]))
    finally:
        await pbx.aclose()


async def test_redirect_moves_a_queued_caller_to_another_queue(agi_port: int) -> None:
    pbx = await make_pbx("single-answered", agi_port, never_answer=("op101",))
    try:
        c = await connect(pbx)
        pbx.start_call(InboundCall("74951234567", "79161234567", patience=60.0))
        join = await c.wait(ev("QueueCallerJoin"))
        r = await c.action(
            Action="Redirect",
            Channel=join["Channel"],
            Context="operators",
            Exten="501",
            Priority="1",
        )
        assert r["Message"] == "Redirect successful"
        await c.wait(ev("QueueCallerLeave", Queue="reception"))
        moved = await c.wait(ev("QueueCallerJoin"))
        assert moved["Queue"] == "doctors"
    finally:
        await pbx.aclose()


async def test_pause_stops_ringing_and_unpause_connects(agi_port: int) -> None:
    pbx = await make_pbx("single-answered", agi_port)
    try:
        c = await connect(pbx)
        r = await c.action(
            Action="QueuePause", Interface="PJSIP/op101", Paused="true", Reason="lunch"
        )
        assert r["Message"] == "Interface paused successfully"
        pause = await c.wait(ev("QueueMemberPause"))
        assert (pause["Paused"], pause["PausedReason"]) == ("1", "lunch")
        pbx.start_call(InboundCall("74951234567", "79161234567", talk_s=5.0, agent_ends=False))
        await c.wait(ev("QueueCallerJoin"))
        await asyncio.sleep(0.3)  # 15 s of scenario time: nobody may ring
        assert not [m for m in c.seen if m.get("Event") == "AgentCalled"]
        await c.action(Action="QueuePause", Interface="PJSIP/op101", Paused="false")
        connect_ = await c.wait(ev("AgentConnect"))
        assert connect_["MemberName"] == "Operator 101"
        await c.wait(ev("AgentComplete"))
    finally:
        await pbx.aclose()


@pytest.mark.parametrize(
    ("number", "reason", "response"),
    [
        ("79990000004", "4", "Success"),
        ("79990000003", "3", "Failure"),
        ("79990000005", "5", "Failure"),
        ("79990000008", "8", "Failure"),
    ],
)
async def test_originate_outcomes(agi_port: int, number: str, reason: str, response: str) -> None:
    pbx = await make_pbx("originate", agi_port)
    try:
        c = await connect(pbx)
        r = await c.action(
            Action="Originate",
            Channel=f"PJSIP/{number}@trunk",
            Application="Wait",
            Data="5",
            Timeout="20000",
            CallerID='"Clinic" <74951234567>',
            Async="true",
        )
        assert r["Message"] == "Originate successfully queued"
        res = await c.wait(ev("OriginateResponse"), wait_s=20)
        assert (res["Response"], res["Reason"]) == (response, reason)
        assert res["ActionID"] == r["ActionID"]
        if not any(m.get("Event") == "Hangup" for m in c.seen):  # a failed dial hangs up first
            await c.wait(ev("Hangup"), wait_s=20)
    finally:
        await pbx.aclose()


async def test_queue_add_remove(agi_port: int) -> None:
    pbx = await make_pbx("single-answered", agi_port)
    try:
        c = await connect(pbx)
        r = await c.action(Action="QueueAdd", Queue="doctors", Interface="PJSIP/op101")
        assert r["Message"] == "Added interface to queue"
        added = await c.wait(ev("QueueMemberAdded"))
        assert added["Membership"] == "dynamic"
        r = await c.action(Action="QueueAdd", Queue="doctors", Interface="PJSIP/op101")
        assert r["Response"] == "Error"
        r = await c.action(Action="QueueRemove", Queue="doctors", Interface="PJSIP/op101")
        assert r["Message"] == "Removed interface from queue"
        await c.wait(ev("QueueMemberRemoved"))
    finally:
        await pbx.aclose()


async def agi_server(script: list[str]) -> tuple[asyncio.Server, list[str]]:
    """A FastAGI server that sends ``script`` and records the replies."""
    replies: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\n", b""):
            pass
        for cmd in script:
            writer.write(cmd.encode() + b"\n")
            replies.append((await reader.readline()).decode())
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), replies


async def test_agi_route_variables_are_honoured() -> None:
    server, replies = await agi_server(
        [
            "SET VARIABLE ROUTE_QUEUE doctors",
            'SET VARIABLE ROUTE_AGENT "PJSIP/op103"',
            "GET VARIABLE NOPE",
            "FROBNICATE",
            "GET VARIABLE DID",
        ]
    )
    port = int(server.sockets[0].getsockname()[1])
    pbx = await make_pbx("single-answered", port, registered=None)
    try:
        c = await connect(pbx)
        pbx.start_call(InboundCall("74951234567", "79161234567", talk_s=3.0, agent_ends=False))
        join = await c.wait(ev("QueueCallerJoin"))
        assert join["Queue"] == "doctors"
        called = await c.wait(ev("AgentCalled"))
        assert called["Interface"] == "PJSIP/op103"  # the preferred member rings alone first
        assert replies == [
            "200 result=1\n",
            "200 result=1\n",
            "200 result=0\n",
            "510 Invalid or unknown command\n",
            "200 result=1 (74951234567)\n",
        ]
    finally:
        await pbx.aclose()
        server.close()


async def test_route_mode_stasis_without_app_fails_over_and_hangs_up() -> None:
    server, _ = await agi_server(["SET VARIABLE ROUTE_MODE bot"])
    port = int(server.sockets[0].getsockname()[1])
    pbx = await make_pbx("single-answered", port)
    try:
        c = await connect(pbx)
        pbx.start_call(InboundCall("74951234567", "79161234567"))
        stasis = await c.wait(ev("Newexten", Application="Stasis"))
        assert stasis["AppData"] == "callserver,inbound,74951234567"
        await c.wait(ev("VarSet", Variable="STASISSTATUS", Value="FAILED"))
        await c.wait(ev("Hangup"))
    finally:
        await pbx.aclose()
        server.close()


async def test_events_off_silences_the_session(agi_port: int) -> None:
    pbx = await make_pbx("single-answered", agi_port)
    try:
        quiet = await connect(pbx, login=False)
        await quiet.action(Action="Login", Username="callserver", Secret="callserver", Events="off")
        loud = await connect(pbx)
        pbx.start_call(InboundCall("74951234567", "79161234567", patience=1.0))
        await loud.wait(ev("Hangup"))
        r = await quiet.action(Action="Ping")
        assert r["Ping"] == "Pong"
        assert not [m for m in quiet.seen if "Event" in m]
        r = await quiet.action(Action="Events", EventMask="on")
        assert r["Events"] == "On"
    finally:
        await pbx.aclose()


@pytest.mark.parametrize(("number", "status"), [("79990000004", "ANSWER"), ("79990000005", "BUSY")])
async def test_callback_originate_rings_operator_then_dials_patient(
    agi_port: int, number: str, status: str
) -> None:
    pbx = await make_pbx("originate", agi_port)
    try:
        c = await connect(pbx)
        r = await c.action(
            Action="Originate",
            Channel="PJSIP/op101",
            Context="callbacks",
            Exten=number,
            Priority="1",
            CallerID=f'"Callback" <{number}>',
            Async="true",
        )
        assert r["Message"] == "Originate successfully queued"
        res = await c.wait(ev("OriginateResponse"))
        assert (res["Response"], res["Reason"], res["Context"], res["Exten"]) == (
            "Success",
            "4",
            "callbacks",
            number,
        )
        begin = await c.wait(ev("DialBegin", DialString=f"{number}@trunk"))
        assert begin["Channel"] == res["Channel"]
        end = await c.wait(
            lambda m: m.get("Event") == "DialEnd" and m.get("Channel") == res["Channel"]
        )
        assert end["DialStatus"] == status
        await c.wait(ev("Hangup", Channel=res["Channel"]), wait_s=20)
    finally:
        await pbx.aclose()


async def test_hangup_of_the_operator_leg_ends_the_call_from_the_agent_side(agi_port: int) -> None:
    pbx = await make_pbx("single-answered", agi_port)
    try:
        c = await connect(pbx)
        pbx.start_call(InboundCall("74951234567", "79161234567", talk_s=600.0, agent_ends=False))
        conn = await c.wait(ev("AgentConnect"))
        r = await c.action(Action="Hangup", Channel=conn["DestChannel"])
        assert r["Message"] == "Channel Hungup"
        done = await c.wait(ev("AgentComplete"))
        assert done["Reason"] == "agent"
        bye = await c.wait(ev("Newexten", Application="Playback"))
        assert bye["AppData"] == "vm-goodbye"  # the caller goes on in the dialplan
        await c.wait(ev("Hangup", Channel=conn["Channel"]))
    finally:
        await pbx.aclose()


async def test_originate_to_a_busy_operator_is_busy_and_ringing_blocks_the_queue(
    agi_port: int,
) -> None:
    pbx = await make_pbx("originate", agi_port)
    try:
        c = await connect(pbx)
        await c.action(
            Action="Originate", Channel="PJSIP/op101", Application="Wait", Data="30", Async="true"
        )
        await c.wait(ev("DeviceStateChange", Device="PJSIP/op101", State="RINGING"))
        member = await c.wait(ev("QueueMemberStatus", Interface="PJSIP/op101"))
        assert member["Status"] == "6"  # the queue sees op101 ringing: it will not ring it too
        first_ = await c.wait(ev("OriginateResponse"))
        assert first_["Reason"] == "4"
        await c.action(
            Action="Originate", Channel="PJSIP/op101", Application="Wait", Data="1", Async="true"
        )
        second = await c.wait(ev("OriginateResponse"))
        assert (second["Response"], second["Reason"]) == ("Failure", "5")
    finally:
        await pbx.aclose()


async def test_filter_action_keeps_back_what_callserver_does_not_read(agi_port: int) -> None:
    translator = AmiTranslator(LiveModel(EventBus()))
    handled = {*translator._handlers, *CLIENT_EVENTS} - {"VarSet"}
    pbx = await make_pbx("single-answered", agi_port)
    try:
        filtered, everything = await connect(pbx), await connect(pbx)
        for criteria, pattern in translator.event_filters(CLIENT_EVENTS):
            r = await filtered.action(
                Action="Filter", Operation="Add", MatchCriteria=criteria, Filter=pattern
            )
            assert (r["Response"], r["Message"]) == ("Success", "Success")
        r = await filtered.action(Action="Filter", Operation="Add", Filter="XX[X")
        assert r["Response"] == "Error" and "did not compile" in r["Message"]
        r = await filtered.action(Action="Filter", Operation="Remove", Filter="x")
        assert (r["Response"], r["Message"]) == ("Error", "Unknown operation")
        skip = (len(filtered.seen), len(everything.seen))
        pbx.start_call(InboundCall("74951234567", "79161234567", patience=60.0))
        for c in (filtered, everything):
            await c.wait(ev("AgentComplete"))
            await c.wait(lambda m: m.get("Event") == "Hangup" and "trunk" in m.get("Channel", ""))
        got = [m for m in filtered.seen[skip[0] :] if "Event" in m]
        sent = [m for m in everything.seen[skip[1] :] if "Event" in m]
        variables = {m["Variable"] for m in got if m["Event"] == "VarSet"}
        sent_names = {m["Event"] for m in sent} - {"FullyBooted", "SuccessfulAuth"}  # login
        assert {m["Event"] for m in got} == sent_names - set(NOISE_EVENTS)
        assert {"Newexten", "DeviceStateChange", "DialBegin"} <= sent_names
        assert sent_names & handled <= {m["Event"] for m in got}
        assert {"__DID", "__AD_SOURCE"} <= variables
        assert not variables & {"BRIDGEPEER", "QUEUENAME", "MEMBERNAME", "AGISTATUS"}
        assert len(got) * 3 < len(sent)
        r = await filtered.action(Action="CoreShowChannels")  # lists are never filtered
        assert r["Response"] == "Success"
    finally:
        await pbx.aclose()
