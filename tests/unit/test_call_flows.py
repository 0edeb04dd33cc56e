"""Transfers, hold and queue positions: the 2026-12-01 golden transcripts through the real codec,
translator and live model.

The expected figures are read from Asterisk's own events in the same transcript (AgentComplete
``TalkTime``, AgentConnect ``HoldTime``, Cdr ``BillableSeconds``, the QueueStatus replies), so
each test compares our model with what Asterisk said about the same call.
"""

from __future__ import annotations

from typing import Any

import pytest

from callserver.asterisk.ami_codec import AmiCodec, AmiMessage
from callserver.asterisk.ami_translate import text
from callserver.core.events import (
    AgentTurn,
    CallAnswered,
    CallEnded,
    CallHeld,
    CallSnapshot,
    CallTransferred,
    CallUnheld,
    DomainEvent,
    TransferAnswered,
)
from tests.transcripts import from_asterisk
from tests.unit.test_ami_translate import Replay, replay

FLOW_TIMELINE = (
    "CallStarted", "CallQueued", "AgentRinging", "CallAnswered", "CallHeld", "CallUnheld",
    "CallTransferred", "TransferAnswered", "CallAbandoned", "CallEnded",
)  # fmt: skip


def ami_events(name: str, event: str) -> list[AmiMessage]:
    return [m for m in AmiCodec().feed(from_asterisk(name)) if m.name == event]


def field(msg: AmiMessage, key: str) -> str:
    return text(msg.fields, key)


def timeline(r: Replay) -> list[str]:
    return [e.type for e in r.events if e.type in FLOW_TIMELINE]


def ended(r: Replay) -> CallSnapshot:
    event = r.one(CallEnded)
    assert isinstance(event, CallEnded)
    return event.call


def turns(call: CallSnapshot) -> dict[str, AgentTurn]:
    return {t.agent: t for t in call.agents}


def cdr(name: str, channel_suffix: str) -> int:
    """BillableSeconds of the Cdr whose DestinationChannel ends with ``channel_suffix``."""
    found = [m for m in ami_events(name, "Cdr")
             if field(m, "DestinationChannel").endswith(channel_suffix)]  # fmt: skip
    assert len(found) == 1
    return int(field(found[0], "BillableSeconds"))


def test_blind_transfer_gives_each_agent_their_turn() -> None:
    """Bug (issue 15.1): after BlindTransfer op101 → 102 the call stayed ``agent: PJSIP/op101,
    hangup_by: transfer``, with no transfer and no op102 anywhere."""
    name = "ami-blind-transfer.txt"
    r = replay(name)
    assert timeline(r) == [
        "CallStarted", "CallQueued", "AgentRinging", "CallAnswered", "CallTransferred",
        "TransferAnswered", "CallEnded",
    ]  # fmt: skip
    call = ended(r)
    assert (call.agent, call.agent_name) == ("PJSIP/op102", "Operator 102")
    assert call.hangup_by == "caller"  # HangupRequest on the trunk: the caller's BYE
    assert (call.caller, call.did, call.queue) == ("79161234567", "74951234567", "reception")
    op101, op102 = turns(call)["PJSIP/op101"], turns(call)["PJSIP/op102"]
    [complete] = ami_events(name, "AgentComplete")
    assert field(complete, "Reason") == "transfer"
    assert op101.talk_seconds == float(field(complete, "TalkTime"))  # 4
    assert (op101.via, op101.end, op101.hold_seconds) == ("queue", "transfer", 0.0)
    assert (op102.via, op102.end) == ("blind", "caller")
    assert op101.ended_at is not None and op102.ended_at is not None
    # Asterisk's second Cdr (LastApplication Dial → op102) runs from the transfer to the end:
    # op102 rang, then talked
    assert int(op102.ended_at - op101.ended_at) == cdr(name, "op102-00000014")
    assert op102.talk_seconds == pytest.approx(op102.ended_at - op102.connected_at)
    assert call.talk_seconds == pytest.approx(op101.talk_seconds + (op102.talk_seconds or 0))
    transferred = r.one(CallTransferred)
    assert isinstance(transferred, CallTransferred)
    assert (transferred.kind, transferred.from_agent, transferred.target) == (
        "blind", "PJSIP/op101", "102@operators")
    answered = r.one(TransferAnswered)
    assert isinstance(answered, TransferAnswered) and answered.agent == "PJSIP/op102"


def test_live_view_during_the_transferred_talk_shows_op102() -> None:
    """Bug (issue 15.1): during op102's talk /api/live showed op101 on the call and op102 not
    in a call."""
    seen: list[dict[str, Any]] = []
    r = Replay()

    def on_event(event: DomainEvent) -> None:
        if isinstance(event, TransferAnswered):
            seen.append(r.model.to_dict())

    r.bus.subscribe(on_event)
    r.feed([from_asterisk("ami-blind-transfer.txt")])
    [live] = seen
    assert [(c["agent"], c["state"]) for c in live["calls"]] == [("PJSIP/op102", "answered")]
    in_call = {a["interface"]: a["in_call"] for a in live["agents"]}
    assert in_call["PJSIP/op102"] is True and in_call["PJSIP/op101"] is False


