"""The recorded AMI transcripts through codec + translator + live model.

Each transcript is fed whole and in random chunk sizes (hypothesis); the published domain events
must be identical either way. Concrete facts come from the transcripts themselves (see
tests/fixtures/asterisk/SOURCE.md and the README beside the originals).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callserver.asterisk.ami_codec import AmiCodec, AmiMessage
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.core.bus import EventBus
from callserver.core.events import (
    AgentRinging,
    AgentStatusChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallStarted,
    CallUpdated,
    DomainEvent,
)
from callserver.core.model import LiveModel
from tests.transcripts import from_asterisk

AMI_TRANSCRIPTS = [
    "ami-login.txt",
    "ami-login-failed.txt",
    "ami-queue-answered-call.txt",
    "ami-queue-abandoned-call.txt",
    "ami-originate.txt",
    "ami-during-ari-call.txt",
    "ami-local-member-cyrillic.txt",
    "ami-blind-transfer.txt",
    "ami-attended-transfer.txt",
    "ami-hold-unhold.txt",
    "ami-queue-two-callers.txt",
]
ANSWERED_TIMELINE = ["CallStarted", "CallQueued", "AgentRinging", "CallAnswered", "CallEnded"]
TIMELINE = (CallStarted, CallQueued, AgentRinging, CallAnswered, CallAbandoned, CallEnded)


class Replay:
    """Codec + translator + model + a recording bus subscriber."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.events: list[DomainEvent] = []
        self.bus.subscribe(self.events.append)
        self.model = LiveModel(self.bus)
        self.translator = AmiTranslator(self.model)
        self.codec = AmiCodec()

    def feed(self, chunks: Iterable[bytes]) -> Replay:
        for chunk in chunks:
            for msg in self.codec.feed(chunk):
                self.translator.handle(msg)
        return self

    def of_type(self, cls: type[DomainEvent]) -> list[DomainEvent]:
        return [e for e in self.events if isinstance(e, cls)]

    def one(self, cls: type[CallEvent]) -> CallEvent:
        found = [e for e in self.events if isinstance(e, cls)]
        assert len(found) == 1, f"expected one {cls.__name__}, got {len(found)}"
        return found[0]

    def timeline(self) -> list[str]:
        return [e.type for e in self.events if isinstance(e, TIMELINE)]


def replay(name: str, chunks: Iterable[bytes] | None = None) -> Replay:
    return Replay().feed(chunks if chunks is not None else [from_asterisk(name)])


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(data[pos : pos + size])
        pos += size
        i += 1
    return out


def dicts(events: list[DomainEvent]) -> list[dict[str, object]]:
    return [e.to_dict() for e in events]


@pytest.mark.parametrize("name", AMI_TRANSCRIPTS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=20))
def test_random_chunking_gives_the_same_events(name: str, sizes: list[int]) -> None:
    whole = replay(name)
    chunked = replay(name, split(from_asterisk(name), sizes))
    assert dicts(chunked.events) == dicts(whole.events)
    assert chunked.translator.bad == whole.translator.bad == 0
    assert len(chunked.model) == len(whole.model) == 0


def test_answered_call_facts_and_timeline() -> None:
    r = replay("ami-queue-answered-call.txt")
    assert r.timeline() == ANSWERED_TIMELINE
    ended = r.one(CallEnded)
    assert isinstance(ended, CallEnded)
    call = ended.call
    assert call.id == call.linkedid == "1795413075.4"
    assert call.direction == "inbound"
    assert call.caller == "79161234567"
    assert call.did == "74951234567"
    assert call.ad_source == "source-a"
    assert call.queue == "reception"
    assert call.agent == "PJSIP/op101"
    assert call.agent_name == "Operator 101"
    assert call.state == "ended"
    assert call.talk_seconds == ended.talk_seconds == 11.0
    assert call.hangup_by == ended.hangup_by == "caller"  # AgentComplete Reason: caller
    assert call.hangup_cause == "Normal Clearing"
    assert call.wait_seconds == 3.0
    assert dict(call.variables) == {"ROUTE_QUEUE": "reception", "ROUTE_MODE": "queue"}
    ringing, answered = r.one(AgentRinging), r.one(CallAnswered)
    assert isinstance(ringing, AgentRinging) and isinstance(answered, CallAnswered)
    assert ringing.agent == "PJSIP/op101" and ringing.agent_channel == "PJSIP/op101-00000005"
    assert answered.ring_seconds == pytest.approx(3.0, abs=0.5)
    assert answered.at - ringing.at == pytest.approx(3.0, abs=0.5)
    queued = r.one(CallQueued)
    assert isinstance(queued, CallQueued)
    assert (queued.queue, queued.position) == ("reception", 1)
    assert len(r.model) == 0  # the ended call left the live model


