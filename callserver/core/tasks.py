"""Stopping the background tasks components own. Standard library only."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has really finished.

    The task's own CancelledError is absorbed (we asked for it); if the caller is cancelled
    while waiting, that cancellation propagates, never swallowed. A task that had failed with
    another exception is logged, so no error goes unseen.
    """
    if task is None:
        return
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("task %s had failed: %r", task.get_name(), exc, exc_info=exc)
