"""The CRM bridge plugin: patient lookup (Redis-cached), the outbox to the CRM, ``/api/crm``.

Provides two ports: ``patient_lookup`` (``lookup(phone) -> PatientCard | None``) and
``crm_requests`` (callback / appointment requests and call outcomes, delivered through the outbox).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from callserver.plugin_api import Contribution, Metric, PluginDeps
from crm_bridge.config import CrmConfig, validate_crm
from crm_bridge.models import AppointmentRequest, CallbackRequest, CallOutcome
from crm_bridge.service import CrmService
from crm_bridge.wiring import CrmBridge


class CrmRequests:
    """The ``crm_requests`` port: plain keyword calls, so no other domain imports our models."""

    def __init__(self, service: CrmService) -> None:
        self._service = service

    async def request_callback(
        self,
        *,
        phone: str,
        request_id: str,
        reason: str = "missed_call",
        patient_id: str = "",
        call_id: str = "",
        comment: str = "",
        due_at: datetime | None = None,
    ) -> None:
        """Queue a callback request for the CRM (delivered once per ``request_id``)."""
        await self._service.create_callback_request(
            CallbackRequest(phone=phone, reason=reason, patient_id=patient_id, call_id=call_id,
                            due_at=due_at, comment=comment, request_id=request_id)
        )  # fmt: skip

    async def request_appointment(
        self, *, phone: str, full_name: str = "", patient_id: str = "", call_id: str = "",
        comment: str = "", preferred_time: str = "",
    ) -> None:  # fmt: skip
        """Queue an appointment request for the CRM (a person books the slot)."""
        await self._service.create_appointment_request(
            AppointmentRequest(phone=phone, full_name=full_name, patient_id=patient_id,
                               call_id=call_id, comment=comment, preferred_time=preferred_time)
        )  # fmt: skip

    async def push_outcome(
        self, *, call_id: str, phone: str, tags: Sequence[str] = (), outcome: str = "",
        operator: str = "", comment: str = "",
    ) -> None:  # fmt: skip
        """Queue a call's tags and outcome for the CRM (once per distinct content)."""
        await self._service.push_outcome(
            CallOutcome(call_id=call_id, phone=phone, tags=tuple(tags), outcome=outcome,
                        operator=operator, comment=comment)
        )  # fmt: skip


class CrmPlugin:
    name = "crm"
    config_type = CrmConfig
    migrations: Path | None = Path(__file__).parent / "migrations"
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    provides: tuple[str, ...] = ("patient_lookup", "crm_requests")

    def validate(self, config: CrmConfig) -> None:
        validate_crm(config)

    def build(self, config: CrmConfig, deps: PluginDeps) -> Contribution:
        bridge = CrmBridge.build(
            config,
            pool=deps.pool,
            redis=deps.redis,
            redis_prefix=deps.server.redis_prefix + "crm:",
            instance_id=deps.server.instance_id,
        )
        counters = [
            ("crm_pushes_delivered_total", "CRM pushes delivered"),
            ("crm_push_failures_total", "CRM push attempts that failed"),
            ("crm_events_dropped_total", "call records that could not be built or were refused"),
            ("crm_call_records_queued_total", "call records put in the CRM outbox"),
            ("crm_call_records_pending", "finished calls whose record is not in the outbox yet"),
        ]
        return Contribution(
            routes=bridge.routes(prefix="/api/crm"),
            subscribers=[bridge.service.on_event],
            # the outbox and its workers need their tables
            after_database=[bridge],
            health_checks={"crm": bridge.health},
            metrics=[
                Metric(f"callserver_{name}", text, functools.partial(_counter, bridge, name))
                for name, text in counters
            ],
            ports={"patient_lookup": bridge.service, "crm_requests": CrmRequests(bridge.service)},
        )


def _counter(bridge: CrmBridge, name: str) -> int:
    return bridge.counters()[name]


plugin = CrmPlugin()
