"""PostgreSQL access shared by the store: pool creation with deadlines and error translation.

Every asyncpg / socket / timeout error is translated here into the ``StoreError`` hierarchy
(``callserver.store.errors``) so that callers never import asyncpg to handle failures::

    with store_errors("recent calls"):
        async with asyncio.timeout(5.0):
            rows = await pool.fetch(...)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

from callserver.store.errors import (
    StoreConfigError,
    StoreConflict,
    StoreError,
    StoreQueryError,
    StoreTimeout,
    StoreUnavailable,
)

_TRANSIENT_PG = (
    asyncpg.PostgresConnectionError,  # class 08: connection exceptions
    asyncpg.exceptions.OperatorInterventionError,  # class 57: admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
)
_CONFLICT_PG = (asyncpg.IntegrityConstraintViolationError,)


def translate_error(exc: BaseException, *, operation: str) -> StoreError:
    """Map a library exception to a ``StoreError`` (does not raise; the caller chains it).

    ``TimeoutError`` → StoreTimeout; ``OSError``, connection-class and shutdown-class PostgreSQL
    errors, and asyncpg interface errors (closed connection) → StoreUnavailable; bad client
    options → StoreConfigError; values asyncpg cannot encode → StoreQueryError; constraint
    violations → StoreConflict; any other server error → StoreQueryError.
    ``details``: ``operation``, plus ``sqlstate`` for server errors.
    """
    if isinstance(exc, StoreError):
        return exc
    text = f"{operation}: {type(exc).__name__}: {exc!s}".replace("\r", "\\r").replace("\n", "\\n")
    if isinstance(exc, TimeoutError):
        return StoreTimeout(message=f"{operation}: timed out", operation=operation)
    if isinstance(exc, asyncpg.exceptions.ClientConfigurationError):
        return StoreConfigError(message=text, operation=operation)
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        # asyncpg's client-side DataError: a value it cannot encode; retrying will not help
        return StoreQueryError(message=text, operation=operation)
    if isinstance(exc, OSError | asyncpg.InterfaceError):
        return StoreUnavailable(message=text, operation=operation)
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None)
        if isinstance(exc, _TRANSIENT_PG):
            return StoreUnavailable(message=text, operation=operation, sqlstate=sqlstate)
        if isinstance(exc, _CONFLICT_PG):
            return StoreConflict(message=text, operation=operation, sqlstate=sqlstate)
        return StoreQueryError(message=text, operation=operation, sqlstate=sqlstate)
    return StoreError(message=text, operation=operation)


@contextmanager
def store_errors(operation: str) -> Iterator[None]:
    """Re-raise library errors raised inside the block as ``StoreError`` (chained).

    Handles asyncpg errors, ``OSError`` and ``TimeoutError``; ``CancelledError`` and anything
    else pass through untouched.
    """
    try:
        yield
    except StoreError:
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise translate_error(exc, operation=operation) from exc


class NoResetConnection(asyncpg.Connection):
    """A pool connection released without asyncpg's reset round trip (``RESET ALL``,
    ``UNLISTEN *``, ``pg_advisory_unlock_all()`` … on every release: a tenth of the pipeline's
    CPU). callserver keeps no session state on pooled connections: no SET, no LISTEN, and the
    one advisory lock (migrations) is released in a ``finally``."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 5.0,
    command_timeout: float = 10.0,
    **kwargs: Any,
) -> asyncpg.Pool:
    """Create an asyncpg pool and open its first ``min_size`` connections.

    ``connect_timeout`` (seconds) bounds each connection attempt, ``command_timeout`` (seconds)
    is the default per-statement deadline of the pool's connections; the whole creation is
    bounded by ``connect_timeout`` × (``min_size`` + 1). Extra ``kwargs`` go to
    ``asyncpg.create_pool`` (e.g. ``connection_class``).
    Raises StoreUnavailable / StoreTimeout when PostgreSQL cannot be reached, StoreConfigError for
    a bad DSN, StoreQueryError when the server refuses the login (e.g. unknown database).
    """
    with store_errors("connect to PostgreSQL"):
        async with asyncio.timeout(connect_timeout * (min_size + 1)):
            pool: asyncpg.Pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                command_timeout=command_timeout,
                **{"connection_class": NoResetConnection, **kwargs},
            )
    return pool


async def ping(pool: asyncpg.Pool, *, deadline: float = 2.0) -> float:
    """Round trip ``SELECT 1`` through ``pool``; returns its latency in seconds.

    For health checks. Raises StoreUnavailable / StoreTimeout (after ``deadline`` seconds).
    """
    started = time.perf_counter()
    with store_errors("ping PostgreSQL"):
        async with asyncio.timeout(deadline):
            await pool.fetchval("SELECT 1")
    return time.perf_counter() - started