def test_attended_transfer_finds_the_target_through_the_local_channel() -> None:
    name = "ami-attended-transfer.txt"
    r = replay(name)
    assert timeline(r) == [
        "CallStarted", "CallQueued", "AgentRinging", "CallAnswered", "CallHeld", "CallUnheld",
        "CallTransferred", "CallEnded",
    ]  # fmt: skip
    transferred = r.one(CallTransferred)
    assert isinstance(transferred, CallTransferred)
    assert (transferred.kind, transferred.from_agent, transferred.to_agent) == (
        "attended", "PJSIP/op101", "PJSIP/op102")
    call = ended(r)
    assert call.agent == "PJSIP/op102" and call.hangup_by == "caller"
    op101, op102 = turns(call)["PJSIP/op101"], turns(call)["PJSIP/op102"]
    [complete] = ami_events(name, "AgentComplete")
    # Asterisk's TalkTime counts the consultation hold as talk; we keep them apart
    assert (op101.talk_seconds or 0) + op101.hold_seconds == float(field(complete, "TalkTime"))
    [hold] = ami_events(name, "Hold")
    assert op101.ended_at is not None
    assert op101.hold_seconds == pytest.approx(op101.ended_at - float(field(hold, "Timestamp")))
    # op102 talks with the caller through Local;1 from the transfer on (its Cdr: 11 s)
    local1 = [m for m in ami_events(name, "Cdr") if field(m, "Channel").endswith(";1")]
    assert int(op102.talk_seconds or 0) == int(field(local1[0], "BillableSeconds"))
    assert call.hold_seconds == op101.hold_seconds
    assert call.talk_seconds == pytest.approx((op101.talk_seconds or 0) + (op102.talk_seconds or 0))


def test_hold_time_is_kept_apart_from_talk() -> None:
    """Bug (issue 15.2): Hold/Unhold were ignored, /api/live said answered throughout and the
    record counted the hold as talk."""
    name = "ami-hold-unhold.txt"
    states: list[str] = []
    r = Replay()

    def on_event(event: DomainEvent) -> None:
        if isinstance(event, CallHeld | CallUnheld):
            states.append(r.model.to_dict()["calls"][0]["state"])

    r.bus.subscribe(on_event)
    r.feed([from_asterisk(name)])
    assert states == ["on_hold", "answered"]
    [hold], [unhold] = ami_events(name, "Hold"), ami_events(name, "Unhold")
    held = float(field(unhold, "Timestamp")) - float(field(hold, "Timestamp"))
    call = ended(r)
    [complete] = ami_events(name, "AgentComplete")
    assert call.hold_seconds == pytest.approx(held)
    assert call.talk_seconds == pytest.approx(float(field(complete, "TalkTime")) - held)
    [turn] = call.agents
    assert (turn.agent, turn.hold_seconds, turn.end) == ("PJSIP/op101", call.hold_seconds, "caller")
    unheld = r.one(CallUnheld)
    assert isinstance(unheld, CallUnheld) and unheld.held_seconds == pytest.approx(held)


def test_queue_positions_are_renumbered_as_asterisk_does() -> None:
    """Bug (issue 15.5): /api/live showed position 2 while QueueStatus said 1 (positions were
    not renumbered when the caller ahead left). Each QueueStatus reply in the transcript is
    compared with the model at the moment Asterisk built it."""
    name = "ami-queue-two-callers.txt"
    r = Replay()
    listed: dict[str, list[tuple[str, int]]] = {}
    compared: list[str] = []
    for msg in AmiCodec().feed(from_asterisk(name)):
        r.translator.handle(msg)
        if msg.name == "QueueEntry":
            listed.setdefault(msg.action_id or "", []).append(
                (field(msg, "Uniqueid"), int(field(msg, "Position")))
            )
        elif msg.name == "QueueStatusComplete":
            ours = [(w.uniqueid, w.position) for w in r.model.queues()["reception"].waiting]
            assert ours == listed[msg.action_id or ""], msg.action_id
            compared.append(msg.action_id or "")
    assert compared == ["qs-both-waiting", "qs-second-waiting"]
    assert listed["qs-second-waiting"] == [("1796162555.35", 1)]
    second = [e for e in r.events if isinstance(e, CallAnswered)][1]
    [_, connect] = ami_events(name, "AgentConnect")
    assert second.wait_seconds == float(field(connect, "HoldTime")) == 15.0


@pytest.mark.parametrize(
    "name",
    ["ami-queue-answered-call.txt", "ami-queue-abandoned-call.txt", "ami-originate.txt",
     "ami-local-member-cyrillic.txt", "ami-queue-two-callers.txt"],
)  # fmt: skip
def test_single_agent_calls_keep_talk_equal_to_asterisks_talk_time(name: str) -> None:
    r = replay(name)
    completes = {field(m, "Linkedid") or field(m, "Uniqueid"): m
                 for m in ami_events(name, "AgentComplete")}  # fmt: skip
    for event in r.of_type(CallEnded):
        assert isinstance(event, CallEnded)
        call = event.call
        if call.id not in completes:
            assert call.agents == () and call.talk_seconds is None
            continue
        [turn] = call.agents
        assert turn.talk_seconds == call.talk_seconds == float(
            field(completes[call.id], "TalkTime"))
        assert call.hold_seconds == 0.0
