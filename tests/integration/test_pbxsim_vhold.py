"""pbxsim's virtual-hold dialplan over AMI (in-process pbxsim, a plain test-local AMI reader,
no FastAGI server: ``AGISTATUS=FAILURE``):

* ``Queue()``'s position argument: the ``callbacks-vhold-slot`` placeholder joins at
  ``VHOLD_POSITION`` (QueueCallerJoin Position), ahead of callers who joined before it;
* the Originate's Timeout ends a placeholder nobody answered (Reason 0, an abandon);
* the queue's exit key: DTMF, QueueCallerLeave, ``[callbacks-vhold]``'s AGI, and a refused
  caller back in the queue at its own place (``QUEUEPOSITION``).
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.dialplan import InboundCall
from pbxsim.scenario import load

pytestmark = pytest.mark.integration
SPEED = 10.0
DID = "74951234567"


class Ami:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.buf = reader, writer, b""
        self.seen: list[dict[str, str]] = []

    async def until(self, pred: object, within: float = 20.0) -> dict[str, str]:
        """The next message for which ``pred(fields)`` is true (all messages kept)."""
        async with asyncio.timeout(within):
            while True:
                while b"\r\n\r\n" not in self.buf:
                    chunk = await self.reader.read(65536)
                    assert chunk
                    self.buf += chunk
                raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
                fields = dict(
                    line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line
                )
                self.seen.append(fields)
                if pred(fields):  # type: ignore[operator]
                    return fields


async def _pbx() -> tuple[Pbx, Ami]:
    sc = dataclasses.replace(load("callbacks-vhold"), calls=())
    pbx = Pbx(sc, PbxOptions(ami_port=0, agi_port=1, speed=SPEED))
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    await reader.readline()
    writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
    return pbx, Ami(reader, writer)


def _join_of(number: str) -> object:
    return lambda f: f.get("Event") == "QueueCallerJoin" and f.get("CallerIDNum") == number


def _slot(writer: asyncio.StreamWriter, position: int, timeout_ms: int) -> None:
    writer.write(
        "Action: Originate\r\nChannel: Local/79030000002@callbacks-vhold-slot/n\r\n"
        "Context: callbacks-dial\r\nExten: 79030000002\r\nPriority: 1\r\n"
        f"Timeout: {timeout_ms}\r\nCallerID: \"Перезвон\" <79030000002>\r\nAsync: true\r\n"
        "Variable: VHOLD_QUEUE=reception\r\n"
        f"Variable: VHOLD_POSITION={position}\r\nActionID: slot\r\n\r\n".encode()
    )


async def test_the_placeholder_joins_at_its_position_and_is_served_there() -> None:
    pbx, ami = await _pbx()
    try:
        pbx.start_call(InboundCall(DID, "79030000001", talk_s=3.0))  # op101 takes A
        await ami.until(lambda f: f.get("Event") == "AgentConnect")
        pbx.start_call(InboundCall(DID, "79030000003", patience=60.0, talk_s=1.0))
        await ami.until(_join_of("79030000003"))
        _slot(ami.writer, 1, 60000)
        join = await ami.until(_join_of("79030000002"))
        assert (join["Position"], join["Count"], join["Queue"]) == ("1", "2", "reception")
        assert join["Channel"].startswith("Local/79030000002@callbacks-vhold-slot-")
        done = await ami.until(lambda f: f.get("Event") == "OriginateResponse")
        assert (done["Response"], done["Reason"], done["ActionID"]) == ("Success", "4", "slot")
        assert done["Channel"].endswith(";1")
        # ;1 dials the patient once the member answered the slot; C is served after it
        connects = [f for f in ami.seen if f.get("Event") == "AgentConnect"]
        assert [f["CallerIDNum"] for f in connects] == ["79030000001", "79030000002"]
        dial = await ami.until(lambda f: f.get("Event") == "DialBegin"
                               and f.get("DialString") == "79030000002@trunk")  # fmt: skip
        assert dial["Channel"] == done["Channel"] and dial["Linkedid"] == done["Uniqueid"]
        status = await ami.until(lambda f: f.get("Event") == "VarSet"
                                 and f.get("Variable") == "DIALSTATUS" and f.get("Value") != "")
        assert status["Channel"] == done["Channel"] and status["Value"] == "ANSWER"
        nxt = await ami.until(lambda f: f.get("Event") == "AgentConnect")
        assert nxt["CallerIDNum"] == "79030000003"
    finally:
        ami.writer.close()
        await pbx.aclose()


async def test_a_placeholder_nobody_answers_ends_with_the_originates_timeout() -> None:
    pbx, ami = await _pbx()
    try:
        pbx.start_call(InboundCall(DID, "79030000001", talk_s=30.0))  # op101 stays busy
        await ami.until(lambda f: f.get("Event") == "AgentConnect")
        _slot(ami.writer, 1, 2000)
        await ami.until(_join_of("79030000002"))
        gone = await ami.until(lambda f: f.get("Event") == "QueueCallerAbandon")
        assert gone["CallerIDNum"] == "79030000002"
        done = await ami.until(lambda f: f.get("Event") == "OriginateResponse")
        assert (done["Response"], done["Reason"]) == ("Failure", "0")
    finally:
        ami.writer.close()
        await pbx.aclose()


async def test_the_exit_key_leaves_the_queue_and_a_refused_caller_gets_its_place_back() -> None:
    pbx, ami = await _pbx()
    try:
        pbx.start_call(InboundCall(DID, "79030000001", talk_s=30.0))  # op101 stays busy
        await ami.until(lambda f: f.get("Event") == "AgentConnect")
        pbx.start_call(InboundCall(DID, "79030000009", patience=60.0))
        await ami.until(_join_of("79030000009"))
        pbx.start_call(InboundCall(DID, "79030000002", patience=60.0, queue_dtmf=((2.0, "1"),)))
        first = await ami.until(_join_of("79030000002"))
        pbx.start_call(InboundCall(DID, "79030000003", patience=60.0))
        await ami.until(_join_of("79030000003"))
        leave = await ami.until(lambda f: f.get("Event") == "QueueCallerLeave"
                                and f.get("CallerIDNum") == "79030000002")  # fmt: skip
        assert (leave["Position"], leave["Count"]) == ("2", "2")
        agi = await ami.until(lambda f: f.get("Event") == "Newexten"
                              and f.get("Application") == "AGI"
                              and f.get("CallerIDNum") == "79030000002")  # fmt: skip
        assert agi["Context"] == "callbacks-vhold" and agi["Extension"] == "1"
        assert agi["AppData"].endswith(f"/vhold_accept,{first['Linkedid']}")
        back = await ami.until(_join_of("79030000002"))  # AGI failed: "sorry", then the queue
        assert (back["Position"], back["Count"]) == ("2", "3")
        keys = [f for f in ami.seen if f.get("Event") == "DTMFEnd"]
        assert [(k["Digit"], k["Direction"], k["CallerIDNum"]) for k in keys] == [
            ("1", "Received", "79030000002")]
    finally:
        ami.writer.close()
        await pbx.aclose()
