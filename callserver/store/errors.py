"""Errors of the storage adapters (PostgreSQL and Redis).

Library exceptions (asyncpg, redis-py, ``OSError``, ``TimeoutError``) never leave ``store``:
they are translated at the edge (see ``postgres.translate_error``) into this hierarchy::

    StoreError
    ├── StoreUnavailable        the server cannot be reached now; retrying later may succeed
    │   └── StoreTimeout        an operation did not finish within its deadline
    ├── StoreQueryError         the server refused the statement (bad data, schema mismatch …)
    │   └── StoreConflict       a unique/foreign key constraint was violated
    ├── StoreConfigError        a DSN or client option is invalid; retrying will not help
    └── LiveStateError          a Redis operation of the live state failed (any cause)
"""

from __future__ import annotations

from callserver.errors import CallserverError, ErrorCategory


class StoreError(CallserverError):
    """Base of every storage error. ``details`` carries ``operation`` and, when known,
    ``sqlstate``."""

    error_id = "store-error"
    public_message = "storage error; see the server log"


class StoreUnavailable(StoreError):
    """PostgreSQL is unreachable or shutting down, or the connection broke: transient."""

    error_id = "store-unavailable"
    category = ErrorCategory.UNAVAILABLE


class StoreTimeout(StoreUnavailable):
    """An operation did not finish within its deadline (seconds in ``details['timeout']``
    when known)."""

    error_id = "store-timeout"


class StoreQueryError(StoreError):
    """The server rejected a statement. Retrying the same statement will fail again."""

    error_id = "store-query-failed"


class StoreConflict(StoreQueryError):
    """A constraint (unique, foreign key, check) was violated."""

    error_id = "store-conflict"
    category = ErrorCategory.CONFLICT
    public_message = "the request conflicts with stored data"


class StoreConfigError(StoreError):
    """The DSN or a client option is invalid."""

    error_id = "store-config-invalid"


class LiveStateError(StoreError):
    """Redis (live state, pub/sub) failed or did not answer within the deadline."""

    error_id = "live-state-failed"
    category = ErrorCategory.UNAVAILABLE