def test_answered_call_emits_did_and_source_and_carries_route_variables_on() -> None:
    """DID and AD_SOURCE each publish a CallUpdated; ROUTE_* variables (6-9 per call from the
    route script) publish nothing of their own: the next event's snapshot carries them."""
    r = replay("ami-queue-answered-call.txt")
    changes = [e.changed for e in r.of_type(CallUpdated) if isinstance(e, CallUpdated)]
    assert ("did",) in changes and ("ad_source",) in changes
    assert not [c for c in changes if c[0].startswith("ROUTE_")]
    queued = r.one(CallQueued)
    assert isinstance(queued, CallQueued)
    assert dict(queued.call.variables)["ROUTE_QUEUE"] == "reception"


def test_abandoned_call_facts_and_timeline() -> None:
    r = replay("ami-queue-abandoned-call.txt")
    assert r.timeline() == [
        "CallStarted", "CallQueued", "AgentRinging", "CallAbandoned", "CallEnded",
    ]  # fmt: skip
    abandoned = r.one(CallAbandoned)
    assert isinstance(abandoned, CallAbandoned)
    assert abandoned.wait_seconds == 9.0  # QueueCallerAbandon HoldTime: the queue wait
    assert abandoned.position == 1
    assert abandoned.queue == "reception"
    call = r.one(CallEnded).call
    assert call.caller == "79035550101"
    assert call.ad_source == "source-b"
    assert call.did == "74957654321"
    assert call.state == "abandoned"
    assert call.wait_seconds == 9.0 and call.abandon_position == 1
    assert call.hold_seconds is None  # never on hold: never answered
    assert call.agent == "" and call.answered_at is None and call.talk_seconds is None
    assert call.hangup_by == "caller"
    assert len(r.model) == 0


def test_cyrillic_caller_name_and_local_channel_member() -> None:
    data = from_asterisk("ami-local-member-cyrillic.txt")
    assert "Лаб Пациент".encode() in data
    r = replay("ami-local-member-cyrillic.txt", split(data, [1]))  # every multibyte char split
    assert r.timeline() == ANSWERED_TIMELINE
    call = r.one(CallEnded).call
    assert call.caller == "79161234567"
    assert call.caller_name == "Лаб Пациент"
    assert call.queue == "labq"
    assert call.agent == "Local/op-bot@lab-local/n"
    assert call.agent_name == "op-bot"
    assert call.direction == "outbound"  # an Originate of a Local channel
    assert call.hangup_by == "agent" and call.talk_seconds == 5.0
    agents = r.model.agents()
    assert [a.interface for a in agents] == ["Local/op-bot@lab-local/n"]
    assert agents[0].status == "not_inuse" and agents[0].calls_taken == 3
    assert not agents[0].in_call
    in_call = [
        e.agent.in_call for e in r.of_type(AgentStatusChanged) if isinstance(e, AgentStatusChanged)
    ]
    assert True in in_call and in_call[-1] is False


def test_originate_call_takes_caller_from_the_queue_leg() -> None:
    r = replay("ami-originate.txt")
    assert r.timeline() == ANSWERED_TIMELINE
    call = r.one(CallEnded).call
    assert (call.caller, call.caller_name) == ("79161234567", "Lab Caller")
    assert call.direction == "outbound"
    assert call.agent == "PJSIP/op101"
    assert call.talk_seconds == 7.0 and call.hangup_by == "caller"


def test_ari_call_ignores_the_external_media_channel() -> None:
    r = replay("ami-during-ari-call.txt")
    assert r.timeline() == ["CallStarted", "CallEnded"]
    call = r.one(CallEnded).call
    assert call.direction == "inbound"
    assert call.did == "74959990000" and call.ad_source == "ari-line"
    assert call.state == "ended" and call.hangup_cause == "Normal Clearing"


def test_login_transcript_changes_nothing() -> None:
    r = replay("ami-login.txt")
    assert r.events == []  # QueueMember list items are resync input, not live events


def test_live_state_while_the_agent_rings() -> None:
    seen: list[tuple[str, int, int]] = []
    r = Replay()

    def on_event(event: DomainEvent) -> None:
        if isinstance(event, AgentRinging):
            queue = r.model.queues()["reception"]
            seen.append((r.model.calls()[0].state, len(queue.waiting), queue.waiting[0].position))

    r.bus.subscribe(on_event)
    r.feed([from_asterisk("ami-queue-answered-call.txt")])
    assert seen == [("agent_ringing", 1, 1)]


def event(name: str, **fields: str) -> AmiMessage:
    return AmiMessage("event", name, {"Event": name, **fields})


def test_bad_fields_are_logged_escaped_and_masked(caplog: pytest.LogCaptureFixture) -> None:
    r = Replay()
    caplog.set_level(logging.WARNING, logger="callserver.asterisk.ami_translate")
    r.translator.handle(
        event("Newchannel", Channel="PJSIP/x\r\nEvil: 1", CallerIDNum="79161234567")
    )
    r.translator.handle(
        event("QueueCallerJoin", Uniqueid="1.1", Queue="q", Position="first", Timestamp="x")
    )
    r.translator.handle(event("VarSet", Variable="__DID", Value="74951234567"))
    assert r.translator.bad == 3
    assert r.events == []
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert len(caplog.records) == 3
    assert "\r" not in text.replace("\n", "") and "\\r\\n" in text
    assert "79161234567" not in text and "***4567" in text
    assert "Uniqueid" in text and "Position" in text


