"""AMI events → live model.

``AmiTranslator.handle(msg)`` is on the hot path (≥ 150,000 events/s together with the codec; a
real queued call is ~180 events, most of them VarSet/Newexten). So: one dict lookup on the event
name, uninteresting events return at once, VarSet is filtered on the variable name before anything
else is read, and nothing is allocated for an ignored event.

Mapping (fields as Asterisk 22 sends them, see ``tests/fixtures/asterisk/``):

=====================  =====================================================================
Newchannel             ``channel_created`` (Uniqueid, Linkedid, Channel, CallerID, Context)
Newstate               ``channel_state`` (ChannelStateDesc)
NewCallerid            ``caller_id_changed``
VarSet                 ``variable_set`` for DID, AD_SOURCE, CAMPAIGN, DIALSTATUS,
                       MIXMONITOR_FILENAME (the recording, for the desk), ROUTE_* (inherited
                       ``_``/``__`` prefixes stripped); every other variable is ignored
Hangup                 ``channel_hungup`` (Cause-txt)
DialEnd                ``dial_ended`` (DestUniqueid, DialStatus)
QueueCallerJoin        ``caller_joined_queue`` (Queue, Position)
QueueCallerLeave       ``caller_left_queue``
QueueCallerAbandon     ``caller_abandoned`` (Position, HoldTime: seconds waited)
AgentCalled            ``agent_called`` (Interface, MemberName, DestUniqueid, DestChannel)
AgentRingNoAnswer      ``agent_ring_no_answer`` (RingTime: **milliseconds**, app_queue ``rna``)
AgentConnect           ``agent_connected`` (HoldTime: seconds waited, RingTime: seconds)
AgentComplete          ``agent_completed`` (TalkTime seconds, Reason caller/agent/transfer);
                       without the caller's fields (Asterisk sends some under load) the call is
                       found from DestUniqueid, counted in ``agent_complete_without_caller``
Bridge*, Hold, Unhold, BlindTransfer, AttendedTransfer: see ``ami_flows``
QueueMemberStatus      ``member_status`` (Status is the numeric device state)
QueueMemberAdded       ``member_status``
QueueMemberRemoved     ``member_removed``
QueueMemberPause       ``member_paused`` (Paused, PausedReason)
=====================  =====================================================================

Times come from the event's ``Timestamp`` header (Asterisk's clock, ``timestampevents = yes``);
an event without one gets the last time seen, or this host's clock when none was ever seen.
Bad or missing fields never raise: the event is counted in ``bad``, one line is logged (control
characters escaped, phone numbers masked) and the stream goes on. DialBegin is not needed:
AgentCalled already names the agent leg.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable

from callserver.asterisk.ami_codec import AmiMessage, Fields
from callserver.asterisk.ami_filters import Filter, event_filters
from callserver.asterisk.ami_flows import FlowHandlers
from callserver.core.model import LiveModel, MemberInfo
from callserver.core.phone import mask
from callserver.core.text import clean_text
from callserver.logs import escape_control

log = logging.getLogger(__name__)

DEVICE_STATUS = {
    "0": "unknown",
    "1": "not_inuse",
    "2": "inuse",
    "3": "busy",
    "4": "invalid",
    "5": "unavailable",
    "6": "ringing",
    "7": "ringinuse",
    "8": "onhold",
}
"""Asterisk ``enum ast_device_state`` as sent in QueueMemberStatus/QueueMember ``Status``."""
DEFAULT_VARIABLES = ("DID", "AD_SOURCE", "CAMPAIGN", "DIALSTATUS", "MIXMONITOR_FILENAME")
DEFAULT_PREFIXES = ("ROUTE_",)
NO_CALLER_ID = frozenset({"<unknown>", "unknown"})
MAX_TIMESTAMP = 253402300800.0
"""Year 10000: a ``Timestamp`` at or beyond it (or NaN, or negative) is not a time PostgreSQL
can store; such a value would make the writer reject a whole batch of calls."""
MAX_INT4 = 2**31 - 1
MAX_FIELD = 256
"""Characters kept of an AMI field (ids, names, causes); longer text is cut."""
MAX_CALLER_NAME = 200
MAX_CALLER_NUM = 80
MAX_VALUE = 1000
"""Characters kept of a kept channel variable's value (``ROUTE_REASON`` lists reasons)."""
PARTIAL_LOG_INTERVAL = 60.0
"""Seconds between two log lines about AgentComplete events without the caller's fields."""


