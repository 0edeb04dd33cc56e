"""Supervisor overrides at run time (e.g. all ``reception`` calls → bot for 30 minutes), with
expiry and an audit trail. In memory for the call path (no I/O while routing); persisted through
the ``OverrideStore`` port when one is given, and refreshed from it so that every instance applies
overrides created on another one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from dataclasses import replace
from datetime import datetime, timedelta

from callserver.core.text import clean_text, text_problem
from callserver.logs import escape_control
from callserver.store.errors import StoreQueryError
from routing.errors import OverrideError, OverrideNotFound
from routing.models import (
    DIGITS,
    MODES,
    SAFE_TOKEN,
    SCOPES,
    AuditEntry,
    Mode,
    Override,
    Scope,
    did_digits,
)
from routing.ports import OverrideStore
from routing.rules import RuleSet

log = logging.getLogger(__name__)

MAX_MINUTES = 7 * 24 * 60
AUDIT_KEEP = 1000


def _fail(field: str, message: str) -> OverrideError:
    return OverrideError(message=f"{field}: {message}", field=field)


def build_override(
    rules: RuleSet,
    raw: dict[str, object],
    *,
    actor: str,
    now: datetime,
) -> Override:
    """Validate an override request (the JSON body of ``POST /overrides``) against ``rules``.

    Keys: ``scope`` (all|queue|skill|campaign|did), ``value``, ``minutes`` (1..10080),
    ``mode``, ``queue``, ``priority`` (0..1000), ``note``. At least one of mode/queue/priority.
    Raises OverrideError naming the bad field.
    """
    unknown = set(raw) - {"scope", "value", "minutes", "mode", "queue", "priority", "note"}
    if unknown:
        raise _fail(sorted(unknown)[0], "unknown field")
    scope, value = _scope(raw)
    minutes = raw.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MINUTES:
        raise _fail("minutes", f"expected an integer 1..{MAX_MINUTES}")
    mode, queue, priority = _actions(rules, raw)
    note = raw.get("note", "")
    if not isinstance(note, str) or len(note) > 200:
        raise _fail("note", "expected a string of at most 200 characters")
    if (problem := text_problem(note)) is not None:
        raise _fail("note", problem)
    return Override(
        id="ov-" + secrets.token_hex(4),
        scope=scope,
        value=value,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
        created_by=escape_control(clean_text(actor))[:64] or "unknown",
        mode=mode,
        queue=queue,
        priority=priority,
        note=escape_control(note),
    )


def _scope(raw: dict[str, object]) -> tuple[Scope, str]:
    scope = raw.get("scope", "all")
    if scope not in SCOPES:
        raise _fail("scope", "expected one of " + "|".join(SCOPES))
    value = raw.get("value", "")
    if not isinstance(value, str) or (scope == "all") != (value == ""):
        raise _fail("value", "required for a scope other than 'all', empty for 'all'")
    if value and not (SAFE_TOKEN.fullmatch(value) or DIGITS.fullmatch(value)):
        raise _fail("value", "not a valid name")
    if scope == "did":
        value = did_digits(value) or value  # the form calls' DIDs have (8… → 7…)
    return scope, value


def _actions(rules: RuleSet, raw: dict[str, object]) -> tuple[Mode | None, str | None, int | None]:
    mode, queue, priority = raw.get("mode"), raw.get("queue"), raw.get("priority")
    if mode is None and queue is None and priority is None:
        raise _fail("mode", "give at least one of mode, queue, priority")
    if mode is not None and mode not in MODES:
        raise _fail("mode", "expected one of " + "|".join(MODES))
    if queue is not None and (not isinstance(queue, str) or queue not in rules.queues):
        raise _fail("queue", f"unknown queue {queue!r}")
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000
    ):
        raise _fail("priority", "expected an integer 0..1000")
    return mode, queue, priority


class OverrideBook:
    """The overrides in force on this instance, plus the audit trail.

    ``store_timeout`` (seconds) bounds each store call. When the store fails, a change still takes
    effect on this instance (a supervisor's emergency action must not wait for the database); the
    failure is logged, reported by ``add``/``remove`` returning ``persisted=False``, and the change
    is saved again on the next ``refresh`` (a refresh never drops a change not yet saved).
    A change the store refuses for good (``StoreQueryError``: retrying the same entry would fail
    again) is not retried: it is logged once, counted in ``refused``, and never holds back the
    changes after it; a refused override stays in force on this instance until it ends.
    """

    def __init__(self, store: OverrideStore | None = None, *, store_timeout: float = 2.0) -> None:
        self._store = store
        self._timeout = store_timeout
        self._overrides: dict[str, Override] = {}
        self._unsaved: dict[str, Override] = {}  # refused by the store: kept here, in force
        self._audit: deque[AuditEntry] = deque(maxlen=AUDIT_KEEP)
        self._pending: list[AuditEntry] = []
        self._changes = 0  # local add/remove count: a refresh read older than one is not used
        self._saving = 0  # store saves in flight
        self._outage_logged = False
        self.refused = 0
        """Changes the store refused for good (not persisted, not retried)."""

    def active(self, now: datetime) -> list[Override]:
        """Overrides in force at ``now`` (pure read, no I/O: used on the call path)."""
        return [o for o in self._overrides.values() if o.active(now)]

    async def add(self, override: Override) -> bool:
        """Put ``override`` in force and audit it. Returns whether the store persisted it."""
        self._overrides[override.id] = override
        self._changes += 1
        return await self._record(AuditEntry(override.created_at, "create", override.created_by,
                                             override))  # fmt: skip

    async def remove(self, override_id: str, *, actor: str, now: datetime) -> bool:
        """End an override now. Raises OverrideNotFound. Returns whether the store persisted it."""
        if override_id not in self._overrides:
            await self.refresh(now)  # created on another instance since the last refresh?
        override = self._overrides.pop(override_id, None)
        self._unsaved.pop(override_id, None)
        if override is None or not override.active(now):
            raise OverrideNotFound(message=f"no active override {override_id!r}", id=override_id)
        ended = replace(override, expires_at=now)
        self._changes += 1
        actor = escape_control(clean_text(actor))[:64]
        return await self._record(AuditEntry(now, "delete", actor, ended))

    async def sweep(self, now: datetime) -> int:
        """Drop expired overrides, auditing each as ``expire``; returns how many expired."""
        expired = [o for o in self._overrides.values() if not o.active(now)]
        for o in expired:
            del self._overrides[o.id]
            self._unsaved.pop(o.id, None)
            await self._record(AuditEntry(o.expires_at, "expire", "system", o))
        return len(expired)

    async def refresh(self, now: datetime) -> None:
        """Replace the in-memory set with the store's active overrides (other instances' too),
        plus this instance's overrides the store refused. Raises nothing: a failing store keeps
        the current set (logged once per outage)."""
        if self._store is None or not await self._retry_pending():
            return
        changes = self._changes
        try:
            async with asyncio.timeout(self._timeout):
                overrides = await self._store.active(now)
        except Exception as exc:
            log.warning("routing overrides not refreshed from the store: %r", exc)
            return
        if self._saving or self._changes != changes:
            return  # a local change raced this read: it may predate it; the next refresh syncs
        merged = {o.id: o for o in overrides}
        merged.update((k, o) for k, o in self._unsaved.items() if o.active(now))
        self._overrides = merged

    async def _retry_pending(self) -> bool:
        """Save the changes a failing store missed, in order; False when it still fails."""
        pending, self._pending = self._pending, []
        for i, entry in enumerate(pending):
            if await self._save(entry, retry=True) == "failed":
                self._pending = pending[i:] + self._pending
                return False
        if pending and self._outage_logged:
            log.warning("routing overrides: store back, %d change(s) saved", len(pending))
        self._outage_logged = False
        return True

    async def audit(self, limit: int = 100) -> list[AuditEntry]:
        """Newest first: from the store when there is one (all instances), else this instance."""
        if self._store is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._store.audit(limit)
            except Exception as exc:
                log.warning("routing override audit read from memory, store failed: %r", exc)
        return list(reversed(self._audit))[:limit]

    async def _record(self, entry: AuditEntry) -> bool:
        self._audit.append(entry)
        log.info(
            "routing override %s %s by %s: %s=%s mode=%s queue=%s until %s",
            entry.action, entry.override.id, entry.actor, entry.override.scope,
            entry.override.value, entry.override.mode, entry.override.queue,
            entry.override.expires_at.isoformat(),
        )  # fmt: skip
        if self._store is None:
            return False
        if self._pending:
            self._pending.append(entry)  # keep the order of changes for the retry
            return False
        outcome = await self._save(entry)
        if outcome == "failed":
            self._pending.append(entry)
        return outcome == "saved"

    async def _save(self, entry: AuditEntry, *, retry: bool = False) -> str:
        """'saved', 'refused' (for good: not to be retried) or 'failed' (retry later)."""
        assert self._store is not None
        self._saving += 1
        try:
            async with asyncio.timeout(self._timeout):
                await self._store.save(entry)
        except StoreQueryError as exc:
            self.refused += 1
            if entry.action == "create":
                self._unsaved[entry.override.id] = entry.override
            log.error("routing override %s %s refused by the store, kept on this instance only"
                      " and not retried: %s", entry.action, entry.override.id, exc)  # fmt: skip
            return "refused"
        except Exception as exc:
            if not (retry and self._outage_logged):
                log.error("routing override %s %s not persisted (retried on each refresh): %r",
                          entry.action, entry.override.id, exc)  # fmt: skip
            self._outage_logged = True
            return "failed"
        finally:
            self._saving -= 1
        return "saved"