def test_inherited_variable_prefixes_and_filtering_on_the_wire() -> None:
    wire = (
        "Asterisk Call Manager/11.0.0\r\n"
        "Event: Newchannel\r\nTimestamp: 10.0\r\nChannel: PJSIP/trunk-1\r\n"
        "ChannelStateDesc: Ring\r\nCallerIDNum: 79161234567\r\nCallerIDName: <unknown>\r\n"
        "Context: from-trunk\r\nUniqueid: 5.1\r\nLinkedid: 5.1\r\n\r\n"
    )
    for var, value in [
        ("_AD_SOURCE", "source-a"),
        ("__ROUTE_PRIORITY", "high"),
        ("CAMPAIGN", "spring"),
        ("SIPDOMAIN", "127.0.0.1"),
        ("__DIDX", "no"),
    ]:
        wire += (
            f"Event: VarSet\r\nTimestamp: 11.0\r\nChannel: PJSIP/trunk-1\r\n"
            f"Uniqueid: 5.1\r\nLinkedid: 5.1\r\nVariable: {var}\r\nValue: {value}\r\n\r\n"
        )
    r = Replay().feed([wire.encode()])
    call = r.model.call("5.1")
    assert call is not None
    assert call.caller_name == ""  # <unknown> is no name
    assert call.ad_source == "source-a"
    assert dict(call.variables) == {"ROUTE_PRIORITY": "high", "CAMPAIGN": "spring"}
    # AD_SOURCE publishes; ROUTE_PRIORITY and CAMPAIGN ride on the call's next event
    assert [e.type for e in r.events] == ["CallStarted", "CallUpdated"]


def test_events_for_unknown_channels_are_ignored() -> None:
    r = Replay()
    r.translator.handle(event("Hangup", Uniqueid="9.9", Timestamp="1.0"))
    r.translator.handle(event("AgentConnect", Uniqueid="9.9", Interface="PJSIP/op1"))
    r.translator.handle(event("VarSet", Uniqueid="9.9", Variable="DID", Value="1"))
    r.translator.handle(AmiMessage("response", "Success", {"Response": "Success"}))
    assert r.events == [] and r.translator.bad == 0


HANDLED = [
    "VarSet", "Newchannel", "Newstate", "NewCallerid", "Hangup", "DialEnd", "QueueCallerJoin",
    "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled", "AgentRingNoAnswer", "AgentConnect",
    "AgentComplete", "QueueMemberStatus", "QueueMemberAdded", "QueueMemberRemoved",
    "QueueMemberPause", "BridgeEnter", "BridgeLeave", "HangupRequest", "Hold", "Unhold",
    "BlindTransfer", "AttendedTransfer",
]  # fmt: skip
KEYS = [
    "Uniqueid", "Linkedid", "Channel", "Queue", "Interface", "Position", "HoldTime", "TalkTime",
    "RingTime", "Status", "Paused", "Variable", "Value", "Timestamp", "DestUniqueid", "CallsTaken",
    "BridgeUniqueid", "TransfererUniqueid", "TransfereeUniqueid", "OrigTransfererUniqueid",
    "Result", "Reason", "Extension",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(st.sampled_from(HANDLED), min_size=1, max_size=30),
    values=st.lists(
        st.dictionaries(
            st.sampled_from(KEYS),
            st.one_of(
                st.sampled_from(["1.1", "1.2", "q", "PJSIP/a", "DID", "1", "", "Success", "b1"]),
                st.text(),
            ),
        ),
        min_size=1,
        max_size=30,
    ),
)
def test_translator_never_raises_on_garbage(names: list[str], values: list[dict[str, str]]) -> None:
    r = Replay()
    for i, name in enumerate(names):
        fields: dict[str, str | list[str]] = {"Event": name, **values[i % len(values)]}
        r.translator.handle(AmiMessage("event", name, fields))
    for call in r.model.calls():
        assert call.state != "ended"


def test_without_timestamp_headers_calls_get_this_hosts_time_not_1970() -> None:
    """Bug: Asterisk's default is ``timestampevents = no``; with no Timestamp header ever seen
    every event got time 0.0, so calls were stored as started on 1970-01-01."""
    import re
    import time

    data = re.sub(rb"Timestamp: [^\r\n]*\r\n", b"", from_asterisk("ami-queue-answered-call.txt"))
    assert b"Timestamp" not in data
    before = time.time()
    r = replay("ami-queue-answered-call.txt", [data])
    ended = r.one(CallEnded)
    assert before - 5 <= ended.call.started_at <= time.time() + 5
    assert ended.call.talk_seconds == 11.0  # Asterisk's own TalkTime is still used
