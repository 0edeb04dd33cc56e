"""Holding an attempt's lease while it dials: renewed every third of ``lease_s``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from callbacks.store import CallbackStore
from callserver.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def hold_lease(
    store: CallbackStore, attempt_id: str, owner: str, lease_s: float, clock: Callable[[], float]
) -> AsyncIterator[None]:
    """Renew ``attempt_id``'s lease while the body runs (a failed renewal is logged: the lease
    may lapse and the attempt be reconciled by another instance, which adopts the live call)."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                await store.renew(attempt_id, owner, clock() + lease_s)
            except Exception as exc:
                log.warning("lease of attempt %s not renewed: %r", attempt_id, exc)

    task = asyncio.create_task(renew(), name=f"lease-{attempt_id}")
    try:
        yield
    finally:
        await cancel_and_wait(task)
