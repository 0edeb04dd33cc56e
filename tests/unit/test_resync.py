"""Resync after a (re)connect: CoreShowChannels + QueueStatus → LiveModel.resync.

The transcripts hold no CoreShowChannels reply, so the list below is built by hand with the field
list of the ``CoreShowChannel`` event as documented for Asterisk 22
(https://docs.asterisk.org/Certified-Asterisk_22.8_Documentation/API_Documentation/AMI_Events/CoreShowChannel,
"Since 22.1.0": ActionID, Channel, ChannelState, ChannelStateDesc, CallerIDNum, CallerIDName,
ConnectedLineNum, ConnectedLineName, Language, AccountCode, Context, Exten, Priority, Uniqueid,
Linkedid, BridgeId, Application, ApplicationData, Duration) and the list framing of
``CoreShowChannelsComplete`` (EventList, ListItems). The QueueStatus reply is the real one
recorded in ``ami-login.txt``. Everything goes through the real codec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from callserver.asterisk.ami_codec import AmiCodec, AmiMessage
from callserver.asterisk.ami_translate import AmiTranslator, BadField
from callserver.asterisk.resync import apply_resync, parse_duration, resync
from callserver.core.bus import EventBus
from callserver.core.events import (
    AgentStatusChanged,
    CallAnswered,
    CallEnded,
    CallQueued,
    CallStarted,
    DomainEvent,
    ModelResynced,
)
from callserver.core.model import RESYNC_CAUSE, LiveModel
from tests.transcripts import from_asterisk, segments

NOW = 1795413200.0


def core_show_channel(**over: str) -> str:
    fields = {
        "Event": "CoreShowChannel",
        "ActionID": "rs-1",
        "Channel": "PJSIP/trunk-00000010",
        "ChannelState": "6",
        "ChannelStateDesc": "Up",
        "CallerIDNum": "79260001122",
        "CallerIDName": "79260001122",
        "ConnectedLineNum": "<unknown>",
        "ConnectedLineName": "<unknown>",
        "Language": "en",
        "AccountCode": "",
        "Context": "from-trunk",
        "Exten": "74951234567",
        "Priority": "9",
        "Uniqueid": "1795413150.20",
        "Linkedid": "1795413150.20",
        "BridgeId": "",
        "Application": "Queue",
        "ApplicationData": "reception,r,,,45",
        "Duration": "00:00:50",
    }
    fields.update(over)
    return "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"


def channel_list(*items: str) -> list[AmiMessage]:
    """A CoreShowChannels reply on the wire → the item events (as AmiClient returns them)."""
    wire = (
        "Response: Success\r\nActionID: rs-1\r\nEventList: start\r\n"
        "Message: Channels will follow\r\n\r\n"
        + "".join(items)
        + "Event: CoreShowChannelsComplete\r\nActionID: rs-1\r\nEventList: Complete\r\n"
        f"ListItems: {len(items)}\r\n\r\n"
    )
    msgs = AmiCodec(expect_banner=False).feed(wire.encode())
    return [m for m in msgs if m.name == "CoreShowChannel"]


def queue_status_from_login() -> list[AmiMessage]:
    """The real QueueStatus(reception) reply recorded in ami-login.txt (items only)."""
    msgs = AmiCodec().feed(from_asterisk("ami-login.txt"))
    return [m for m in msgs if m.action_id == "qs-1" and m.name in ("QueueParams", "QueueMember")]


class World:
    def __init__(self) -> None:
        self.bus = EventBus()
        self.events: list[DomainEvent] = []
        self.bus.subscribe(self.events.append)
        self.model = LiveModel(self.bus)
        self.translator = AmiTranslator(self.model)

    def feed_until(self, name: str, stop_after: str) -> None:
        """Feed the transcript's events up to and including the first ``stop_after`` event."""
        for msg in AmiCodec().feed(from_asterisk(name)):
            self.translator.handle(msg)
            if msg.name == stop_after:
                return
        raise AssertionError(f"{stop_after} not in {name}")

    def count(self, cls: type[DomainEvent]) -> int:
        return sum(isinstance(e, cls) for e in self.events)

    def take(self) -> list[DomainEvent]:
        out, self.events[:] = list(self.events), []
        return out


