"""Bot outcomes through the other domains' ports (declared here as our own Protocols).

* callback → ``callback_jobs.create_job`` (callbacks plugin) when some plugin provides it, else
  ``crm_requests.request_callback`` (the CRM's outbox);
* appointment request → ``crm_requests.request_appointment``.

The caller's intent and words go into the comment (cut to ``MAX_COMMENT`` characters). A caller
without a usable number (anonymous) gets no callback: logged, nothing queued.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from callserver.core.phone import mask, try_normalize
from ivr.models import CreateCallbackJob, SendAppointmentRequest
from ivr.session import CallInfo

log = logging.getLogger(__name__)
MAX_COMMENT = 600
SOURCE = "voice_bot"


class CallbackJobs(Protocol):
    async def create_job(self, *, phone: str, reason: str, source: str = "", queue: str = "",
                         call_id: str = "", patient_id: str = "", comment: str = "",
                         due_at: float | None = None) -> str: ...  # fmt: skip


class CrmRequests(Protocol):
    async def request_callback(self, *, phone: str, request_id: str, reason: str = "missed_call",
                               patient_id: str = "", call_id: str = "", comment: str = "",
                               due_at: datetime | None = None) -> None: ...  # fmt: skip

    async def request_appointment(self, *, phone: str, full_name: str = "", patient_id: str = "",
                                  call_id: str = "", comment: str = "",
                                  preferred_time: str = "") -> None: ...  # fmt: skip


def comment(intent: str, words: tuple[str, ...]) -> str:
    """``voice bot: intent=book; said: "…" | "…"`` (bounded)."""
    said = " | ".join(f'"{w}"' for w in words)
    return f"voice bot: intent={intent}; said: {said}"[:MAX_COMMENT]


class PortOutcomes:
    """``ivr.session.Outcomes`` over the ports; ``created`` counts outcomes recorded by kind."""

    def __init__(self, crm: CrmRequests, jobs: CallbackJobs | None = None) -> None:
        self._crm, self._jobs = crm, jobs
        self.created: dict[str, int] = {"callback": 0, "appointment": 0, "skipped": 0}

    def _phone(self, call: CallInfo) -> str:
        phone = try_normalize(call.caller)
        if not phone or not phone.lstrip("+").isdigit():
            self.created["skipped"] += 1
            log.warning("ivr: caller %s has no usable number: no callback queued",
                        mask(call.caller))
            return ""
        return phone

    async def callback(self, call: CallInfo, job: CreateCallbackJob) -> None:
        phone = self._phone(call)
        if not phone:
            return
        text, reason = comment(job.intent, job.words), f"bot_{job.reason}"
        if self._jobs is not None:
            await self._jobs.create_job(phone=phone, reason=reason, source=SOURCE,
                                        queue=call.queue, call_id=call.channel_id, comment=text)
        else:
            await self._crm.request_callback(phone=phone, request_id=f"ivr-{call.channel_id}",
                                             reason=reason, call_id=call.channel_id,
                                             comment=text)  # fmt: skip
        self.created["callback"] += 1

    async def appointment(self, call: CallInfo, request: SendAppointmentRequest) -> None:
        phone = self._phone(call)
        if not phone:
            return
        await self._crm.request_appointment(phone=phone, call_id=call.channel_id,
                                            comment=comment(request.kind, request.words))
        self.created["appointment"] += 1
