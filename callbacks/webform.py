"""``POST /api/callback-requests``: a clinic website's backend forwards a visitor's request.

Auth (see README): the path is public to the core's auth (the site must not hold the full API
token); when ``callbacks.form_token`` is set the request must carry it as
``Authorization: Bearer <form_token>`` (a scoped token: it can only create callback requests).
Rate limits (Redis, shared by every instance, fixed windows): per phone number and per client
address. The client address is the TCP peer, or — only with the scoped token, whose holder is
the site's backend — the ``client_ip`` field the backend passes for its visitor.

Body (JSON object, UTF-8): ``phone`` (required), ``name``, ``preferred_time`` (ISO 8601; a time
without zone is the clinic's), ``comment``, ``source``, ``utm`` (object of strings), ``timezone``
(the patient's IANA zone), ``client_ip``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from callbacks.errors import FormForbidden, InvalidRequest, TooManyRequests
from callbacks.models import JobSpec
from callbacks.service import parse_phone, zone
from callserver.logs import escape_control

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
REDIS_TIMEOUT_S = 0.5
LIMITS = {"name": 200, "comment": 2000, "source": 200, "client_ip": 64, "timezone": 64}
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


@dataclass(frozen=True)
class FormSettings:
    token: str
    per_phone: int
    per_phone_window_s: float
    per_client: int
    per_client_window_s: float
    max_days: int
    timezone: ZoneInfo


def check_token(header: str, token: str) -> bool:
    """True when no token is configured or ``Authorization: Bearer <token>`` matches."""
    if not token:
        return True
    if not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(message=f"{key}: must be text", field=key)
    value = escape_control(value.strip()) if key != "comment" else value.strip()
    if len(value) > LIMITS[key]:
        raise InvalidRequest(message=f"{key}: at most {LIMITS[key]} characters", field=key)
    return value


def _utm(body: dict[str, Any]) -> dict[str, str]:
    raw = body.get("utm") or {}
    if not isinstance(raw, dict):
        raise InvalidRequest(message="utm: must be an object of strings", field="utm")
    utm: dict[str, str] = {}
    for key, value in raw.items():
        if key not in UTM_KEYS or not isinstance(value, str) or len(value) > 200:
            raise InvalidRequest(message=f"utm: keys are {', '.join(UTM_KEYS)}, values text "
                                 "≤ 200 characters", field="utm")  # fmt: skip
        utm[key] = escape_control(value)
    return utm


def preferred_at(text: str, now: float, s: FormSettings) -> float:
    """POSIX seconds of ``preferred_time`` (0.0 when empty or past: as soon as allowed)."""
    if not text:
        return 0.0
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(message="preferred_time: expected ISO 8601, e.g. "
                             "2026-12-02T10:30 or 2026-12-02T10:30+03:00",
                             field="preferred_time") from None  # fmt: skip
    if when.tzinfo is None:
        when = when.replace(tzinfo=s.timezone)
    at = when.timestamp()
    if at > now + s.max_days * 86400:
        raise InvalidRequest(message=f"preferred_time: at most {s.max_days} days ahead",
                             field="preferred_time")  # fmt: skip
    return at if at > now else 0.0


def parse_form(body: object, now: float, s: FormSettings) -> tuple[JobSpec, str]:
    """(the job's spec, the visitor's ``client_ip`` as given); raises InvalidRequest."""
    if not isinstance(body, dict):
        raise InvalidRequest(message="body must be a JSON object", field="")
    if "phone" not in body or body["phone"] in ("", None):
        raise InvalidRequest(message="phone: required", field="phone")
    phone = parse_phone(body["phone"])
    tz_name = _text(body, "timezone")
    if tz_name and zone(tz_name) is None:
        raise InvalidRequest(message="timezone: unknown IANA zone", field="timezone")
    client_ip = _text(body, "client_ip")
    if client_ip:
        try:
            ipaddress.ip_address(client_ip)
        except ValueError:
            raise InvalidRequest(message="client_ip: not an IP address",
                                 field="client_ip") from None  # fmt: skip
    pref = body.get("preferred_time", "")
    if pref is not None and not isinstance(pref, str):
        raise InvalidRequest(message="preferred_time: must be text", field="preferred_time")
    due = preferred_at((pref or "").strip(), now, s)
    spec = JobSpec(phone, "web_form", source=_text(body, "source") or "web_form",
                   name=_text(body, "name"), comment=_text(body, "comment"), utm=_utm(body),
                   patient_tz=tz_name, missed_at=now, due_at=due)  # fmt: skip
    return spec, client_ip


class RateLimiter:
    """Fixed-window counters in Redis (``INCR`` + ``EXPIRE``); keys hash the phone/address.

    Redis down: the request passes (logged, counted in ``unlimited``) — a patient's request is
    worth more than the limit, and repeated requests of one number merge into one job anyway."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self.limited = 0
        self.unlimited = 0

    async def hit(self, kind: str, value: str, limit: int, window_s: float) -> None:
        """Count one request; raises TooManyRequests when over ``limit`` in the window."""
        digest = hashlib.sha256(value.encode()).hexdigest()[:24]
        key = f"{self._prefix}callbacks:rl:{kind}:{digest}"
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, max(1, int(window_s)), nx=True)
                    count, _ = await pipe.execute()
                ttl = await self._redis.ttl(key) if int(count) > limit else 0
        except (RedisError, OSError, TimeoutError) as exc:
            self.unlimited += 1
            log.warning("callback form rate limit not checked (Redis): %r", exc)
            return
        if int(count) > limit:
            self.limited += 1
            raise TooManyRequests(message=f"too many callback requests per {kind}; try later",
                                  limit=limit, retry_after_s=max(int(ttl), 1))  # fmt: skip


def require_token(header: str, token: str) -> None:
    if not check_token(header, token):
        raise FormForbidden(message="a valid form token is required (Authorization: Bearer …)")
