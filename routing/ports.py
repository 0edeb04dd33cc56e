"""The I/O routing needs, as small ``typing.Protocol`` ports. The composition root adapts the real
components (CRM bridge, live model / Redis, PostgreSQL) to them; tests use small fakes.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from routing.models import AuditEntry, CallerProfile, LiveSnapshot, Override, RouteRecord
from routing.rules import RuleSet


class PatientDirectory(Protocol):
    """Who is calling. Adapted from the CRM bridge's lookup (its Redis cache in front)."""

    async def lookup(self, phone_e164: str) -> CallerProfile | None:
        """The patient with this E.164 number, or None when unknown. May be slow or raise: the
        service bounds it with ``lookup_budget_ms`` and routes without it on timeout/error."""
        ...


class LiveState(Protocol):
    """Operators per queue right now. Adapted from ``callserver.core.model.LiveModel``
    (``logged_in_agents(queue)``, ``free_agents(queue)``) or from Redis hashes."""

    async def snapshot(self, queues: Collection[str]) -> LiveSnapshot:
        """Logged-in and free member interfaces and the estimated wait (seconds) of ``queues``.
        Bounded by ``live_budget_ms``; on timeout/error the service uses its fallback port."""
        ...


class DecisionLog(Protocol):
    """Where call tracking records go (PostgreSQL ``route_decisions``)."""

    def record(self, record: RouteRecord) -> None:
        """Queue ``record`` for writing. Must not block or do I/O on the caller's path."""
        ...

    async def get(self, uniqueid: str) -> RouteRecord | None:
        """The stored record of a call by its uniqueid or linkedid, or None."""
        ...


class OverrideStore(Protocol):
    """Persistence of supervisor overrides and their audit trail (shared by all instances)."""

    async def save(self, entry: AuditEntry) -> None:
        """Write an audit entry and the override's new state (created / deleted / expired).

        Raises StoreQueryError when the store refuses this entry for good (saving it again
        would fail again), any other StoreError when it may succeed later."""
        ...

    async def active(self, now: datetime) -> list[Override]:
        """Overrides not deleted and not expired at ``now``."""
        ...

    async def audit(self, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` audit entries, newest first."""
        ...


class RulesListener(Protocol):
    """Told about every rule set that took effect (start-up and each reload)."""

    async def rules_loaded(self, rules: RuleSet) -> None:
        """E.g. mirror campaigns/DIDs into PostgreSQL. Errors are logged, never fatal."""
        ...
