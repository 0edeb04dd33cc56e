"""app_queue event sequences pbxsim must get right beyond the golden transcripts.

pbxsim runs in-process; a plain test-local AMI reader (no callserver code) records events.
The expected orders are those of Asterisk 22's app_queue.c: on a member timeout
``wait_for_answer`` calls ``rna()`` (AgentRingNoAnswer, RingTime in **milliseconds**) for
every ringing member, then ``publish_dial_end_event(NOANSWER)``; ``hangupcalls()`` then
publishes DialEnd CANCEL and hangs the leg up. A queue timeout while members ring caps the
ring time (``timeoutpriority=app``), so it ends the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.dialplan import InboundCall
from pbxsim.scenario import Scenario, load

pytestmark = pytest.mark.integration
Msg = dict[str, str]


async def _read_events(reader: asyncio.StreamReader, until: str, wait_s: float) -> list[Msg]:
    """Messages until an event of type ``until`` on a PJSIP/trunk channel."""
    buf, out = b"", []
    async with asyncio.timeout(wait_s):
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = await reader.read(65536)
                assert chunk, "pbxsim closed the AMI session"
                buf += chunk
            raw, buf = buf.split(b"\r\n\r\n", 1)
            msg: Msg = {}
            for line in raw.decode().split("\r\n"):
                k, _, v = line.partition(": ")
                msg.setdefault(k, v)
            out.append(msg)
            if msg.get("Event") == until and msg.get("Channel", "").startswith("PJSIP/trunk"):
                return out


async def _one_call(sc: Scenario, call: InboundCall, agi_port: int) -> list[Msg]:
    """Run ``sc`` with the single ``call`` at 40x; the AMI events up to the first Hangup."""
    opts = PbxOptions(ami_port=0, agi_port=agi_port, speed=40.0, agi_timeout_s=2.0)
    pbx = Pbx(sc, opts)
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    try:
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n")
        pbx.start_call(call)
        return await _read_events(reader, "Hangup", 30.0)
    finally:
        writer.close()
        await pbx.aclose()


@pytest.fixture
async def dead_agi_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    yield port


async def test_ring_no_answer_then_queue_timeout_while_ringing(dead_agi_port: int) -> None:
    """Bug: RingTime was seconds, DialEnd NOANSWER came before AgentRingNoAnswer with no
    CANCEL after it, and a queue timeout while ringing gave a bare DialEnd CANCEL."""
    sc = load("single-answered")
    sc = dataclasses.replace(
        sc, calls=(), agents=dataclasses.replace(sc.agents, never_answer=("op101",))
    )
    events = await _one_call(sc, InboundCall("74951234567", "79161234567"), dead_agi_port)
    legs: dict[str, list[tuple[str, str]]] = {}
    ring_ms: dict[str, int] = {}
    for m in events:
        dest = m.get("DestChannel", "")
        if m.get("Event") == "AgentRingNoAnswer":
            ring_ms[dest] = int(m["RingTime"])
            legs.setdefault(dest, []).append(("AgentRingNoAnswer", ""))
        elif m.get("Event") == "DialEnd" and dest.startswith("PJSIP/op101"):
            legs.setdefault(dest, []).append(("DialEnd", m["DialStatus"]))
    assert len(legs) == 3  # 0–15 s, 17–32 s, 34–45 s (the queue's 45 s timeout cuts it)
    for seq in legs.values():
        assert seq == [("AgentRingNoAnswer", ""), ("DialEnd", "NOANSWER"), ("DialEnd", "CANCEL")]
    first, *_, last = legs
    assert ring_ms[first] == 15000
    assert 5000 <= ring_ms[last] < 15000
    names = [(m.get("Event"), m.get("Variable"), m.get("Value")) for m in events]
    leave = names.index(("QueueCallerLeave", None, None))
    assert ("VarSet", "QUEUESTATUS", "TIMEOUT") in names[leave:]
    last_cancel = max(
        i
        for i, m in enumerate(events)
        if m.get("Event") == "DialEnd" and m.get("DestChannel") == last
    )
    assert last_cancel < leave


async def test_caller_abandons_while_ringall_rings_three_members(dead_agi_port: int) -> None:
    """Bug: the two DialEnd CANCEL of each leg came leg by leg (l1 l1 l2 l2); app_queue
    publishes one CANCEL per leg in wait_for_answer, then hangupcalls() another per leg
    (l1 l2 l3 l1 l2 l3). The legs hang up after QueueCallerAbandon (golden abandoned call)."""
    sc = load("single-answered")
    agents = dataclasses.replace(
        sc.agents, registered=None, never_answer=("op101", "op102", "op103")
    )
    sc = dataclasses.replace(sc, calls=(), agents=agents)
    events = await _one_call(
        sc, InboundCall("74957654321", "79035550101", patience=6.0), dead_agi_port
    )
    ends = [(m["DestChannel"], m["DialStatus"]) for m in events if m.get("Event") == "DialEnd"]
    legs = [m["DestChannel"] for m in events if m.get("Event") == "DialBegin"]
    assert len(legs) == 3
    assert ends == [(leg, "CANCEL") for leg in legs] * 2
    kinds = [m.get("Event") for m in events]
    abandon = kinds.index("QueueCallerAbandon")
    hungup = [i for i, m in enumerate(events) if m.get("Event") == "Hangup"]
    assert all(i > abandon for i in hungup if events[i]["Channel"] in legs) and len(hungup) == 4


async def test_ringall_answer_cancels_the_other_members_as_answered_elsewhere(
    dead_agi_port: int,
) -> None:
    """Bug: the other ringing members got one DialEnd CANCEL and Hangup cause 0 *before* the
    winner's DialEnd ANSWER. app_queue: ANSWER, then CANCEL for the others
    (wait_for_answer), then hangupcalls(): CANCEL again and hangup with cause 26."""
    sc = load("single-answered")
    agents = dataclasses.replace(sc.agents, registered=None, never_answer=("op102", "op103"))
    sc = dataclasses.replace(sc, calls=(), agents=agents)
    events = await _one_call(
        sc, InboundCall("74951234567", "79161234567", talk_s=2.0, agent_ends=False), dead_agi_port
    )
    legs = {
        m["DestChannel"][:11]: m["DestChannel"] for m in events if m.get("Event") == "DialBegin"
    }
    a, b, c = legs["PJSIP/op101"], legs["PJSIP/op102"], legs["PJSIP/op103"]
    ends = [(m["DestChannel"], m["DialStatus"]) for m in events if m.get("Event") == "DialEnd"]
    assert ends == [(a, "ANSWER"), (b, "CANCEL"), (c, "CANCEL"), (b, "CANCEL"), (c, "CANCEL")]
    causes = {
        m["Channel"]: (m["Cause"], m["Cause-txt"]) for m in events if m.get("Event") == "Hangup"
    }
    assert causes[b] == causes[c] == ("26", "Answered elsewhere")
    kinds = [m.get("Event") for m in events]
    hung = max(i for i, m in enumerate(events) if m.get("Event") == "Hangup" and m["Channel"] == c)
    assert hung < kinds.index("AgentConnect")


async def test_queue_timeout_records_an_abandon_then_leaves_and_continues(
    dead_agi_port: int,
) -> None:
    """Bug: a caller leaving on the queue timeout got no QueueCallerAbandon. queue_exec
    calls record_abandoned() on EXITWITHTIMEOUT (QUEUE* vars, QueueCallerAbandon), then
    set_queue_variables(), leave_queue() and QUEUESTATUS=TIMEOUT; the dialplan goes on."""
    sc = load("single-answered")
    sc = dataclasses.replace(sc, calls=(), agents=dataclasses.replace(sc.agents, registered=()))
    events = await _one_call(sc, InboundCall("74951234567", "79161234567"), dead_agi_port)
    seq = [
        (m["Event"], m.get("Variable", ""), m.get("Value", ""))
        for m in events
        if m.get("Event") in ("QueueCallerAbandon", "QueueCallerLeave", "Newexten")
        or m.get("Variable") in ("QUEUEABANDONED", "QUEUEPOSITION", "QUEUESTATUS")
    ]
    start = seq.index(("QueueCallerAbandon", "", ""))
    assert seq[start - 1 : start + 5] == [
        ("VarSet", "QUEUEABANDONED", "0"),
        ("QueueCallerAbandon", "", ""),
        ("VarSet", "QUEUEABANDONED", "1"),
        ("QueueCallerLeave", "", ""),
        ("VarSet", "QUEUEPOSITION", "1"),
        ("VarSet", "QUEUESTATUS", "TIMEOUT"),
    ]
    assert seq[start + 5][0] == "Newexten"  # NoOp(QUEUESTATUS=…), Playback vm-goodbye …
    abandon = next(m for m in events if m.get("Event") == "QueueCallerAbandon")
    assert (abandon["Position"], abandon["OriginalPosition"]) == ("1", "1")
    assert 44 <= int(abandon["HoldTime"]) <= 46