def test_call_gone_while_disconnected_is_closed_exactly_once() -> None:
    w = World()
    w.feed_until("ami-queue-answered-call.txt", "AgentConnect")  # talking; then the link drops
    assert [c.state for c in w.model.calls()] == ["answered"]
    w.take()
    apply_resync(w.model, channel_list(), queue_status_from_login(), NOW)
    ended = [e for e in w.events if isinstance(e, CallEnded)]
    assert len(ended) == 1
    assert ended[0].call.id == "1795413075.4"
    assert ended[0].cause == RESYNC_CAUSE and ended[0].at == NOW
    assert ended[0].call.talk_seconds is not None
    resynced = [e for e in w.events if isinstance(e, ModelResynced)]
    assert resynced == [ModelResynced(NOW, ("1795413075.4",), 0)]
    assert w.model.calls() == []
    w.take()
    apply_resync(w.model, channel_list(), queue_status_from_login(), NOW + 5)
    assert [e.type for e in w.events] == ["ModelResynced"]  # never closed twice


def test_unknown_live_call_is_created_once_and_resync_is_idempotent() -> None:
    w = World()
    channels = channel_list(
        core_show_channel(BridgeId="br-1", Application="Queue"),
        core_show_channel(
            Channel="PJSIP/op102-00000011",
            CallerIDNum="102",
            CallerIDName="Operator 102",
            Context="operators",
            Uniqueid="1795413160.21",
            BridgeId="br-1",
            Application="AppQueue",
            Duration="00:00:40",
        ),
    )
    apply_resync(w.model, channels, queue_status_from_login(), NOW)
    started = [e for e in w.events if isinstance(e, CallStarted)]
    assert len(started) == 1
    call = w.model.call("1795413150.20")
    assert call is not None
    assert call.caller == "79260001122" and call.direction == "inbound"
    assert call.started_at == NOW - 50
    first = (w.model.calls(), w.model.agents(), w.model.queues(NOW))
    w.take()
    apply_resync(w.model, channels, queue_status_from_login(), NOW)
    assert [e.type for e in w.events] == ["ModelResynced"]
    assert (w.model.calls(), w.model.agents(), w.model.queues(NOW)) == first


def test_queue_status_refreshes_members_from_the_recorded_reply() -> None:
    w = World()
    apply_resync(w.model, channel_list(), queue_status_from_login(), NOW)
    agents = {a.interface: a for a in w.model.agents()}
    assert sorted(agents) == ["PJSIP/op101", "PJSIP/op102", "PJSIP/op103"]
    assert agents["PJSIP/op101"].status == "not_inuse"
    assert agents["PJSIP/op101"].calls_taken == 3
    assert agents["PJSIP/op102"].status == "unavailable"  # Status: 5, not registered
    assert w.model.free_agents("reception") == 1
    assert w.model.logged_in_agents("reception") == 1
    assert w.count(AgentStatusChanged) == 3


def test_waiting_caller_listed_by_queue_status_is_queued() -> None:
    w = World()
    entry = AmiMessage(
        "event",
        "QueueEntry",
        {
            "Event": "QueueEntry",
            "Queue": "reception",
            "Position": "1",
            "Channel": "PJSIP/trunk-00000010",
            "Uniqueid": "1795413150.20",
            "CallerIDNum": "79260001122",
            "CallerIDName": "79260001122",
            "ConnectedLineNum": "<unknown>",
            "ConnectedLineName": "<unknown>",
            "Wait": "12",
            "Priority": "0",
        },
    )
    apply_resync(w.model, channel_list(core_show_channel()), [entry], NOW)
    queued = [e for e in w.events if isinstance(e, CallQueued)]
    assert len(queued) == 1 and queued[0].queue == "reception" and queued[0].at == NOW - 12
    assert w.model.queues(NOW)["reception"].longest_wait == 12.0
    assert w.model.counts_by_state()["queued"] == 1
    w.take()
    apply_resync(w.model, channel_list(core_show_channel()), [entry], NOW)
    assert [e.type for e in w.events] == ["ModelResynced"]


