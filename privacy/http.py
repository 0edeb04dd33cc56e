"""``GET /api/privacy/export?phone=…`` and ``POST /api/privacy/erase`` (admin role only).

Both answer a patient's request under 152-FZ: the export is everything stored about one phone
number (see ``privacy.subject``), the erasure removes or anonymises it. Each writes an audit
row (``privacy_audit``: who, when, why, what was touched; the number kept as a hash and a
masked form). Errors use the one error body; a database failure is a 503 and changes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from callserver.core.phone import PhoneNumberError, mask, normalize_phone
from callserver.core.text import text_problem
from callserver.web.auth import require_role
from callserver.web.body import json_object
from privacy import subject
from privacy.errors import PrivacyRequestInvalid, PrivacyStoreUnavailable
from privacy.sql import card_key_prefix

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
MAX_REASON = 500


def _phone(raw: object) -> str:
    """E.164 form of ``raw``; raises PrivacyRequestInvalid (field ``phone``)."""
    if not isinstance(raw, str) or text_problem(raw) is not None:
        raise PrivacyRequestInvalid(message="phone: expected a phone number", field="phone")
    try:
        return normalize_phone(raw)
    except PhoneNumberError as exc:
        raise PrivacyRequestInvalid(message=f"phone: {exc.message}", field="phone") from None


def _reason(data: dict[str, Any]) -> str:
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise PrivacyRequestInvalid(message="reason: required (why the data is erased)",
                                    field="reason")  # fmt: skip
    if len(reason) > MAX_REASON or text_problem(reason) is not None:
        raise PrivacyRequestInvalid(message=f"reason: up to {MAX_REASON} characters of text",
                                    field="reason")  # fmt: skip
    return reason.strip()


def _json(data: Any) -> web.Response:
    return web.json_response(data, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


class PrivacyApi:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, redis_prefix: str) -> None:
        self._pool, self._redis, self._card_prefix = pool, redis, card_key_prefix(redis_prefix)

    async def export(self, request: web.Request) -> web.Response:
        principal = require_role(request, "admin")
        e164 = _phone(request.query.get("phone", ""))
        try:
            async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                data = await subject.export(conn, e164)
                counts = {"calls": len(data["calls"]), "crm_patients": len(data["crm_patients"])}
                data["audit_id"] = await subject.audit(
                    conn, action="export", actor=principal.name, e164=e164, counts=counts
                )
        except (asyncpg.PostgresError, OSError) as exc:
            raise PrivacyStoreUnavailable(
                message=f"export of {mask(e164)} failed: {exc!r}"
            ) from exc
        log.info("privacy: data of %s exported by %s (audit %s)", mask(e164), principal.name,
                 data["audit_id"])  # fmt: skip
        return _json(data)

    async def erase(self, request: web.Request) -> web.Response:
        principal = require_role(request, "admin")
        data = await json_object(request, max_bytes=MAX_BODY)
        e164, reason = _phone(data.get("phone")), _reason(data)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                counts = await subject.erase(conn, e164)
                audit_id = await subject.audit(conn, action="erase", actor=principal.name,
                                               e164=e164, reason=reason, counts=counts)  # fmt: skip
        except (asyncpg.PostgresError, OSError) as exc:
            raise PrivacyStoreUnavailable(
                message=f"erase of {mask(e164)} failed: {exc!r}"
            ) from exc
        cache = await self._drop_cached_card(e164)
        log.info("privacy: data of %s erased by %s (audit %s): %s", mask(e164), principal.name,
                 audit_id, counts)  # fmt: skip
        return _json({"phone": mask(e164), "erased": counts, "cached_card_removed": cache,
                      "audit_id": audit_id})  # fmt: skip

    async def _drop_cached_card(self, e164: str) -> bool:
        """Remove the CRM's cached card of ``e164`` (it expires anyway: a failure is logged)."""
        try:
            return bool(await self._redis.delete(self._card_prefix + e164))
        except (aioredis.RedisError, OSError) as exc:
            log.warning("privacy: cached card of %s not removed (expires with its TTL): %s",
                        mask(e164), type(exc).__name__)  # fmt: skip
            return False


def privacy_routes(api: PrivacyApi, prefix: str = "/api/privacy") -> list[web.RouteDef]:
    return [web.get(f"{prefix}/export", api.export), web.post(f"{prefix}/erase", api.erase)]