class BadField(ValueError):
    """A required AMI field is missing or malformed (internal: caught in ``handle``)."""


def text(f: Fields, key: str, limit: int = MAX_FIELD) -> str:
    """The first value of header ``key``, or '' when absent; passed through ``clean_text``
    (no NUL, no lone surrogate, at most ``limit`` characters): Asterisk relays caller IDs and
    causes it got from the carrier, and PostgreSQL refuses NUL."""
    value = f.get(key)
    if value is None:
        return ""
    return clean_text(value[0] if isinstance(value, list) else value, limit)


def need(f: Fields, key: str) -> str:
    value = text(f, key)
    if not value:
        raise BadField(key)
    return value


def number(f: Fields, key: str) -> float | None:
    """Header ``key`` as a float; None when absent; BadField when not a finite number (NaN
    or infinity cannot be stored: PostgreSQL's jsonb refuses them)."""
    value = text(f, key)
    if not value:
        return None
    try:
        result = float(value)
    except ValueError:
        raise BadField(key) from None
    if not math.isfinite(result):
        raise BadField(key)
    return result


def count(f: Fields, key: str) -> int:
    """Header ``key`` as a whole number 0..2**31-1 (a PostgreSQL ``integer``); 0 when absent;
    BadField otherwise."""
    value = number(f, key) or 0.0
    if not 0 <= value <= MAX_INT4:
        raise BadField(key)
    return int(value)


def caller_id(value: str) -> str:
    return "" if value in NO_CALLER_ID else value


def member_info(
    f: Fields, interface_key: str = "Interface", name_key: str = "MemberName"
) -> MemberInfo:
    """A MemberInfo from QueueMemberStatus/Added (``Interface``/``MemberName``) or from the
    QueueStatus list's QueueMember (``Location``/``Name``)."""
    return MemberInfo(
        queue=need(f, "Queue"),
        interface=need(f, interface_key),
        name=text(f, name_key),
        status=DEVICE_STATUS.get(text(f, "Status"), "unknown"),
        paused=text(f, "Paused") == "1",
        paused_reason=text(f, "PausedReason"),
        in_call=text(f, "InCall") == "1",
        calls_taken=int(number(f, "CallsTaken") or 0),
        last_call=number(f, "LastCall") or 0.0,
    )


