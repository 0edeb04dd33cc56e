"""REST API of the CRM bridge: lookup, requests, outbox dead letters, and the embedded CRM.

``crm_routes(...)`` returns aiohttp route definitions with absolute paths under ``prefix``
(default ``/api/crm``); the composition root adds them behind its bearer-token middleware.
Errors propagate as crm_bridge errors; callserver's one error middleware answers them (status
from the error's category, body ``{"error_id", "message", "details": {"field": …}}``; a 5xx
carries no database or CRM text). Text PostgreSQL cannot hold (NUL, a lone surrogate) anywhere
in the path, query or body is a 400 naming the field.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from callserver.core.text import first_bad_text
from callserver.web.body import json_object
from crm_bridge.embedded_admin import CrmAdmin
from crm_bridge.errors import CrmValidationError
from crm_bridge.models import AppointmentRequest, CallbackRequest
from crm_bridge.outbox import Outbox
from crm_bridge.ports import CrmPort, LookupCache
from crm_bridge.validation import (
    parse_appointment,
    parse_patient,
    parse_patient_changes,
    text,
    timestamp,
)
from crm_bridge.wire import card_to_dict

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY = 64 * 1024
_ID = r"{id:\d+}"


def _checked(handler: Handler) -> Handler:
    """Refuse text PostgreSQL cannot hold in the path or query before the handler runs."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        _check_text({**request.match_info, **request.query})
        return await handler(request)

    return wrapped


def _check_text(values: Any) -> None:
    """Raises CrmValidationError naming the first field (query, path or body) whose text
    PostgreSQL cannot hold: NUL, a lone surrogate (half an emoji)."""
    if (bad := first_bad_text(values)) is not None:
        raise CrmValidationError(message=f"{bad[0]}: {bad[1]}", field=bad[0])


async def _body(request: web.Request) -> dict[str, Any]:
    data = await json_object(request, max_bytes=MAX_BODY)
    _check_text(data)
    return data


def _int(value: str | None, name: str, default: int, *, high: int = 1000) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) > 10**12:
        raise CrmValidationError(message=f"{name}: expected a number", field=name)
    return min(int(value), high)


def _id(request: web.Request, name: str = "id") -> int:
    return _int(request.match_info[name], name, 0, high=10**12)


class _CrmHandlers:
    def __init__(
        self, crm: CrmPort, outbox: Outbox, admin: CrmAdmin | None, cache: LookupCache | None
    ) -> None:
        self.crm, self.outbox, self.admin, self.cache = crm, outbox, admin, cache

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        card = await self.crm.lookup(request.query.get("phone", ""))
        return web.json_response({"patient": None if card is None else card_to_dict(card)})

    async def callback_request(self, request: web.Request) -> web.StreamResponse:
        d = await _body(request)
        req = CallbackRequest(
            phone=text(d, "phone", required=True, limit=40),
            reason=text(d, "reason", limit=60) or "web_form",
            patient_id=text(d, "patient_id", limit=40),
            call_id=text(d, "call_id", limit=100),
            due_at=timestamp(d, "due_at") if d.get("due_at") else None,
            comment=text(d, "comment", limit=2000),
            **({"request_id": text(d, "request_id", limit=100)} if d.get("request_id") else {}),
        )
        await self.crm.create_callback_request(req)
        return web.json_response({"request_id": req.request_id}, status=202)

    async def appointment_request(self, request: web.Request) -> web.StreamResponse:
        d = await _body(request)
        req = AppointmentRequest(
            phone=text(d, "phone", required=True, limit=40),
            full_name=text(d, "full_name", limit=200),
            patient_id=text(d, "patient_id", limit=40),
            call_id=text(d, "call_id", limit=100),
            doctor_id=text(d, "doctor_id", limit=20),
            specialty=text(d, "specialty", limit=100),
            clinic=text(d, "clinic", limit=200),
            preferred_time=text(d, "preferred_time", limit=200),
            comment=text(d, "comment", limit=2000),
            **({"request_id": text(d, "request_id", limit=100)} if d.get("request_id") else {}),
        )
        if req.doctor_id and not req.doctor_id.isdigit():
            raise CrmValidationError(message="doctor_id: expected a number", field="doctor_id")
        await self.crm.create_appointment_request(req)
        return web.json_response({"request_id": req.request_id}, status=202)

    async def outbox_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(await self.outbox.stats())

    async def dead_letters(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        rows = await self.outbox.list_dead(
            _int(q.get("limit"), "limit", 100), _int(q.get("offset"), "offset", 0, high=10**9)
        )
        return web.json_response({"dead": [r.to_dict() for r in rows]})

    async def retry_one(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"retried": await self.outbox.retry_dead([_id(request)])})

    async def retry_all(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"retried": await self.outbox.retry_dead(None)})

    async def _invalidate(self, phones: list[str]) -> None:
        if self.cache is not None and phones:
            await self.cache.invalidate(*phones)


