"""Resynchronise the live model from Asterisk after every (re)login.

``resync(client, model, store=…)`` reads the calls PostgreSQL holds as open (``OpenCallsStore``),
asks for ``CoreShowChannels`` (every live channel) and ``QueueStatus`` (every queue's members and
waiting callers) and hands all three to ``LiveModel.resync``: calls that ended while we were
disconnected (or down: ``kill -9``) are closed exactly once and emitted as CallEnded, live
channels we missed are created (a stored call keeps its identity and facts), nothing is
duplicated, members' states are refreshed. ``apply_resync`` is the pure half (AMI event lists
in, model updated), tested without sockets.

Field names are Asterisk 22's: CoreShowChannel (Channel, Uniqueid, Linkedid, CallerIDNum,
CallerIDName, Context, Exten, ChannelStateDesc, BridgeId, Application, Duration ``HH:MM:SS``),
QueueEntry (Queue, Position, Channel, Uniqueid, CallerIDNum, CallerIDName, Wait seconds),
QueueMember (Queue, Name, Location, Status, Paused, PausedReason, InCall, CallsTaken, LastCall).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from callserver.asterisk.ami_codec import AmiMessage
from callserver.asterisk.ami_translate import (
    MAX_CALLER_NAME,
    MAX_CALLER_NUM,
    BadField,
    caller_id,
    count,
    member_info,
    need,
    text,
)
from callserver.core.model import ChannelInfo, LiveModel, MemberInfo, QueueEntryInfo, StoredCall
from callserver.errors import CallserverError
from callserver.logs import escape_control

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
"""Seconds each list action (CoreShowChannels, QueueStatus) may take."""


class ListActionClient(Protocol):
    """The part of ``AmiClient`` resync needs."""

    async def send_list_action(
        self,
        action: str,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        *,
        timeout: float,  # noqa: ASYNC109 - per-action deadline, as AmiClient's
    ) -> list[AmiMessage]: ...


class OpenCallsStore(Protocol):
    """Where the calls still open (no end recorded) are kept: ``callserver.store.open_calls.
    PgOpenCalls``. Raises a ``CallserverError`` (e.g. ``StoreUnavailable``) when it cannot
    answer; ``open_calls`` is bounded by the store's own deadline."""

    async def open_calls(self) -> Sequence[StoredCall]: ...


MAX_DURATION = 366 * 86400.0
"""Seconds: a longer channel Duration is not believed (the start would be unstorable)."""


def parse_duration(value: str) -> float:
    """``HH:MM:SS`` (CoreShowChannel ``Duration``; hours may exceed 24) or plain seconds →
    seconds. Raises BadField when it is neither, or not within 0..``MAX_DURATION``."""
    try:
        if ":" not in value:
            seconds = float(value)
        else:
            seconds = 0.0
            for part in value.split(":"):
                seconds = seconds * 60 + int(part)
    except ValueError:
        raise BadField("Duration") from None
    if not 0.0 <= seconds <= MAX_DURATION:  # also false for NaN
        raise BadField("Duration")
    return seconds


def _duration(value: str) -> float:
    """A channel with an unusable Duration is still adopted, as starting now."""
    try:
        return parse_duration(value) if value else 0.0
    except BadField:
        return 0.0


def channel_info(msg: AmiMessage) -> ChannelInfo:
    f = msg.fields
    return ChannelInfo(
        uniqueid=need(f, "Uniqueid"),
        linkedid=text(f, "Linkedid"),
        channel=need(f, "Channel"),
        caller=caller_id(text(f, "CallerIDNum", MAX_CALLER_NUM)),
        caller_name=caller_id(text(f, "CallerIDName", MAX_CALLER_NAME)),
        context=text(f, "Context"),
        exten=text(f, "Exten"),
        state=text(f, "ChannelStateDesc"),
        bridge_id=text(f, "BridgeId"),
        application=text(f, "Application"),
        duration=_duration(text(f, "Duration")),
    )