def test_queued_call_answered_while_disconnected_becomes_answered() -> None:
    w = World()
    w.feed_until("ami-queue-answered-call.txt", "AgentCalled")  # op101 rings; link drops
    w.take()
    listed = channel_list(
        core_show_channel(
            Channel="PJSIP/trunk-00000004",
            CallerIDNum="79161234567",
            Uniqueid="1795413075.4",
            Linkedid="1795413075.4",
            BridgeId="br-9",
        ),
        core_show_channel(
            Channel="PJSIP/op101-00000005",
            CallerIDNum="101",
            Context="operators",
            Uniqueid="1795413076.5",
            Linkedid="1795413075.4",
            BridgeId="br-9",
            Application="AppQueue",
        ),
    )
    apply_resync(w.model, listed, queue_status_from_login(), NOW)
    answered = [e for e in w.events if isinstance(e, CallAnswered)]
    assert len(answered) == 1 and answered[0].agent == "PJSIP/op101"
    assert w.model.counts_by_state()["answered"] == 1
    assert w.count(CallStarted) == 0  # nothing duplicated


def test_channels_seen_after_the_mark_survive_a_stale_list() -> None:
    w = World()
    mark = w.model.resync_mark()
    w.feed_until("ami-queue-answered-call.txt", "QueueCallerJoin")  # arrives during the lists
    apply_resync(w.model, channel_list(), [], NOW, mark=mark)
    assert [c.id for c in w.model.calls()] == ["1795413075.4"]
    assert w.count(CallEnded) == 0
    assert w.model.queues(NOW)["reception"].waiting[0].uniqueid == "1795413075.4"


def test_a_hung_up_channel_in_a_stale_list_is_not_revived() -> None:
    w = World()
    for msg in AmiCodec().feed(from_asterisk("ami-queue-abandoned-call.txt")):
        w.translator.handle(msg)
    assert w.count(CallEnded) == 1
    stale = channel_list(
        core_show_channel(Channel="PJSIP/trunk-00000006", Uniqueid="1795413111.6",
                          Linkedid="1795413111.6"),
    )  # fmt: skip
    apply_resync(w.model, stale, [], NOW)
    assert w.model.calls() == [] and w.count(CallStarted) == 1


def test_parse_duration() -> None:
    assert parse_duration("00:00:50") == 50.0
    assert parse_duration("26:01:02") == 26 * 3600 + 62
    assert parse_duration("7") == 7.0


