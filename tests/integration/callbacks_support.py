"""Shared pieces of the callbacks integration tests: a migrated database, a settable clock,
a fake live view and a recording fake dialer (our own ports' shapes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from callbacks.config import CallbacksConfig
from callbacks.dialer import DialOutcome
from callbacks.notify import Notifier
from callbacks.plugin import retry_policy
from callbacks.scheduler import Scheduler, SchedulerSettings
from callbacks.service import CallbackService, ServiceParts
from callbacks.store import CallbackStore
from callserver.core.events import AgentSnapshot, CallSnapshot
from callserver.store.migrate import MigrationSource, apply_migrations, core_sources

CALLBACKS_MIGRATIONS = MigrationSource("callbacks", Path("callbacks/migrations"))
# 2026-12-01 10:00 Moscow, a Tuesday: inside business hours
T0 = 1796108400.0


@contextlib.asynccontextmanager
async def migrated_pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, [*core_sources(), CALLBACKS_MIGRATIONS])
        yield pool
    finally:
        await pool.close()


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def agent(interface: str, queues: tuple[str, ...] = ("reception",)) -> AgentSnapshot:
    return AgentSnapshot(interface, interface, queues, "not_inuse", False, "", False, 0, 0.0)


@dataclass
class FakeLive:
    free: list[AgentSnapshot] = field(default_factory=list)
    live_calls: list[CallSnapshot] = field(default_factory=list)

    def calls(self) -> list[CallSnapshot]:
        return list(self.live_calls)

    def agents(self) -> list[AgentSnapshot]:
        return list(self.free)

    def queues(self, now: float | None = None) -> dict[str, Any]:
        return {}

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        return {}


@dataclass
class Dial:
    phone: str
    operator: str
    started: float
    ended: float = 0.0


class FakeDialer:
    """Records each dial (monotonic start/end) and answers with ``results[phone]``."""

    def __init__(self, results: dict[str, str] | None = None, seconds: float = 0.02) -> None:
        self.results = results or {}
        self.seconds = seconds
        self.dials: list[Dial] = []
        self.waited: list[str] = []

    async def originate(
        self, *, attempt_id: str, operator: str, phone: str, caller_id: str, label: str,
        on_uniqueid: Callable[[str], Awaitable[None]] | None = None, ring_s: float | None = None,
    ) -> DialOutcome:  # fmt: skip
        loop = asyncio.get_running_loop()
        dial = Dial(phone, operator, loop.time())
        self.dials.append(dial)
        if on_uniqueid is not None:
            await on_uniqueid(f"u-{attempt_id}")
        await asyncio.sleep(self.seconds)
        dial.ended = loop.time()
        return DialOutcome(self.results.get(phone, "answered"), "")

    async def wait_end(self, uniqueid: str) -> DialOutcome:
        self.waited.append(uniqueid)
        await asyncio.sleep(self.seconds)
        return DialOutcome("answered", "ANSWER", uniqueid)


def make_service(pool: asyncpg.Pool, clock: Clock, cfg: CallbacksConfig | None = None
                 ) -> CallbackService:  # fmt: skip
    cfg = cfg or CallbacksConfig()
    notifier = Notifier(lambda: None)
    return CallbackService(ServiceParts(CallbackStore(pool), retry_policy(cfg), clock, notifier,
                                        paid_sources=frozenset(cfg.paid_sources)))  # fmt: skip


def make_scheduler(pool: asyncpg.Pool, clock: Clock, live: FakeLive, dialer: FakeDialer,
                   owner: str, cfg: CallbacksConfig | None = None) -> Scheduler:  # fmt: skip
    cfg = cfg or CallbacksConfig()
    return Scheduler(CallbackStore(pool), dialer, live, retry_policy(cfg), clock,
                     Notifier(lambda: None),
                     SchedulerSettings(owner, cfg.lease_s, 0.01, cfg.reconcile_gap_s))  # fmt: skip
