"""Ports of crm_bridge: what the rest of callserver calls, and what the bridge needs for I/O.

``CrmPort`` is the one routing, screen-pop, the operator desk and callbacks depend on.
``CrmBackend`` is implemented by the embedded CRM (``embedded.EmbeddedCrm``) and the REST adapter
(``rest_adapter.RestCrm``); ``LookupCache`` by ``cache.RedisLookupCache``; ``PushQueue`` by
``outbox.Outbox``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from crm_bridge.models import (
    AppointmentRequest,
    CallbackRequest,
    CallOutcome,
    CallRecord,
    PatientCard,
)


class CrmPort(Protocol):
    async def lookup(self, phone: str) -> PatientCard | None:
        """Card of the patient calling from ``phone`` (any readable form), None if unknown.

        Raises PhoneNumberError when ``phone`` cannot be normalised, CrmTimeout when the CRM
        does not answer within the configured deadline, CrmUnavailable when it fails.
        """
        ...

    async def push_call_record(self, record: CallRecord) -> None:
        """Queue the record for delivery (durable on return; delivered at least once)."""
        ...

    async def push_outcome(self, outcome: CallOutcome) -> None: ...

    async def create_callback_request(self, request: CallbackRequest) -> None: ...

    async def create_appointment_request(self, request: AppointmentRequest) -> None: ...


class CrmBackend(Protocol):
    """A CRM that answers lookups and accepts pushes (the outbox worker's delivery target)."""

    async def lookup(self, phone: str) -> PatientCard | None:
        """``phone`` is E.164. Raises CrmTimeout / CrmUnavailable."""
        ...

    async def deliver(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> None:
        """Deliver one push. Must be idempotent per ``idempotency_key``.

        Raises CrmUnavailable (retry later) or CrmRejected (will never succeed: dead-letter now).
        """
        ...


class LookupCache(Protocol):
    async def get(self, phone: str) -> tuple[bool, PatientCard | None]:
        """``(hit, card)``: a hit with None means "known not to be a patient"."""
        ...

    async def put(self, phone: str, card: PatientCard | None) -> None: ...

    async def invalidate(self, *phones: str) -> None: ...


class PushQueue(Protocol):
    async def enqueue(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> bool:
        """Store a push durably; False when ``idempotency_key`` was already queued."""
        ...

    async def enqueue_many(self, items: Sequence[tuple[str, Mapping[str, Any], str]]) -> int:
        """Store ``(kind, data, idempotency_key)`` pushes at once (one round trip); returns how
        many were new. Raises CrmError; ``details['transient']`` False when the store refused
        them for good (then each may be tried alone)."""
        ...
