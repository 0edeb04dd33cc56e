"""A call keeps its identity across a restart of callserver (issue 15.3, issue 9 defect 2).

A golden transcript is replayed up to a cut (callserver is ``kill -9``-ed there); what the writer
would have stored is the latest snapshot of each call (``StoredCall``). A fresh model is then
resynced as after the restart, from the CoreShowChannels list of that moment (built with
``test_resync.core_show_channel``, field values taken from the transcript) and the stored calls,
and the rest of the transcript is replayed into it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from callserver.asterisk.ami_codec import AmiCodec, AmiMessage
from callserver.asterisk.ami_translate import AmiTranslator, text
from callserver.asterisk.resync import apply_resync
from callserver.core.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallHeld,
    CallQueued,
    CallStarted,
    CallTransferred,
    CallUpdated,
    ModelResynced,
)
from callserver.core.model import RESYNC_CAUSE, StoredCall
from tests.transcripts import from_asterisk
from tests.unit.test_resync import World, channel_list, core_show_channel


def stream(name: str) -> Iterator[AmiMessage]:
    return iter(AmiCodec().feed(from_asterisk(name)))


def feed_until(w: World, msgs: Iterator[AmiMessage], name: str) -> AmiMessage:
    for msg in msgs:
        w.translator.handle(msg)
        if msg.name == name:
            return msg
    raise AssertionError(f"no {name}")


def stored(w: World) -> list[StoredCall]:
    """What the writer holds after the events so far: each open call's latest snapshot."""
    latest: dict[str, CallEvent] = {}
    for event in w.events:
        if isinstance(event, CallEvent):
            latest[event.call.id] = event
    return [StoredCall(e.call, e.at) for e in latest.values() if e.call.ended_at is None]


def blind_transfer_listed(at: float) -> list[AmiMessage]:
    """CoreShowChannels while op101 talks in ami-blind-transfer.txt: the trunk channel runs
    Queue in route-inbound (not the from-trunk context it arrived in), op101 is in AppQueue."""
    return channel_list(
        core_show_channel(Channel="PJSIP/trunk-00000012", Uniqueid="1796162433.24",
                          Linkedid="1796162433.24", CallerIDNum="79161234567",
                          Context="route-inbound", BridgeId="f4f2c285-ee59-4a48-a884-9dcdec03a29a",
                          Duration="00:00:07"),
        core_show_channel(Channel="PJSIP/op101-00000013", Uniqueid="1796162434.25",
                          Linkedid="1796162433.24", CallerIDNum="101", Context="operators",
                          CallerIDName="Operator 101", Application="AppQueue",
                          BridgeId="f4f2c285-ee59-4a48-a884-9dcdec03a29a", Duration="00:00:07"),
    )  # fmt: skip


def restart(name: str, cut: str) -> tuple[World, World, Iterator[AmiMessage], AmiMessage]:
    before, msgs = World(), stream(name)
    last = feed_until(before, msgs, cut)
    return before, World(), msgs, last


def test_a_call_keeps_its_identity_and_facts_across_a_restart() -> None:
    """Bug (issue 15.3): after kill -9 and restart, resync rebuilt the call from the operator's
    channel (direction internal, caller 101, no DID, queue or agent), a second CallStarted went
    to the timeline and the CRM got a record with an empty phone."""
    before, after, msgs, connect = restart("ami-blind-transfer.txt", "AgentConnect")
    now = float(text(connect.fields, "Timestamp")) + 1
    apply_resync(after.model, blind_transfer_listed(now), [], now, stored=stored(before))
    [call] = after.model.calls()
    assert (call.id, call.direction, call.caller, call.did, call.ad_source, call.queue) == (
        "1796162433.24", "inbound", "79161234567", "74951234567", "source-a", "reception")
    assert (call.agent, call.state, call.started_at) == (
        "PJSIP/op101", "answered", before.model.calls()[0].started_at)
    assert dict(call.variables) == {"ROUTE_QUEUE": "reception", "ROUTE_MODE": "queue"}
    assert after.count(CallStarted) == 0
    restored = [e for e in after.events if isinstance(e, CallUpdated)]
    assert [e.changed for e in restored] == [("restored",)]
    agents = {a.interface: a.in_call for a in after.model.agents()}
    assert agents == {}  # no QueueStatus in this test: no memberships, nothing invented
    for msg in msgs:  # the rest of the call: the transfer, op102, the caller's hangup
        after.translator.handle(msg)
    [end] = [e for e in after.events if isinstance(e, CallEnded)]
    final = end.call
    assert (final.caller, final.did, final.direction, final.queue) == (
        "79161234567", "74951234567", "inbound", "reception")
    assert [t.agent for t in final.agents] == ["PJSIP/op101", "PJSIP/op102"]
    assert final.agents[0].talk_seconds == 4.0 and final.hangup_by == "caller"
    assert after.count(CallTransferred) == 1 and after.count(CallStarted) == 0


