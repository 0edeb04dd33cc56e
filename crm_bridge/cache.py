"""Redis lookup cache: E.164 → patient card JSON, with a TTL, invalidated on writes.

Keys are ``<prefix>crm:card:<E.164>``. An unknown caller is cached too (value ``null``) for the
shorter ``negative_ttl`` so a stream of unknown numbers does not hammer the CRM. Every Redis call
is bounded by ``timeout`` seconds; Redis errors become CrmUnavailable (the service then falls back
to the CRM itself).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from crm_bridge.errors import CrmTimeout, CrmUnavailable, CrmValidationError
from crm_bridge.models import PatientCard
from crm_bridge.wire import card_from_dict, card_to_dict

_UNKNOWN = b"null"


class RedisLookupCache:
    """Implements ``LookupCache``. Does not own ``client`` (the composition root closes it)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        ttl: float = 300.0,
        negative_ttl: float = 30.0,
        timeout: float = 0.2,
    ) -> None:
        self._redis = client
        self._prefix = f"{prefix}crm:card:"
        self._ttl_ms = max(1, int(ttl * 1000))
        self._negative_ttl_ms = max(1, int(negative_ttl * 1000))
        self._timeout = timeout

    def key(self, phone: str) -> str:
        return self._prefix + phone

    async def get(self, phone: str) -> tuple[bool, PatientCard | None]:
        """``(hit, card)``. A corrupt entry counts as a miss and is dropped."""
        raw = await self._call("get", self._redis.get(self.key(phone)))
        if raw is None:
            return False, None
        if raw == _UNKNOWN:
            return True, None
        try:
            return True, card_from_dict(json.loads(raw))
        except (ValueError, CrmValidationError):
            await self.invalidate(phone)
            return False, None

    async def put(self, phone: str, card: PatientCard | None) -> None:
        if card is None:
            value, ttl = _UNKNOWN, self._negative_ttl_ms
        else:
            value, ttl = json.dumps(card_to_dict(card), ensure_ascii=False).encode(), self._ttl_ms
        await self._call("set", self._redis.set(self.key(phone), value, px=ttl))

    async def invalidate(self, *phones: str) -> None:
        if phones:
            await self._call("delete", self._redis.delete(*(self.key(p) for p in phones)))

    async def _call(self, what: str, awaitable: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await awaitable
        except TimeoutError as exc:
            raise CrmTimeout(
                message=f"lookup cache {what} timed out", timeout=self._timeout
            ) from exc
        except (RedisError, OSError) as exc:
            raise CrmUnavailable(message=f"lookup cache {what} failed: {exc}") from exc