class FakeClient:
    """A small real implementation of the one AmiClient method resync uses."""

    def __init__(self, replies: Mapping[str, list[AmiMessage]]) -> None:
        self.replies = replies
        self.asked: list[tuple[str, float]] = []

    async def send_list_action(
        self,
        action: str,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> list[AmiMessage]:
        self.asked.append((action, timeout))
        return self.replies[action]


async def test_resync_asks_both_lists_and_applies_them() -> None:
    w = World()
    w.feed_until("ami-queue-answered-call.txt", "AgentConnect")
    client = FakeClient({"CoreShowChannels": [], "QueueStatus": queue_status_from_login()})
    await resync(client, w.model, timeout=2.5, clock=lambda: NOW)
    assert client.asked == [("CoreShowChannels", 2.5), ("QueueStatus", 2.5)]
    assert w.count(CallEnded) == 1 and w.model.calls() == []
    assert len(w.model.agents()) == 3


def test_segments_helper_sees_the_queue_status_action() -> None:
    sent = b"".join(s.data for s in segments("ami-login.txt") if not s.from_asterisk)
    assert b"Action: QueueStatus" in sent


def test_a_caller_answered_while_the_lists_were_in_flight_is_not_queued_again() -> None:
    """Bug: QueueStatus listed the caller (still waiting when Asterisk built the list), the
    live QueueCallerLeave/AgentConnect were applied before the resync, and the stale entry put
    the answered call back in the queue (a second CallQueued, a phantom waiting caller)."""
    w = World()
    msgs = iter(AmiCodec().feed(from_asterisk("ami-queue-answered-call.txt")))
    for msg in msgs:
        w.translator.handle(msg)
        if msg.name == "QueueCallerJoin":
            break
    mark = w.model.resync_mark()  # the resync starts: lists requested
    for msg in msgs:
        w.translator.handle(msg)
        if msg.name == "AgentConnect":
            break
    w.take()
    listed = channel_list(
        core_show_channel(Channel="PJSIP/trunk-00000004", Uniqueid="1795413075.4",
                          Linkedid="1795413075.4", BridgeId="br-9"),
        core_show_channel(Channel="PJSIP/op101-00000005", Uniqueid="1795413076.5",
                          Linkedid="1795413075.4", BridgeId="br-9", Context="operators"),
    )  # fmt: skip
    stale_entry = AmiMessage(
        "event",
        "QueueEntry",
        {"Event": "QueueEntry", "Queue": "reception", "Position": "1", "Wait": "2",
         "Channel": "PJSIP/trunk-00000004", "Uniqueid": "1795413075.4",
         "CallerIDNum": "79161234567", "CallerIDName": "79161234567"},
    )  # fmt: skip
    apply_resync(w.model, listed, [stale_entry], NOW, mark=mark)
    assert w.count(CallQueued) == 0
    assert [c.state for c in w.model.calls()] == ["answered"]
    assert w.model.queues(NOW)["reception"].waiting == ()


@pytest.mark.parametrize("duration", ["1e300", "inf", "nan", "-5", "99999999999999:00:00"])
def test_an_absurd_channel_duration_still_adopts_the_call_starting_now(duration: str) -> None:
    """Bug: started_at = now - Duration; a Duration of 1e300 or 10**14 hours gave a start
    PostgreSQL cannot store, and the writer then dropped the whole batch of calls."""
    with pytest.raises(BadField):
        parse_duration(duration)
    w = World()
    apply_resync(w.model, channel_list(core_show_channel(Duration=duration)), [], NOW)
    assert [c.started_at for c in w.model.calls()] == [NOW] and w.count(CallStarted) == 1


def test_an_absurd_queue_wait_still_queues_the_caller_from_now() -> None:
    """Same bug through QueueEntry ``Wait``: queued_at = now - 1e300 cannot be stored."""
    w = World()
    entry = AmiMessage("event", "QueueEntry", {
        "Event": "QueueEntry", "Queue": "reception", "Position": "1", "Wait": "1e300",
        "Channel": "PJSIP/trunk-00000010", "Uniqueid": "1795413150.20",
    })  # fmt: skip
    apply_resync(w.model, channel_list(core_show_channel()), [entry], NOW)
    assert [c.queued_at for c in w.model.calls()] == [NOW]


def test_a_member_status_seen_while_the_lists_were_in_flight_is_not_overwritten() -> None:
    """Bug: QueueStatus listed op101 as free; its live QueueMemberStatus (in use), applied
    before the resync, was overwritten by the stale list, so free_agents counted a busy
    operator until its next status change."""
    w = World()
    apply_resync(w.model, channel_list(), queue_status_from_login(), NOW)
    assert w.model.free_agents("reception") == 1
    mark = w.model.resync_mark()  # the next resync starts: lists requested
    w.translator.handle(AmiMessage("event", "QueueMemberStatus", {
        "Event": "QueueMemberStatus", "Queue": "reception", "Interface": "PJSIP/op101",
        "MemberName": "Operator 101", "Status": "2", "Paused": "0", "InCall": "1",
        "Timestamp": str(NOW + 1),
    }))  # fmt: skip
    apply_resync(w.model, channel_list(), queue_status_from_login(), NOW + 2, mark=mark)
    agents = {a.interface: a for a in w.model.agents()}
    assert agents["PJSIP/op101"].status == "inuse"
    assert w.model.free_agents("reception") == 0
