"""The patient-first call: AMI ``Originate`` of the patient's number into the ARI app, and the
hand-over of the answered call's dialog to whoever holds the line.

``PatientDialer.dial`` sends ``Channel: PJSIP/<digits>@<trunk>``, ``Application: Stasis``,
``Data: <app>,campaign,<dial id>`` and waits for ``OriginateResponse``: Reason 4 answered,
3 (or 1, hung up while ringing) no answer, 5 busy, 8 congestion → failed.

``IvrSessions`` is the ``campaign_calls`` port: the voice bot (ivr plugin), on a StasisStart
with args ``campaign,<dial id>``, calls ``session(dial_id)`` and drives the returned
:class:`CampaignSession` with the patient's keys and recognised words. Nobody taking the session
within ``pickup_s`` (no voice bot enabled) is the outcome ``no_dialog`` (retried like silence).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from callserver.core.phone import mask
from callserver.errors import CallserverError
from campaigns.dialog import Dialog, Input, InputKind, Step
from campaigns.models import ClaimedCall

log = logging.getLogger(__name__)
_REASONS = {"4": "answered", "3": "no_answer", "1": "no_answer", "5": "busy", "8": "failed"}


class AmiOriginate(Protocol):
    async def originate(
        self,
        headers: Mapping[str, str | Sequence[str]],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> object: ...

    async def send_action(
        self, action: str, headers: Mapping[str, str | Sequence[str]] | None = None,
        *, timeout: float,  # noqa: ASYNC109
    ) -> object: ...  # fmt: skip


@dataclass(frozen=True)
class DialResult:
    result: str
    """answered | no_answer | busy | failed"""
    channel: str = ""


class PatientDialer:
    """Originates campaign calls. ``ring_s``: how long the patient's phone rings (seconds)."""

    def __init__(self, ami: AmiOriginate, *, app: str, ring_s: float = 30.0) -> None:
        self._ami, self._app, self._ring_s = ami, app, ring_s

    async def dial(self, call: ClaimedCall) -> DialResult:
        """Never raises for a call that could not be placed: AMI down/timeout → ``failed``."""
        s = call.settings
        headers = {
            "Channel": f"PJSIP/{call.target.phone.lstrip('+')}@{s.trunk}",
            "Application": "Stasis", "Data": f"{self._app},campaign,{call.dial_id}",
            "Timeout": str(int(self._ring_s * 1000)),
            "CallerID": f'"{s.clinic_name.replace(chr(34), "")}" <{s.caller_id}>',
            "Variable": [f"CAMPAIGN_DIAL={call.dial_id}", f"CAMPAIGN_ID={call.campaign_id}"],
        }  # fmt: skip
        try:
            reply = await self._ami.originate(headers, timeout=self._ring_s + 15.0)
        except (CallserverError, ValueError) as e:  # ValueError: text AMI cannot carry
            log.warning(
                "campaign dial %s to %s failed: %s", call.dial_id, mask(call.target.phone), e
            )
            return DialResult("failed")
        get = getattr(reply, "get", None)
        reason = str(get("Reason", "") if get else "")
        result = _REASONS.get(reason, "failed")
        return DialResult(
            result, str(get("Channel", "") or "") if get and result == "answered" else ""
        )

    def ready(self) -> bool:
        """False while AMI is not logged in: claiming then would only burn attempts. (The
        ``state`` of ``callserver.asterisk.ami_connection.AmiClient``; a client without one is
        taken as ready.)"""
        return getattr(self._ami, "state", "connected") == "connected"

    async def hangup(self, channel: str) -> None:
        """End the call (the dialog is over). A channel already gone is fine."""
        if not channel:
            return
        try:
            await self._ami.send_action("Hangup", {"Channel": channel}, timeout=5.0)
        except CallserverError as e:
            log.debug("hangup of a campaign call: %s", e)


class Conversation(Protocol):
    async def converse(self, call: ClaimedCall, channel: str, dialog: Dialog) -> Step:
        """Run the dialog on the answered line; the final step (``done``)."""
        ...


