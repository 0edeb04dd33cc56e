"""HTTP API of callbacks (thin handlers; auth and error mapping are the core's middlewares).

- ``GET  /api/callbacks/jobs?state=open|active|done&queue=Q&limit=N``  → ``{"jobs": [...]}``
- ``GET  /api/callbacks/jobs/{id}``            one job with its attempts (``attempt_log``)
- ``POST /api/callbacks/jobs/{id}/claim``      the principal's user takes it (409: someone else)
- ``POST /api/callbacks/jobs/{id}/result``     ``{"result": "reached|booked|not_needed|
  no_answer|busy", "note": "…"}``
- ``GET  /api/callbacks/stats``                counts, reached/booked rates, miss → 1st attempt
- ``GET/POST /api/callbacks/dnc``, ``DELETE /api/callbacks/dnc/{phone}``  do-not-call list
- ``POST /api/callback-requests``              the website form (public path; see webform.py)

Operators, supervisors and admins read and work jobs; the do-not-call list is supervisors'.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from callbacks.errors import InvalidRequest, JobNotFound
from callbacks.models import job_dict
from callbacks.service import CallbackService, parse_phone
from callbacks.webform import MAX_BODY, FormSettings, RateLimiter, parse_form, require_token
from callserver.core.text import text_problem
from callserver.web.auth import Principal, require_role
from callserver.web.body import json_body

MAX_JOB_ID = 64


def _job_id(request: web.Request) -> str:
    """The path's job id; one no stored job can have (NUL, a lone surrogate, too long) is not
    found rather than a database error."""
    job_id = request.match_info["id"]
    if len(job_id) > MAX_JOB_ID or text_problem(job_id) is not None:
        raise JobNotFound(message="no such callback job", job_id=job_id[:MAX_JOB_ID])
    return job_id

FORM_PATH = "/api/callback-requests"
STATES = ("open", "active", "done")
WORKERS = ("operator", "supervisor", "admin")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))


async def _body(request: web.Request) -> Any:
    return await json_body(request, max_bytes=MAX_BODY)


def _user(principal: Principal) -> str:
    return principal.user_id or principal.name


class CallbacksApi:
    def __init__(self, service: CallbackService, limiter: RateLimiter, form: FormSettings,
                 clock: Callable[[], float]) -> None:  # fmt: skip
        self._service, self._limiter, self._form, self._clock = service, limiter, form, clock

    async def jobs(self, request: web.Request) -> web.Response:
        require_role(request, *WORKERS)
        state = request.query.get("state") or None
        if state is not None and state not in STATES:
            raise InvalidRequest(message="state must be open, active or done", field="state")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            raise InvalidRequest(message="limit must be an integer", field="limit") from None
        if not 1 <= limit <= 1000:
            raise InvalidRequest(message="limit must be 1…1000", field="limit")
        queue = request.query.get("queue") or None
        rows = await self._service.store.list_jobs(state, queue, limit)
        return _json({"jobs": [job_dict(r) for r in rows]})

    async def job(self, request: web.Request) -> web.Response:
        require_role(request, *WORKERS)
        return _json(await self._service.get(_job_id(request)))

    async def claim(self, request: web.Request) -> web.Response:
        principal = require_role(request, *WORKERS)
        return _json(await self._service.claim(_job_id(request), _user(principal)))

    async def result(self, request: web.Request) -> web.Response:
        principal = require_role(request, *WORKERS)
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("result"), str):
            raise InvalidRequest(message="body must be {\"result\": …, \"note\": …}",
                                 field="result")  # fmt: skip
        note = body.get("note", "")
        if not isinstance(note, str):
            raise InvalidRequest(message="note: must be text", field="note")
        job = await self._service.record_result(_job_id(request), _user(principal),
                                                body["result"], note)  # fmt: skip
        return _json(job)

    async def stats(self, request: web.Request) -> web.Response:
        require_role(request, *WORKERS)
        stats = await self._service.store.stats(self._clock() - 7 * 86400)
        done = stats["done"] or 1.0
        stats["reached_rate"] = stats["reached"] / done
        stats["booked_rate"] = stats["booked"] / done
        return _json(stats)

    async def dnc_list(self, request: web.Request) -> web.Response:
        require_role(request, "supervisor", "admin")
        rows = await self._service.store.list_dnc()
        return _json({"dnc": [dict(r) for r in rows]})

    async def dnc_add(self, request: web.Request) -> web.Response:
        principal = require_role(request, "supervisor", "admin")
        body = await _body(request)
        if not isinstance(body, dict):
            raise InvalidRequest(message="body must be a JSON object", field="")
        phone = parse_phone(body.get("phone"))
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise InvalidRequest(message="reason: must be text", field="reason")
        await self._service.store.add_dnc(phone, reason[:500], _user(principal), self._clock())
        await self._service.close_for_phone(phone, "dnc")
        return _json({"phone": phone}, status=201)

    async def dnc_remove(self, request: web.Request) -> web.Response:
        require_role(request, "supervisor", "admin")
        phone = parse_phone(request.match_info["phone"])
        return _json({"phone": phone, "removed": await self._service.store.remove_dnc(phone)})

    async def form(self, request: web.Request) -> web.Response:
        """The website's callback request → 201 ``{"id", "status": "accepted"}``; 400 bad
        input, 403 wrong token, 429 too many."""
        f = self._form
        require_token(request.headers.get("Authorization", ""), f.token)
        body = await _body(request)
        # with the scoped token the caller is the site's backend: limit its visitors, not it
        visitor = body.get("client_ip") if f.token and isinstance(body, dict) else None
        who = visitor[:64] if isinstance(visitor, str) and visitor else (request.remote or "?")
        await self._limiter.hit("client", who, f.per_client, f.per_client_window_s)
        spec, _client_ip = parse_form(body, self._clock(), f)
        await self._limiter.hit("phone", spec.phone, f.per_phone, f.per_phone_window_s)
        job_id = await self._service.submit(spec)
        return _json({"id": job_id, "status": "accepted"}, status=201)


def callbacks_routes(api: CallbacksApi) -> list[web.RouteDef]:
    return [
        web.get("/api/callbacks/jobs", api.jobs),
        web.get("/api/callbacks/jobs/{id}", api.job),
        web.post("/api/callbacks/jobs/{id}/claim", api.claim),
        web.post("/api/callbacks/jobs/{id}/result", api.result),
        web.get("/api/callbacks/stats", api.stats),
        web.get("/api/callbacks/dnc", api.dnc_list),
        web.post("/api/callbacks/dnc", api.dnc_add),
        web.delete("/api/callbacks/dnc/{phone}", api.dnc_remove),
        web.post(FORM_PATH, api.form),
    ]
