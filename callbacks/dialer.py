"""Agent-first dialing over AMI: ring the operator, then the patient.

``Originate`` rings the operator's interface (``PJSIP/op101``) for ``operator_ring_s``; when the
operator answers, that leg continues in ``dial_context`` at ``Exten`` = the patient's number,
where the dialplan dials the patient with the clinic's caller ID (``CALLBACK_CID``) — see
``callbacks/README.md`` for the snippet. The operator's leg is the first channel, so the call's
Linkedid is the ``Uniqueid`` of the OriginateResponse; the patient leg's result is the
``DIALSTATUS`` the dialplan's ``Dial`` leaves on it, seen on the bus when the call ends.

Result per attempt: ``answered`` · ``no_answer`` · ``busy`` · ``failed`` (congestion, channel
unavailable, the operator hung up first) · ``operator_no_answer`` (the first leg failed:
Reasons 0/1/3/5/8) · ``not_dialed`` (AMI down: nothing rang).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from callserver.asterisk.errors import AmiError
from callserver.core.events import CallEnded, DomainEvent
from callserver.core.phone import mask
from callserver.plugin_api import AmiActions

log = logging.getLogger(__name__)

DIALSTATUS = {
    "ANSWER": "answered",
    "NOANSWER": "no_answer",
    "BUSY": "busy",
    "CONGESTION": "failed",
    "CHANUNAVAIL": "failed",
    "CANCEL": "failed",
    "DONTCALL": "failed",
    "TORTURE": "failed",
    "INVALIDARGS": "failed",
}
RECENT_MAX = 2_000


@dataclass(frozen=True)
class DialSettings:
    dial_context: str
    operator_ring_s: float
    call_max_s: float


@dataclass(frozen=True)
class DialOutcome:
    result: str
    cause: str = ""
    uniqueid: str = ""


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def _callerid(name: str, number: str) -> str:
    clean = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>\r\n')[:40]
    return f'"{clean}" <{_digits(number)}>'


class CallEnds:
    """Bus subscriber: futures resolved by the ``CallEnded`` of a Linkedid (recent ends are
    kept, so an end that arrives before anyone waits is not lost)."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[CallEnded]] = {}
        self._recent: OrderedDict[str, CallEnded] = OrderedDict()

    def submit(self, event: DomainEvent) -> None:
        if not isinstance(event, CallEnded):
            return
        fut = self._waiting.pop(event.call.id, None)
        if fut is not None and not fut.done():
            fut.set_result(event)
            return
        self._recent[event.call.id] = event
        if len(self._recent) > RECENT_MAX:
            self._recent.popitem(last=False)

    async def wait(self, linkedid: str, timeout: float) -> CallEnded | None:  # noqa: ASYNC109
        """The call's CallEnded, or None after ``timeout`` seconds."""
        done = self._recent.pop(linkedid, None)
        if done is not None:
            return done
        fut: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()
        self._waiting[linkedid] = fut
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(linkedid, None)


def result_of(ended: CallEnded | None) -> DialOutcome:
    """The patient leg's result from the call's end (``DIALSTATUS`` on the operator leg)."""
    if ended is None:
        return DialOutcome("failed", "call did not end within call_max_s")
    status = dict(ended.call.variables).get("DIALSTATUS", "")
    result = DIALSTATUS.get(status.upper(), "failed")
    return DialOutcome(result, status or ended.cause or ended.call.hangup_cause, ended.call.id)


class AgentFirstDialer:
    """One Originate per attempt; ``on_originate`` (tests, the benchmark) sees each action
    leave with its wall-clock time."""

    def __init__(self, ami: AmiActions, ends: CallEnds, settings: DialSettings) -> None:
        self._ami = ami
        self._ends = ends
        self._settings = settings
        self.on_originate: Callable[[str, float], None] | None = None
        self.originated = 0
        self.ami_errors = 0

    async def originate(
        self, *, attempt_id: str, operator: str, phone: str, caller_id: str, label: str,
        on_uniqueid: Callable[[str], Awaitable[None]] | None = None, ring_s: float | None = None,
    ) -> DialOutcome:  # fmt: skip
        """Dial ``operator`` then ``phone``; waits for the end of the call (≤ ring + call_max_s).
        Never raises for Asterisk trouble: it is a result."""
        s = self._settings
        ring = ring_s or s.operator_ring_s
        headers: Mapping[str, str | list[str]] = {
            "Channel": operator,
            "Context": s.dial_context,
            "Exten": _digits(phone),
            "Priority": "1",
            "Timeout": str(int(ring * 1000)),
            "CallerID": _callerid(label, phone),
            "Variable": [f"CALLBACK_ATTEMPT={attempt_id}", f"CALLBACK_CID={_digits(caller_id)}"],
        }
        return await self._send(headers, ring, attempt_id, phone, on_uniqueid)

    async def originate_slot(
        self, *, attempt_id: str, channel: str, phone: str, caller_id: str, label: str,
        variables: Mapping[str, str], wait_s: float,
        on_uniqueid: Callable[[str], Awaitable[None]] | None = None,
    ) -> DialOutcome:  # fmt: skip
        """Virtual hold: Originate the placeholder ``channel`` (``Local/…@callbacks-vhold-slot``,
        which queues at the caller's place with ``variables``) for up to ``wait_s``; once a
        member answers, its ``;1`` half continues in ``dial_context`` at the patient's digits.
        Same results as ``originate`` (a slot nobody answered: ``operator_no_answer``)."""
        headers: Mapping[str, str | list[str]] = {
            "Channel": channel,
            "Context": self._settings.dial_context,
            "Exten": _digits(phone),
            "Priority": "1",
            "Timeout": str(int(wait_s * 1000)),
            "CallerID": _callerid(label, phone),
            "Variable": [f"CALLBACK_ATTEMPT={attempt_id}", f"CALLBACK_CID={_digits(caller_id)}",
                         *(f"{k}={v}" for k, v in variables.items())],
        }  # fmt: skip
        return await self._send(headers, wait_s, attempt_id, phone, on_uniqueid)

    async def _send(
        self, headers: Mapping[str, str | list[str]], ring: float, attempt_id: str, phone: str,
        on_uniqueid: Callable[[str], Awaitable[None]] | None,
    ) -> DialOutcome:  # fmt: skip
        if self.on_originate is not None:
            self.on_originate(attempt_id, time.time())
        self.originated += 1
        try:
            response = await self._ami.originate(headers, timeout=ring + 10.0)
        except AmiError as exc:
            self.ami_errors += 1
            log.warning("callback %s to %s: originate failed: %s", attempt_id, mask(phone), exc)
            return DialOutcome("not_dialed", exc.error_id)
        fields = response.fields
        if str(fields.get("Response", "")).lower() != "success":
            return DialOutcome("operator_no_answer", f"reason {fields.get('Reason', '')}")
        uniqueid = str(fields.get("Uniqueid", ""))
        if on_uniqueid is not None:
            await on_uniqueid(uniqueid)
        return await self.wait_end(uniqueid)

    async def wait_end(self, uniqueid: str) -> DialOutcome:
        """The result of an answered attempt's call (also used to adopt a call after a
        restart)."""
        return result_of(await self._ends.wait(uniqueid, self._settings.call_max_s))


