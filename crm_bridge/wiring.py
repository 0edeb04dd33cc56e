"""``CrmBridge``: the whole bridge built from ``[crm]`` config, for the composition root.

Builds the backend (embedded or REST), Redis cache, outbox, ``CrmService`` (the ``CrmPort``),
``crm_settings.outbox_workers`` outbox workers, and the HTTP routes. Owns the tasks it starts:
``start()`` then ``aclose()``. Does not own ``pool`` or ``redis`` (the caller closes them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from callserver.web.health import ComponentHealth
from crm_bridge.cache import RedisLookupCache
from crm_bridge.config import CrmConfig
from crm_bridge.embedded import EmbeddedCrm
from crm_bridge.embedded_admin import CrmAdmin
from crm_bridge.http import crm_routes
from crm_bridge.outbox import Outbox, OutboxSettings, OutboxWorker
from crm_bridge.rest_adapter import RestCrm, RestSettings
from crm_bridge.service import CrmService


@dataclass
class CrmBridge:
    service: CrmService
    """The ``CrmPort``: subscribe ``service.on_event`` to the EventBus."""
    outbox: Outbox
    cache: RedisLookupCache
    backend: EmbeddedCrm | RestCrm
    admin: CrmAdmin | None
    workers: list[OutboxWorker] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        crm: CrmConfig,
        *,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        redis_prefix: str,
        instance_id: str,
    ) -> CrmBridge:
        """Raises OutboxError when ``outbox_lease`` ≤ ``push_timeout``."""
        cache = RedisLookupCache(
            redis, prefix=redis_prefix, ttl=crm.cache_ttl, negative_ttl=crm.negative_cache_ttl,
            invalidate_hold=max(5.0, 2 * crm.timeout),  # outlasts any lookup in flight
        )  # fmt: skip
        backend: EmbeddedCrm | RestCrm
        if crm.backend == "rest":
            backend, admin = RestCrm(RestSettings.from_config(crm)), None
        else:
            backend, admin = EmbeddedCrm(pool), CrmAdmin(pool)
        outbox = Outbox(pool, OutboxSettings.from_config(crm))
        service = CrmService(backend, outbox, cache, lookup_timeout=crm.timeout)
        workers = [
            OutboxWorker(outbox, service.delivery_target(), worker_id=f"{instance_id}-{n}")
            for n in range(crm.outbox_workers)
        ]
        return cls(service, outbox, cache, backend, admin, workers)

    def routes(self, prefix: str = "/api/crm") -> list[web.RouteDef]:
        return crm_routes(
            crm=self.service, outbox=self.outbox, admin=self.admin, cache=self.cache, prefix=prefix
        )

    def counters(self) -> dict[str, int]:
        """Counters for /metrics (``…_total`` monotonic; ``crm_call_records_pending`` is a gauge:
        finished calls whose record is not in the outbox yet). ``outbox.stats()`` gives rows."""
        return {
            "crm_pushes_delivered_total": sum(w.delivered for w in self.workers),
            "crm_push_failures_total": sum(w.failed for w in self.workers),
            "crm_events_dropped_total": self.service.records.unbuildable
            + self.service.records.refused,
            "crm_call_records_queued_total": self.service.records.queued,
            "crm_call_records_pending": self.service.records.pending,
        }

    async def health(self) -> ComponentHealth:
        """``/healthz`` check ``crm``: the call record backlog and whether the outbox is
        reachable (no I/O of its own)."""
        return await self.service.records.health()

    async def start(self) -> None:
        await self.service.start()
        for worker in self.workers:
            await worker.start()

    async def aclose(self) -> None:
        """Stop in order: bus consumer (drains queued events), workers, then the REST session."""
        await self.service.aclose()
        for worker in self.workers:
            await worker.aclose()
        if isinstance(self.backend, RestCrm):
            await self.backend.aclose()