def entry_info(msg: AmiMessage) -> QueueEntryInfo:
    f = msg.fields
    return QueueEntryInfo(
        queue=need(f, "Queue"),
        uniqueid=need(f, "Uniqueid"),
        channel=text(f, "Channel"),
        position=count(f, "Position"),
        wait=_duration(text(f, "Wait")),
        caller=caller_id(text(f, "CallerIDNum", MAX_CALLER_NUM)),
        caller_name=caller_id(text(f, "CallerIDName", MAX_CALLER_NAME)),
    )


def _parse_lists(
    channel_events: Sequence[AmiMessage], queue_events: Sequence[AmiMessage]
) -> tuple[list[ChannelInfo], list[QueueEntryInfo], list[MemberInfo]]:
    channels: list[ChannelInfo] = []
    entries: list[QueueEntryInfo] = []
    members: list[MemberInfo] = []
    for msg in (*channel_events, *queue_events):
        try:
            if msg.name == "CoreShowChannel":
                channels.append(channel_info(msg))
            elif msg.name == "QueueEntry":
                entries.append(entry_info(msg))
            elif msg.name == "QueueMember":
                members.append(member_info(msg.fields, "Location", "Name"))
        except BadField as exc:
            log.warning(
                "resync: %s without a usable %s ignored (channel %s)",
                escape_control(msg.name[:60]),
                exc.args[0],
                escape_control(text(msg.fields, "Channel")[:120]),
            )
    return channels, entries, members


def apply_resync(
    model: LiveModel,
    channel_events: Sequence[AmiMessage],
    queue_events: Sequence[AmiMessage],
    now: float,
    *,
    mark: int | None = None,
    stored: Sequence[StoredCall] = (),
) -> None:
    """Parse the two lists' events and resync ``model`` at ``now`` (POSIX seconds).

    ``mark``: ``model.resync_mark()`` taken before the lists were requested (legs and queue
    entries the model learnt after it are kept); ``stored``: the calls PostgreSQL holds as open
    (restored when listed, closed once when not). Malformed items are logged and skipped.
    """
    channels, entries, members = _parse_lists(channel_events, queue_events)
    model.resync(channels, entries, members, now, mark=mark, stored=stored)


async def resync(
    client: ListActionClient,
    model: LiveModel,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - per-action deadline
    clock: Callable[[], float] = time.time,
    store: OpenCallsStore | None = None,
) -> None:
    """Read the open calls from ``store``, fetch CoreShowChannels and QueueStatus and resync
    ``model``.

    ``clock`` gives ``now`` in POSIX seconds: it must agree with Asterisk's event ``Timestamp``
    clock (same host or NTP), since closed calls' talk time and adopted calls' start times are
    measured against it. Each list action has ``timeout`` seconds; errors of the client
    (``AmiTimeout``, ``AmiConnectionError``, ``AmiActionError``) propagate and leave the model
    untouched. A store that cannot answer is logged and the resync goes on with the lists
    alone (the writer's merge still keeps stored facts); its stale calls are closed at a later
    resync.
    """
    mark = model.resync_mark()
    stored = await _open_calls(store)
    channel_events = await client.send_list_action("CoreShowChannels", timeout=timeout)
    queue_events = await client.send_list_action("QueueStatus", timeout=timeout)
    apply_resync(model, channel_events, queue_events, clock(), mark=mark, stored=stored)
    log.info(
        "AMI resync: %d channels, %d queue items, %d stored open calls, %d live calls",
        len(channel_events),
        len(queue_events),
        len(stored),
        len(model),
    )


async def _open_calls(store: OpenCallsStore | None) -> Sequence[StoredCall]:
    if store is None:
        return ()
    try:
        return await store.open_calls()
    except CallserverError as exc:
        log.warning("resync without the stored open calls (%s): facts kept by the writer", exc)
        return ()