def test_without_stored_facts_the_call_is_still_started_by_the_customers_channel() -> None:
    """The lists alone (PostgreSQL unreachable at resync): the customer's channel (Uniqueid =
    Linkedid) starts the call even when the operator's channel lists as older."""
    after = World()
    now = 1796162439.0
    listed = channel_list(
        core_show_channel(Channel="PJSIP/op101-00000013", Uniqueid="1796162434.25",
                          Linkedid="1796162433.24", CallerIDNum="101", Context="operators",
                          BridgeId="b1", Duration="00:00:09"),
        core_show_channel(Channel="PJSIP/trunk-00000012", Uniqueid="1796162433.24",
                          Linkedid="1796162433.24", CallerIDNum="79161234567",
                          BridgeId="b1", Duration="00:00:05"),
    )  # fmt: skip
    apply_resync(after.model, listed, [], now)
    [call] = after.model.calls()
    assert (call.caller, call.direction) == ("79161234567", "inbound")


def test_a_hold_in_progress_survives_a_restart() -> None:
    before, after, msgs, hold = restart("ami-hold-unhold.txt", "Hold")
    now = float(text(hold.fields, "Timestamp")) + 1
    listed = channel_list(
        core_show_channel(Channel="PJSIP/trunk-00000018", Uniqueid="1796162517.32",
                          Linkedid="1796162517.32", CallerIDNum="79161234567", BridgeId="b1"),
        core_show_channel(Channel="PJSIP/op101-00000019", Uniqueid="1796162519.33",
                          Linkedid="1796162517.32", CallerIDNum="101", BridgeId="b1"),
    )  # fmt: skip
    apply_resync(after.model, listed, [], now, stored=stored(before))
    assert [c.state for c in after.model.calls()] == ["on_hold"]
    for msg in msgs:
        after.translator.handle(msg)
    [end] = [e for e in after.events if isinstance(e, CallEnded)]
    [held_before] = [e for e in before.events if isinstance(e, CallHeld)]
    [unhold] = [m for m in stream("ami-hold-unhold.txt") if m.name == "Unhold"]
    [complete] = [m for m in stream("ami-hold-unhold.txt") if m.name == "AgentComplete"]
    held = float(text(unhold.fields, "Timestamp")) - held_before.at
    assert end.call.hold_seconds == pytest.approx(held)  # the hold began before the restart
    talk_time = float(text(complete.fields, "TalkTime"))
    assert end.call.agents[0].talk_seconds == pytest.approx(talk_time - held)
    assert held_before.call.caller == end.call.caller == "79161234567"


def test_calls_that_ended_while_callserver_was_down_are_closed_once() -> None:
    """Bug (issue 9 defect 2): calls live at a kill -9 stayed answered forever, ended_at null,
    and never reached the CRM. Asterisk no longer lists them: each is closed once, at the time
    of its latest stored event, marked as closed by resync."""
    before, after, _, connect = restart("ami-queue-answered-call.txt", "AgentConnect")
    [open_call] = stored(before)
    now = float(text(connect.fields, "Timestamp")) + 60
    apply_resync(after.model, channel_list(), [], now, stored=[open_call])
    [end] = [e for e in after.events if isinstance(e, CallEnded)]
    assert end.at == end.call.ended_at == open_call.updated_at
    assert end.cause == end.call.hangup_cause == RESYNC_CAUSE
    assert (end.call.caller, end.call.did, end.call.agent) == (
        "79161234567", "74951234567", "PJSIP/op101")
    assert end.call.state == "ended" and after.model.calls() == []
    [resynced] = [e for e in after.events if isinstance(e, ModelResynced)]
    assert resynced.closed_calls == (open_call.call.id,)
    after.take()
    apply_resync(after.model, channel_list(), [], now + 5, stored=[open_call])  # not yet written
    assert [e.type for e in after.events] == ["ModelResynced"]