class CampaignSession:
    """One answered campaign call as the voice bot sees it: plain dicts in and out.

    A taker that said ``hangs_up=True`` in :meth:`IvrSessions.session` calls :meth:`release`
    once it is done with the line (the goodbye played, or the patient gone): only then does
    the runner hang the channel up, so the goodbye is not cut off."""

    def __init__(self, dialog: Dialog, done: asyncio.Future[Step]) -> None:
        self._dialog, self._done = dialog, done
        self.lang = dialog.facts.lang
        self.picked = asyncio.Event()
        self.released = asyncio.Event()
        self.hangs_up = False

    def start(self) -> dict[str, object]:
        return self._step_dict(self._dialog.start())

    def feed(self, kind: str, value: str = "",
             details: Mapping[str, str] | None = None) -> dict[str, object]:  # fmt: skip
        """``kind``: dtmf | text | silence | machine | hangup. Raises ValueError for others.
        ``details``: what the bot knows beyond the words (a comment's ``recording``,
        ``duration_s``, ``status``; see ``Input.details``)."""
        if kind not in ("dtmf", "text", "silence", "machine", "hangup"):
            raise ValueError(f"input kind {kind!r}")
        ik: InputKind = kind  # type: ignore[assignment]  # checked above
        extra = {str(k)[:40]: str(v)[:500] for k, v in (details or {}).items()}
        step = self._dialog.feed(Input(ik, value[:2000], extra))
        if step.done and not self._done.done():
            self._done.set_result(step)
        return self._step_dict(step)

    def release(self) -> None:
        """The taker is done with the line (idempotent)."""
        self.released.set()

    def _step_dict(self, step: Step) -> dict[str, object]:
        """``say``: texts to speak in order; ``expects``: see ``Dialog.expects``."""
        return {"say": list(step.say), "done": step.done, "outcome": step.outcome,
                "data": step.data, "expects": self._dialog.expects}  # fmt: skip


class IvrSessions:
    """The ``campaign_calls`` port and the production :class:`Conversation`."""

    def __init__(self, *, pickup_s: float = 10.0, talk_s: float = 300.0) -> None:
        self._pending: dict[int, CampaignSession] = {}
        self._arrived: dict[int, asyncio.Event] = {}
        self._pickup_s, self._talk_s = pickup_s, talk_s

    def session(self, dial_id: int, *, hangs_up: bool = False) -> CampaignSession | None:
        """The session of an answered campaign call (once; None if unknown or already taken).
        ``hangs_up``: the taker calls ``release()`` when done with the line (see the class)."""
        session = self._pending.pop(dial_id, None)
        if session is not None:
            session.hangs_up = hangs_up
            session.picked.set()
        return session

    async def take(
        self, dial_id: int, *, within: float, hangs_up: bool = False
    ) -> CampaignSession | None:
        """``session()``, waiting up to ``within`` seconds for the call to be handed over: the
        patient's StasisStart (ARI) may arrive before the runner has read the OriginateResponse
        (AMI) that registers the session."""
        session = self.session(dial_id, hangs_up=hangs_up)
        if session is not None or within <= 0:
            return session
        arrived = self._arrived.setdefault(dial_id, asyncio.Event())
        try:
            async with asyncio.timeout(within):
                await arrived.wait()
        except TimeoutError:
            return None
        finally:
            self._arrived.pop(dial_id, None)
        return self.session(dial_id, hangs_up=hangs_up)

    async def converse(self, call: ClaimedCall, channel: str, dialog: Dialog) -> Step:
        done: asyncio.Future[Step] = asyncio.get_running_loop().create_future()
        session = self._pending[call.dial_id] = CampaignSession(dialog, done)
        arrived = self._arrived.get(call.dial_id)
        if arrived is not None:
            arrived.set()
        try:
            async with asyncio.timeout(self._pickup_s):
                await session.picked.wait()
        except TimeoutError:
            self._pending.pop(call.dial_id, None)
            return Step((), done=True, outcome="no_dialog")
        try:
            async with asyncio.timeout(self._talk_s):
                step = await done
                if session.hangs_up:
                    await session.released.wait()
                return step
        except TimeoutError:
            return done.result() if done.done() else Step((), done=True, outcome="no_response")