class AmiTranslator:
    """Feeds AMI events to a ``LiveModel``. ``variables``/``prefixes``: channel variables kept
    on the call (besides DID and AD_SOURCE, which are always kept)."""

    def __init__(
        self,
        model: LiveModel,
        *,
        variables: Iterable[str] = DEFAULT_VARIABLES,
        prefixes: Iterable[str] = DEFAULT_PREFIXES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._model = model
        self._clock = clock
        self._variables = frozenset(variables) | {"DID", "AD_SOURCE"}
        self._prefixes = tuple(prefixes)
        self._last_at = 0.0
        self.bad = 0
        """Events dropped because a field was missing or malformed."""
        self.agent_complete_without_caller = 0
        """AgentComplete events without the caller's fields (handled through the agent leg)."""
        self._partial_unlogged = 0
        self._partial_logged_at: float | None = None
        self._handlers: dict[str, Callable[[AmiMessage], None]] = {
            "VarSet": self._varset,
            "Newchannel": self._newchannel,
            "Newstate": self._newstate,
            "NewCallerid": self._newcallerid,
            "Hangup": self._hangup,
            "DialEnd": self._dialend,
            "QueueCallerJoin": self._join,
            "QueueCallerLeave": self._leave,
            "QueueCallerAbandon": self._abandon,
            "AgentCalled": self._agent_called,
            "AgentRingNoAnswer": self._ring_no_answer,
            "AgentConnect": self._agent_connect,
            "AgentComplete": self._agent_complete,
            "QueueMemberStatus": self._member_status,
            "QueueMemberAdded": self._member_status,
            "QueueMemberRemoved": self._member_removed,
            "QueueMemberPause": self._member_pause,
            **FlowHandlers(model, self._at, need, text).handlers(),
        }

    def event_filters(self, also: Iterable[str] = ()) -> list[Filter]:
        """AMI ``Filter`` actions that keep from Asterisk what this translator ignores
        (``ami_filters``); ``also``: more events someone else reads."""
        return event_filters([*self._handlers, *also], self._variables, self._prefixes)

    def handle(self, msg: AmiMessage) -> None:
        """Apply one AMI message to the model. Never raises (bad events are logged, counted)."""
        handler = self._handlers.get(msg.name)
        if handler is None or msg.kind != "event":
            return
        try:
            handler(msg)
        except BadField as exc:
            self._bad(msg, f"missing or malformed field {exc.args[0]}")
        except Exception as exc:  # the AMI read loop must survive any single event
            self._bad(msg, f"{type(exc).__name__}: {exc}")

    def _bad(self, msg: AmiMessage, problem: str) -> None:
        self.bad += 1
        log.warning(
            "AMI %s ignored: %s (channel %s, uniqueid %s, caller %s)",
            escape_control(msg.name[:60]),
            escape_control(problem[:200]),
            escape_control(text(msg.fields, "Channel")[:120]),
            escape_control(text(msg.fields, "Uniqueid")[:40]),
            mask(text(msg.fields, "CallerIDNum")),
        )

    def _at(self, f: Fields) -> float:
        value = f.get("Timestamp")
        if not isinstance(value, str):
            return self._fallback_at()
        try:
            at = float(value)
        except ValueError:
            return self._fallback_at()
        if not 0.0 <= at < MAX_TIMESTAMP:  # also false for NaN
            return self._fallback_at()
        self._last_at = at
        return at

    def _fallback_at(self) -> float:
        """No usable ``Timestamp`` (``timestampevents = no`` is Asterisk's default): the last
        one seen, or this host's clock (POSIX seconds) while none has been seen."""
        return self._last_at or self._clock()

    # ---- channels ---------------------------------------------------------------------------

    def _varset(self, msg: AmiMessage) -> None:
        # Most events of a call are VarSets we do not want: read the variable name straight
        # from the raw block, and split the headers only for the few we keep.
        raw = msg.raw
        if raw:
            start = raw.find("\nVariable: ")
            if start < 0:
                return
            start += 11
            end = raw.find("\n", start)
            name = raw[start:end] if end >= 0 else raw[start:]
        else:
            value = msg.fields.get("Variable")
            if not isinstance(value, str):
                return
            name = value
        if name[:1] == "_":
            name = name.lstrip("_")
        if name not in self._variables and not name.startswith(self._prefixes):
            return
        f = msg.fields
        value = text(f, "Value", MAX_VALUE)
        self._model.variable_set(need(f, "Uniqueid"), clean_text(name, 80), value, at=self._at(f))

    def _newchannel(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.channel_created(
            need(f, "Uniqueid"),
            text(f, "Linkedid"),
            need(f, "Channel"),
            caller=caller_id(text(f, "CallerIDNum", MAX_CALLER_NUM)),
            caller_name=caller_id(text(f, "CallerIDName", MAX_CALLER_NAME)),
            context=text(f, "Context"),
            state=text(f, "ChannelStateDesc"),
            at=self._at(f),
        )

    def _newstate(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.channel_state(need(f, "Uniqueid"), text(f, "ChannelStateDesc"), at=self._at(f))

    def _newcallerid(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.caller_id_changed(
            need(f, "Uniqueid"),
            caller_id(text(f, "CallerIDNum", MAX_CALLER_NUM)),
            caller_id(text(f, "CallerIDName", MAX_CALLER_NAME)),
            at=self._at(f),
        )

    def _hangup(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.channel_hungup(need(f, "Uniqueid"), cause=text(f, "Cause-txt"), at=self._at(f))

    def _dialend(self, msg: AmiMessage) -> None:
        f = msg.fields
        dest = text(f, "DestUniqueid")
        if dest:
            self._model.dial_ended(dest, text(f, "DialStatus"), at=self._at(f))

    # ---- queue ------------------------------------------------------------------------------

    def _join(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.caller_joined_queue(
            need(f, "Uniqueid"),
            text(f, "Linkedid"),
            need(f, "Queue"),
            count(f, "Position"),
            channel=text(f, "Channel"),
            caller=caller_id(text(f, "CallerIDNum", MAX_CALLER_NUM)),
            caller_name=caller_id(text(f, "CallerIDName", MAX_CALLER_NAME)),
            at=self._at(f),
        )

    def _leave(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.caller_left_queue(need(f, "Uniqueid"), need(f, "Queue"), at=self._at(f))

    def _abandon(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.caller_abandoned(
            need(f, "Uniqueid"),
            text(f, "Queue"),
            position=count(f, "Position"),
            wait_seconds=number(f, "HoldTime"),
            at=self._at(f),
        )

    def _agent_called(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.agent_called(
            need(f, "Uniqueid"),
            text(f, "Queue"),
            need(f, "Interface"),
            member_name=text(f, "MemberName"),
            agent_uniqueid=text(f, "DestUniqueid"),
            agent_channel=text(f, "DestChannel"),
            at=self._at(f),
        )

    def _ring_no_answer(self, msg: AmiMessage) -> None:
        f = msg.fields
        ring_ms = number(f, "RingTime")
        self._model.agent_ring_no_answer(
            need(f, "Uniqueid"),
            text(f, "Queue"),
            need(f, "Interface"),
            ring_seconds=None if ring_ms is None else ring_ms / 1000.0,
            at=self._at(f),
        )

    def _agent_connect(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.agent_connected(
            need(f, "Uniqueid"),
            text(f, "Queue"),
            need(f, "Interface"),
            member_name=text(f, "MemberName"),
            agent_uniqueid=text(f, "DestUniqueid"),
            wait_seconds=number(f, "HoldTime"),
            ring_seconds=number(f, "RingTime"),
            at=self._at(f),
        )

    def _agent_complete(self, msg: AmiMessage) -> None:
        f = msg.fields
        uniqueid, agent_uniqueid = text(f, "Uniqueid"), text(f, "DestUniqueid")
        if not uniqueid:
            self._without_caller()
        self._model.agent_completed(
            uniqueid,
            text(f, "Queue"),
            need(f, "Interface"),
            talk_seconds=number(f, "TalkTime"),
            reason=text(f, "Reason"),
            agent_uniqueid=agent_uniqueid,
            at=self._at(f),
        )

    def _without_caller(self) -> None:
        """Count an AgentComplete without the caller's fields; log at most once a minute."""
        self.agent_complete_without_caller += 1
        self._partial_unlogged += 1
        now = self._clock()
        last = self._partial_logged_at
        if last is None or now - last >= PARTIAL_LOG_INTERVAL or now < last:
            log.info(
                "AMI AgentComplete without the caller's fields: %d since the last report "
                "(%d in all); the call is taken from the agent's channel",
                self._partial_unlogged,
                self.agent_complete_without_caller,
            )
            self._partial_logged_at, self._partial_unlogged = now, 0

    # ---- members ----------------------------------------------------------------------------

    def _member_status(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.member_status(member_info(f), at=self._at(f))

    def _member_removed(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.member_removed(need(f, "Queue"), need(f, "Interface"), at=self._at(f))

    def _member_pause(self, msg: AmiMessage) -> None:
        f = msg.fields
        self._model.member_paused(
            text(f, "Queue"),
            need(f, "Interface"),
            text(f, "Paused") == "1",
            reason=text(f, "PausedReason"),
            at=self._at(f),
        )
