"""Settling a campaign call: the attempt's row, the retry, and the CRM updates its outcome asks
for (``outcomes.effects``) — appointment status, waitlist offer, callback job, booking request,
manager task, opt-out, and the clinic's webhook (SMS gateway, CRM task) when nobody was reached.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

import aiohttp
import asyncpg

from callserver.core.phone import mask
from callserver.errors import CallserverError
from campaigns.claim import ClaimRequest
from campaigns.dialog import Step
from campaigns.models import CampaignSettings, ClaimedCall
from campaigns.outcomes import Effects, effects, final_outcome
from campaigns.policy import next_attempt
from campaigns.store import CampaignStore
from campaigns.targets import waitlist_targets

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 5.0


class CallbackJobs(Protocol):
    """The ``callback_jobs`` port (callbacks plugin)."""

    async def create_job(
        self, *, phone: str, reason: str, source: str = "", queue: str = "", call_id: str = "",
        patient_id: str = "", comment: str = "", due_at: float | None = None,
    ) -> str: ...  # fmt: skip


class CrmRequests(Protocol):
    """The ``crm_requests`` port (crm plugin)."""

    async def request_callback(
        self, *, phone: str, request_id: str, reason: str = "missed_call", patient_id: str = "",
        call_id: str = "", comment: str = "", due_at: datetime | None = None,
    ) -> None: ...  # fmt: skip

    async def request_appointment(
        self, *, phone: str, full_name: str = "", patient_id: str = "", call_id: str = "",
        comment: str = "", preferred_time: str = "",
    ) -> None: ...  # fmt: skip


class Webhook(Protocol):
    async def send(self, event: dict[str, object]) -> None: ...


class HttpWebhook:
    """POSTs JSON events to the clinic's URL (its SMS gateway / CRM task endpoint). One try per
    event with a 5 s deadline; failures are logged and counted, not retried."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.failures = 0

    async def send(self, event: dict[str, object]) -> None:
        if not self._url:
            return
        try:
            timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.post(self._url, json=event) as reply,
            ):
                if reply.status >= 300:
                    raise aiohttp.ClientError(f"status {reply.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            self.failures += 1
            log.warning("campaign webhook %s failed: %s", event.get("event"), e)


class CampaignService:
    def __init__(
        self, store: CampaignStore, pool: asyncpg.Pool, *, instance: str,
        clock: Callable[[], float], webhook: Webhook, callbacks: CallbackJobs | None = None,
        crm: CrmRequests | None = None,
    ) -> None:  # fmt: skip
        self._store, self._pool, self._instance, self._clock = store, pool, instance, clock
        self._webhook, self._callbacks, self._crm = webhook, callbacks, crm
        self.outcomes: dict[str, int] = {}
        self.failed_effects = 0

    async def settle(self, call: ClaimedCall, result: str, step: Step | None) -> None:
        """Record the dial and apply its effects. Raises asyncpg errors (PostgreSQL down)."""
        apply, _ = await self.record(call, result, step, now=self.now())
        if apply is not None:
            await apply()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock()).astimezone()

    async def record(
        self, call: ClaimedCall, result: str, step: Step | None, *, now: datetime,
        then: ClaimRequest | None = None,
    ) -> tuple[Callable[[], Awaitable[None]] | None, list[ClaimedCall]]:  # fmt: skip
        """Record the dial (one statement: its channel no longer counts as in use), with
        ``then`` claiming the calls that take its channel in the same round trip. Returns the
        application of its effects (None when it was settled elsewhere) and those calls.
        Raises asyncpg errors (PostgreSQL down)."""
        outcome = step.outcome if step else ""
        eff = effects(call.kind, result, outcome)
        s = call.settings
        retry_at = None
        if eff.retry and call.attempt < s.max_attempts:
            retry_at = next_attempt(s.window, now, delay=s.retry_delay, same_day=s.same_day_retry)
        final = final_outcome(result, outcome)
        data = dict(step.data) if step else {}
        settled, claimed = await self._store.settle(
            call, instance=self._instance, result=result, outcome=outcome, final=final,
            data=data, now=now, retry_at=retry_at, then=then,
        )  # fmt: skip
        if not settled:
            return None, claimed
        key = outcome or result
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

        async def apply() -> None:
            try:
                await self._apply(call, eff, data, unreached=eff.retry and retry_at is None,
                                  now=now)  # fmt: skip
            except CallserverError as e:  # a port (CRM, callbacks) failed: the attempt is recorded
                self.failed_effects += 1
                log.warning("campaign dial %s to %s: effects of %s not applied: %s", call.dial_id,
                            mask(call.target.phone), outcome or result, e)  # fmt: skip

        return apply, claimed

    async def _apply(
        self, call: ClaimedCall, eff: Effects, data: dict[str, str], *, unreached: bool,
        now: datetime,
    ) -> None:  # fmt: skip
        t = call.target
        if eff.appointment_status and t.appointment_id is not None:
            await self._set_status(t.appointment_id, eff.appointment_status)
        if eff.opt_out:
            await self._store.add_dnc([t.phone], f"opt_out:campaign:{call.campaign_id}")
        if eff.callback_reason or eff.manager_task:
            reason = eff.callback_reason or f"campaign_{call.kind}_low_score"
            await self._callback(call, reason, "managers" if eff.manager_task else "", data)
        if eff.booking_request and self._crm is not None:
            await self._crm.request_appointment(
                phone=t.phone, full_name=t.full_name, patient_id=str(t.patient_id or ""),
                call_id=f"campaign-dial-{call.dial_id}", comment=_context(call, data),
                preferred_time=t.starts_at.isoformat() if t.starts_at else "",
            )  # fmt: skip
        if eff.offer_slot and t.doctor_id is not None and t.starts_at is not None:
            await self._offer_slot(call, now)
        if unreached or eff.manager_task:
            event = "unreached" if unreached else "manager_task"
            await self._webhook.send({
                "event": event, "campaign_id": call.campaign_id, "kind": call.kind,
                "phone": t.phone, "patient_id": t.patient_id, "appointment_id": t.appointment_id,
                "attempts": call.attempt, "data": data,
            })  # fmt: skip

    async def _set_status(self, appointment_id: int, status: str) -> None:
        """The embedded CRM's appointment (only from booked/confirmed: never undoes a visit)."""
        await self._pool.execute(
            "UPDATE crm_appointments SET status = $2, updated_at = now() "
            "WHERE id = $1 AND status IN ('booked', 'confirmed')", appointment_id, status,
        )  # fmt: skip

    async def _callback(
        self, call: ClaimedCall, reason: str, queue: str, data: dict[str, str]
    ) -> None:
        t, comment = call.target, _context(call, data)
        if self._callbacks is not None:
            await self._callbacks.create_job(
                phone=t.phone, reason=reason, source=f"campaign:{call.campaign_id}", queue=queue,
                call_id=f"campaign-dial-{call.dial_id}", patient_id=str(t.patient_id or ""),
                comment=comment,
            )  # fmt: skip
        elif self._crm is not None:
            await self._crm.request_callback(
                phone=t.phone, request_id=f"campaign-dial-{call.dial_id}", reason=reason,
                patient_id=str(t.patient_id or ""), call_id=f"campaign-dial-{call.dial_id}",
                comment=comment,
            )  # fmt: skip
        else:
            log.warning("campaign call to %s wants a callback (%s) but no callback port is enabled",
                        mask(t.phone), reason)  # fmt: skip

    async def _offer_slot(self, call: ClaimedCall, now: datetime) -> None:
        """The cancelled slot goes to the doctor's waitlist as a running waitlist campaign."""
        t = call.target
        assert t.doctor_id is not None and t.starts_at is not None
        settings = CampaignSettings(clinic_name=call.settings.clinic_name,
                                    window=call.settings.window, trunk=call.settings.trunk,
                                    caller_id=call.settings.caller_id, max_attempts=1,
                                    retry_delay=timedelta(hours=1))  # fmt: skip
        targets = await waitlist_targets(self._pool, settings, doctor_id=t.doctor_id,
                                         slot=t.starts_at, doctor=t.doctor, now=now)  # fmt: skip
        if not targets:
            return
        name = (
            f"Лист ожидания: {t.doctor}, {t.starts_at.astimezone(settings.window.zone):%d.%m %H:%M}"
        )
        cid = await self._store.create(name, "waitlist", settings, f"campaign:{call.campaign_id}")
        await self._store.add_targets(cid, targets)
        await self._store.set_state(cid, "running")


def _context(call: ClaimedCall, data: dict[str, str]) -> str:
    """What the operator sees on the callback job: the campaign, the appointment, the dialog."""
    t = call.target
    parts = [f"campaign {call.campaign_id} ({call.kind})"]
    if t.starts_at is not None:
        when = t.starts_at.astimezone(call.settings.window.zone)
        parts.append(f"appointment {t.appointment_id or ''} {t.doctor} {when:%d.%m.%Y %H:%M}")
    if data.get("comment"):  # a low score's task: the patient's own words first
        parts.append(f"score {data.get('score', '')}, comment: {data['comment'][:600]}")
    if data:
        parts.append(json.dumps(data, ensure_ascii=False))
    return "; ".join(parts)[:1000]
