"""CrmService: the ``CrmPort`` callserver uses — cached lookups, pushes through the outbox.

Lookups: E.164 → Redis cache → backend (embedded or REST) under a deadline → cache.
Pushes: written to the PostgreSQL outbox (durable when the call returns); finished calls from
the bus go through ``CallRecordWriter`` (batched, never dropped); an ``OutboxWorker``
delivers them to ``delivery_target()``, which invalidates the cached card after each delivery.
Pure of I/O libraries: everything goes through the ports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from callserver.core.events import CallAbandoned, CallEnded, DomainEvent
from callserver.core.phone import mask, normalize_phone
from crm_bridge.errors import CrmError, CrmTimeout
from crm_bridge.models import (
    AppointmentRequest,
    CallbackRequest,
    CallOutcome,
    CallRecord,
    PatientCard,
)
from crm_bridge.ports import CrmBackend, LookupCache, PushQueue
from crm_bridge.record_writer import CallRecordWriter, RecordWriterSettings
from crm_bridge.wire import Push, push_payload

log = logging.getLogger(__name__)


class CrmService:
    """Implements ``CrmPort``. Owns the call record writer's task between start() and aclose()."""

    def __init__(
        self,
        backend: CrmBackend,
        outbox: PushQueue,
        cache: LookupCache | None = None,
        *,
        lookup_timeout: float = 0.5,
        records: RecordWriterSettings | None = None,
    ) -> None:
        self._backend = backend
        self._outbox = outbox
        self._cache = cache
        self._timeout = lookup_timeout
        self.records = CallRecordWriter(outbox, records)
        """Writes the call record of every finished call to the outbox (batched, never drops)."""

    async def lookup(self, phone: str) -> PatientCard | None:
        """See ``CrmPort.lookup``; the whole miss path is bounded by ``lookup_timeout`` s."""
        e164 = normalize_phone(phone)
        if self._cache is not None:
            hit, card = await self._cache_get(e164)
            if hit:
                return card
        try:
            async with asyncio.timeout(self._timeout):
                card = await self._backend.lookup(e164)
        except TimeoutError:
            raise CrmTimeout(
                message=f"CRM lookup of {mask(e164)} timed out", timeout=self._timeout
            ) from None
        if self._cache is not None:
            await self._cache_put(e164, card)
        return card

    async def _cache_get(self, e164: str) -> tuple[bool, PatientCard | None]:
        try:
            return await self._cache.get(e164) if self._cache else (False, None)
        except CrmError as exc:
            log.warning("lookup cache read failed for %s: %s", mask(e164), exc)
            return False, None

    async def _cache_put(self, e164: str, card: PatientCard | None) -> None:
        try:
            if self._cache is not None:
                await self._cache.put(e164, card)
        except CrmError as exc:
            log.warning("lookup cache write failed for %s: %s", mask(e164), exc)

    async def push_call_record(self, record: CallRecord) -> None:
        await self._push(record)

    async def push_outcome(self, outcome: CallOutcome) -> None:
        await self._push(outcome)

    async def create_callback_request(self, request: CallbackRequest) -> None:
        await self._push(request)

    async def create_appointment_request(self, request: AppointmentRequest) -> None:
        await self._push(request)

    async def _push(self, item: Push) -> None:
        kind, data = push_payload(item)
        if data.get("phone"):
            data["phone"] = normalize_phone(data["phone"])
        await self._outbox.enqueue(kind, data, idempotency_key=item.idempotency_key)

    def delivery_target(self) -> CrmBackend:
        """The backend wrapped so each delivered push drops the cached card of its phone."""
        return _InvalidatingBackend(self._backend, self._cache)

    # -- domain events ------------------------------------------------------------------

    def on_event(self, event: DomainEvent) -> None:
        """EventBus subscriber: every CallEnded / CallAbandoned becomes a call record in the
        outbox (see ``CallRecordWriter``: returns at once, never drops)."""
        if isinstance(event, CallEnded | CallAbandoned):
            self.records.submit(event)

    async def start(self) -> None:
        await self.records.start()

    async def aclose(self) -> None:
        """Stop the record writer; records still pending are written first (≤ 5 s)."""
        await self.records.aclose()


class _InvalidatingBackend:
    def __init__(self, backend: CrmBackend, cache: LookupCache | None) -> None:
        self._backend = backend
        self._cache = cache

    async def lookup(self, phone: str) -> PatientCard | None:
        return await self._backend.lookup(phone)

    async def deliver(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> None:
        await self._backend.deliver(kind, data, idempotency_key=idempotency_key)
        phone = data.get("phone")
        if self._cache is not None and isinstance(phone, str) and phone:
            try:
                await self._cache.invalidate(phone)
            except CrmError as exc:
                log.warning("cache invalidation failed for %s: %s", mask(phone), exc)