PATIENT_REASONS = {"3": "no_answer", "5": "busy"}
"""OriginateResponse Reason of the patient's leg; anything else (0, 1, 8 …) is ``failed``."""


class PatientFirstDialer:
    """Patient first: ``Originate`` the patient's number (``trunk_channel``) into
    ``patient_first_context`` with ``CALLBACK_AGENT`` = the operator the scheduler picked. The
    dialplan plays "the clinic is calling you back, press 1" and on 1 dials the operator.

    Result: the patient's leg failed → ``no_answer`` (Reason 3) / ``busy`` (5) / ``failed``;
    answered → the ``DIALSTATUS`` of the operator ``Dial`` when the call ends: ``ANSWER`` →
    ``answered``; the operator did not pick up → ``operator_no_answer``; no ``Dial`` at all (the
    patient did not press 1) → ``no_answer``."""

    def __init__(self, ami: AmiActions, ends: CallEnds, settings: DialSettings,
                 context: str, trunk_channel: str, patient_ring_s: float) -> None:  # fmt: skip
        self._ami, self._ends, self._settings = ami, ends, settings
        self._context, self._trunk, self._ring_s = context, trunk_channel, patient_ring_s
        self.on_originate: Callable[[str, float], None] | None = None
        self.originated = 0

    async def originate(
        self, *, attempt_id: str, operator: str, phone: str, caller_id: str, label: str,
        on_uniqueid: Callable[[str], Awaitable[None]] | None = None, ring_s: float | None = None,
    ) -> DialOutcome:  # fmt: skip
        """Dial ``phone`` then (after the IVR) ``operator``; never raises for Asterisk trouble."""
        headers: Mapping[str, str | list[str]] = {
            "Channel": self._trunk.replace("{number}", _digits(phone)),
            "Context": self._context,
            "Exten": "s",
            "Priority": "1",
            "Timeout": str(int(self._ring_s * 1000)),
            "CallerID": _callerid("", caller_id),  # the patient sees the clinic
            "Variable": [f"CALLBACK_ATTEMPT={attempt_id}", f"CALLBACK_AGENT={operator}",
                         f"CALLBACK_RING={int(ring_s or self._settings.operator_ring_s)}"],
        }  # fmt: skip
        if self.on_originate is not None:
            self.on_originate(attempt_id, time.time())
        self.originated += 1
        try:
            response = await self._ami.originate(headers, timeout=self._ring_s + 10.0)
        except AmiError as exc:
            log.warning("callback %s to %s: originate failed: %s", attempt_id, mask(phone), exc)
            return DialOutcome("not_dialed", exc.error_id)
        fields = response.fields
        if str(fields.get("Response", "")).lower() != "success":
            reason = str(fields.get("Reason", ""))
            return DialOutcome(PATIENT_REASONS.get(reason, "failed"), f"reason {reason}")
        uniqueid = str(fields.get("Uniqueid", ""))
        if on_uniqueid is not None:
            await on_uniqueid(uniqueid)
        return await self.wait_end(uniqueid)

    async def wait_end(self, uniqueid: str) -> DialOutcome:
        ended = await self._ends.wait(uniqueid, self._settings.call_max_s)
        if ended is None:
            return DialOutcome("failed", "call did not end within call_max_s")
        status = dict(ended.call.variables).get("DIALSTATUS", "").upper()
        if not status:
            return DialOutcome("no_answer", "patient did not confirm", ended.call.id)
        result = "answered" if status == "ANSWER" else "operator_no_answer"
        return DialOutcome(result, status, ended.call.id)
