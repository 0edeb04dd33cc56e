"""The ``dialer`` port (desk's click-to-call, later campaigns): one agent-first call, recorded
as an attempt with no job, under the same one-dial-per-operator/patient guarantees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from callbacks.dialer import AgentFirstDialer
from callbacks.errors import InvalidRequest, JobConflict
from callbacks.lease import hold_lease
from callbacks.store import CallbackStore
from callserver.core.phone import mask


class DialerPort:
    def __init__(self, dialer: AgentFirstDialer, store: CallbackStore, clock: Callable[[], float],
                 owner: str, lease_s: float, default_cid: str) -> None:  # fmt: skip
        self._dialer, self._store, self._clock = dialer, store, clock
        self._owner, self._lease_s, self._cid = owner, lease_s, default_cid

    def observe(self, callback: Callable[[str, float], None]) -> None:
        """Benchmarks and tests: ``callback(attempt_id, wall time)`` as each Originate (the
        scheduler's and this port's) leaves callserver."""
        self._dialer.on_originate = callback

    async def dial(
        self, *, operator: str, phone: str, caller_id: str, context: dict[str, str],
        timeout: float = 30.0,  # noqa: ASYNC109 - the operator's ring time, as the port says
    ) -> dict[str, Any]:  # fmt: skip
        """Ring ``operator`` (interface, e.g. ``PJSIP/op101``) for ``timeout`` seconds, then
        ``phone`` (E.164) with ``caller_id`` (empty: the clinic's). Returns ``{"result",
        "attempt_id"}`` once the call ended. Raises InvalidRequest (bad operator/phone) or
        JobConflict (that operator or patient is being dialled)."""
        if not operator or "/" not in operator or any(c in operator for c in "\r\n,&"):
            raise InvalidRequest(message="operator must be an interface like PJSIP/op101",
                                 field="operator")  # fmt: skip
        if not phone.startswith("+") or not phone[1:].isdigit():
            raise InvalidRequest(message="phone must be E.164 (+79161234567)", field="phone")
        now = self._clock()
        try:
            attempt_id = await self._store.open_adhoc_attempt(
                operator=operator, phone=phone, owner=self._owner, now=now,
                lease_until=now + self._lease_s,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise JobConflict(message=f"{operator} or {mask(phone)} is being dialled",
                              operator=operator) from None  # fmt: skip
        label = context.get("label", "") or context.get("name", "")
        async with hold_lease(self._store, attempt_id, self._owner, self._lease_s, self._clock):
            outcome = await self._dialer.originate(
                attempt_id=attempt_id, operator=operator, phone=phone,
                caller_id=caller_id or self._cid, label=label[:40], ring_s=timeout,
                on_uniqueid=lambda u: self._store.set_uniqueid(attempt_id, u),
            )  # fmt: skip
        await self._store.finish_attempt(
            attempt_id, result=outcome.result, cause=outcome.cause[:200], now=self._clock(),
            counted=0, next_at=None, outcome="",
        )  # fmt: skip
        result = "failed" if outcome.result == "not_dialed" else outcome.result
        return {"result": result, "attempt_id": attempt_id}
