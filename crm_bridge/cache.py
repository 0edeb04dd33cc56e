"""Redis lookup cache: E.164 → patient card JSON, with a TTL, invalidated on writes.

Keys are ``<prefix>crm:card:<E.164>``. An unknown caller is cached too (value ``null``) for the
shorter ``negative_ttl`` so a stream of unknown numbers does not hammer the CRM. ``invalidate``
leaves a ``stale`` marker for ``invalidate_hold`` seconds (longer than a lookup's deadline) and
``put`` only writes where no entry is (``SET NX``): a lookup that read the card before a write
cannot put the old card back after the write's invalidation. Every Redis call
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
_STALE = b"stale"


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
        invalidate_hold: float = 5.0,
    ) -> None:
        self._redis = client
        self._prefix = f"{prefix}crm:card:"
        self._ttl_ms = max(1, int(ttl * 1000))
        self._negative_ttl_ms = max(1, int(negative_ttl * 1000))
        self._timeout = timeout
        self._hold_ms = max(1, int(invalidate_hold * 1000))

    def key(self, phone: str) -> str:
        return self._prefix + phone

    async def get(self, phone: str) -> tuple[bool, PatientCard | None]:
        """``(hit, card)``. A corrupt entry counts as a miss and is dropped."""
        raw = await self._call("get", self._redis.get(self.key(phone)))
        if raw is None or raw == _STALE:
            return False, None
        if raw == _UNKNOWN:
            return True, None
        try:
            return True, card_from_dict(json.loads(raw))
        except (ValueError, CrmValidationError):
            await self.invalidate(phone)
            return False, None

    async def put(self, phone: str, card: PatientCard | None) -> None:
        """Cache ``card`` (None: unknown number) unless an entry or a stale marker is there."""
        if card is None:
            value, ttl = _UNKNOWN, self._negative_ttl_ms
        else:
            value, ttl = json.dumps(card_to_dict(card), ensure_ascii=False).encode(), self._ttl_ms
        await self._call("set", self._redis.set(self.key(phone), value, px=ttl, nx=True))

    async def invalidate(self, *phones: str) -> None:
        """Drop the cards of ``phones``, holding off puts for ``invalidate_hold`` s."""
        if phones:
            pipe = self._redis.pipeline(transaction=False)
            for p in phones:
                pipe.set(self.key(p), _STALE, px=self._hold_ms)
            await self._call("invalidate", pipe.execute())

    async def _call(self, what: str, awaitable: Awaitable[Any]) -> Any:
        """``awaitable`` within ``timeout``. The Redis command runs in a task of its own that a
        timeout (ours or the caller's lookup budget) leaves running: redis-py drops a connection
        whose command was cancelled mid-reply, and under load reconnecting costs more CPU than
        the lookup, which makes more lookups late (the client's ``socket_timeout`` still bounds
        a command)."""
        task = asyncio.ensure_future(awaitable)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except TimeoutError as exc:
            task.add_done_callback(_settle)
            raise CrmTimeout(
                message=f"lookup cache {what} timed out", timeout=self._timeout
            ) from exc
        except asyncio.CancelledError:
            task.add_done_callback(_settle)
            raise
        except (RedisError, OSError) as exc:
            raise CrmUnavailable(message=f"lookup cache {what} failed: {exc}") from exc


def _settle(task: asyncio.Future[Any]) -> None:
    """Retrieve a late command's outcome (nobody waits for it any more)."""
    if not task.cancelled():
        task.exception()