class _AdminHandlers(_CrmHandlers):
    admin: CrmAdmin

    async def patients(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        found = await self.admin.search_patients(
            q.get("q", "")[:200],
            _int(q.get("limit"), "limit", 50),
            _int(q.get("offset"), "offset", 0, high=10**9),
        )
        return web.json_response({"patients": found})

    async def patient(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(card_to_dict(await self.admin.card(_id(request))))

    async def create_patient(self, request: web.Request) -> web.StreamResponse:
        patient = parse_patient(await _body(request))
        new_id = await self.admin.create_patient(patient)
        await self._invalidate(list(patient.phones))
        return web.json_response({"id": str(new_id)}, status=201)

    async def update_patient(self, request: web.Request) -> web.StreamResponse:
        patient_id = _id(request)
        changes = parse_patient_changes(await _body(request))
        await self._invalidate(await self.admin.update_patient(patient_id, changes))
        return web.json_response(card_to_dict(await self.admin.card(patient_id)))

    async def appointments(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        patient = _int(q.get("patient_id"), "patient_id", 0, high=10**12) or None
        since = timestamp(q, "since") if q.get("since") else None
        rows = await self.admin.list_appointments(
            patient, since, _int(q.get("limit"), "limit", 100)
        )
        return web.json_response({"appointments": rows})

    async def create_appointment(self, request: web.Request) -> web.StreamResponse:
        new_id, phones = await self.admin.create_appointment(
            parse_appointment(await _body(request))
        )
        await self._invalidate(phones)
        return web.json_response({"id": str(new_id)}, status=201)

    async def update_appointment(self, request: web.Request) -> web.StreamResponse:
        d = await _body(request)
        status = text(d, "status", required=True, limit=20)
        await self._invalidate(await self.admin.set_appointment_status(_id(request), status))
        return web.json_response({"id": str(_id(request)), "status": status})

    async def doctors(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"doctors": await self.admin.list_doctors()})

    async def clinics(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"clinics": await self.admin.list_clinics()})


def crm_routes(
    *,
    crm: CrmPort,
    outbox: Outbox,
    admin: CrmAdmin | None = None,
    cache: LookupCache | None = None,
    prefix: str = "/api/crm",
) -> list[web.RouteDef]:
    """Routes of the CRM API. ``admin`` (embedded CRM reads/writes) only with the embedded backend;
    ``cache`` is invalidated by those writes."""
    h = _AdminHandlers(crm, outbox, admin, cache)
    p = prefix.rstrip("/")
    routes = [
        web.get(f"{p}/lookup", _checked(h.lookup)),
        web.post(f"{p}/callback-requests", _checked(h.callback_request)),
        web.post(f"{p}/appointment-requests", _checked(h.appointment_request)),
        web.get(f"{p}/outbox", _checked(h.outbox_stats)),
        web.get(f"{p}/outbox/dead", _checked(h.dead_letters)),
        web.post(f"{p}/outbox/dead/retry", _checked(h.retry_all)),
        web.post(f"{p}/outbox/dead/" + _ID + "/retry", _checked(h.retry_one)),
    ]
    if admin is None:
        return routes
    return [
        *routes,
        web.get(f"{p}/patients", _checked(h.patients)),
        web.post(f"{p}/patients", _checked(h.create_patient)),
        web.get(f"{p}/patients/" + _ID, _checked(h.patient)),
        web.patch(f"{p}/patients/" + _ID, _checked(h.update_patient)),
        web.get(f"{p}/appointments", _checked(h.appointments)),
        web.post(f"{p}/appointments", _checked(h.create_appointment)),
        web.patch(f"{p}/appointments/" + _ID, _checked(h.update_appointment)),
        web.get(f"{p}/doctors", _checked(h.doctors)),
        web.get(f"{p}/clinics", _checked(h.clinics)),
    ]