def test_a_call_that_ended_here_is_not_closed_again_from_a_stale_stored_copy() -> None:
    w = World()
    for msg in stream("ami-queue-answered-call.txt"):
        w.translator.handle(msg)
    [done] = [e for e in w.events if isinstance(e, CallEnded)]
    # PostgreSQL still has the answered snapshot: the writer had not flushed the end yet
    [answered] = [e for e in w.events if isinstance(e, CallAnswered)]
    stale = StoredCall(answered.call, answered.at)
    w.take()
    apply_resync(w.model, channel_list(), [], done.at + 1, stored=[stale])
    assert [e.type for e in w.events if isinstance(e, CallEvent)] == []


def test_agent_complete_without_the_callers_fields_is_handled_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bug (issue 15.7): under load Asterisk sends AgentComplete without the caller's channel
    fields; each one was dropped with a WARNING (1,251 in one run). The call is found from the
    agent's channel, the event counted, one line logged per minute."""
    caller_keys = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
                   "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context",
                   "Exten", "Priority", "Uniqueid", "Linkedid")  # fmt: skip
    clock = [1000.0]
    w = World()
    w.translator = AmiTranslator(w.model, clock=lambda: clock[0])
    caplog.set_level(logging.INFO, logger="callserver.asterisk.ami_translate")
    for msg in stream("ami-queue-answered-call.txt"):
        if msg.name == "AgentComplete":
            fields = {k: v for k, v in msg.fields.items() if k not in caller_keys}
            msg = AmiMessage("event", msg.name, fields)
            for _ in range(50):  # a burst: still one log line
                w.translator.handle(msg)
            clock[0] += 61
        w.translator.handle(msg)
    [end] = [e for e in w.events if isinstance(e, CallEnded)]
    assert end.call.talk_seconds == 11.0 and end.call.hangup_by == "caller"
    assert w.translator.bad == 0 and w.translator.agent_complete_without_caller == 51
    lines = [r for r in caplog.records if "without the caller" in r.getMessage()]
    assert len(lines) == 2 and all(r.levelno < logging.WARNING for r in lines)


def test_waiting_callers_restored_after_a_restart_keep_their_place_and_wait() -> None:
    """Restart while two callers wait: the real QueueStatus reply of that moment (ActionID
    qs-both-waiting in the capture) and the stored calls rebuild the queue without a second
    CallQueued; the rest of the capture then answers both with Asterisk's waits."""
    name = "ami-queue-two-callers.txt"
    before, msgs, reply = World(), stream(name), []
    for msg in msgs:
        before.translator.handle(msg)
        if msg.action_id == "qs-both-waiting" and msg.kind == "event":
            reply.append(msg)
        if msg.name == "QueueStatusComplete":
            break
    listed = channel_list(
        core_show_channel(Channel="PJSIP/trunk-0000001a", Uniqueid="1796162554.34",
                          Linkedid="1796162554.34", Context="route-inbound", Duration="00:00:03"),
        core_show_channel(Channel="PJSIP/op101-0000001c", Uniqueid="1796162556.36",
                          Linkedid="1796162554.34", ChannelStateDesc="Ringing", CallerIDNum="101",
                          Context="operators", Application="AppQueue", Duration="00:00:01"),
        core_show_channel(Channel="PJSIP/trunk-0000001b", Uniqueid="1796162555.35",
                          Linkedid="1796162555.35", Context="route-inbound", Duration="00:00:02"),
    )  # fmt: skip
    after = World()
    now = float(text(reply[-1].fields, "Timestamp") or "1796162558.5")
    apply_resync(after.model, listed, reply, now, stored=stored(before))
    assert after.count(CallStarted) == 0 and after.count(CallQueued) == 0
    waiting = after.model.queues(now)["reception"].waiting
    assert [(w.uniqueid, w.position) for w in waiting] == [
        (text(m.fields, "Uniqueid"), int(text(m.fields, "Position")))
        for m in reply if m.name == "QueueEntry"
    ]  # fmt: skip
    assert [w.joined_at for w in waiting] == [
        c.queued_at for c in sorted(before.model.calls(), key=lambda c: c.started_at)]
    for msg in msgs:
        after.translator.handle(msg)
    answered = [e for e in after.events if isinstance(e, CallAnswered)]
    assert [(e.call.caller, e.wait_seconds) for e in answered] == [
        ("79161234567", 3.0), ("79035550101", 15.0)]
    assert after.count(CallEnded) == 2 and after.model.calls() == []
