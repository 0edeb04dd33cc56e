"""Row building for the calls tables and the store's error translation (pure, no sockets)."""

from __future__ import annotations

import json

import asyncpg
import pytest

from callserver.core.events import AgentRinging, CallSnapshot, CallStarted
from callserver.store.call_rows import (
    CALL_COLUMNS,
    call_arrays,
    clean,
    event_arrays,
    event_fields,
    event_key,
)
from callserver.store.errors import (
    StoreConfigError,
    StoreConflict,
    StoreError,
    StoreQueryError,
    StoreTimeout,
    StoreUnavailable,
)
from callserver.store.postgres import store_errors, translate_error

SNAP = CallSnapshot("1.1", "1.1", "inbound", "queued", "79161234567", "Ив\x00анов", "749512",
                    "source-a", "reception", "", "", 1_790_000_000.0,
                    variables=(("ROUTE_REASON", "x\x00y"),))  # fmt: skip


def test_event_key_is_stable_for_a_replay_and_distinct_for_ringall() -> None:
    a = AgentRinging(at=5.25, call=SNAP, queue="reception", agent="PJSIP/op101")
    b = AgentRinging(at=5.25, call=SNAP, queue="reception", agent="PJSIP/op102")
    replay = AgentRinging(at=5.25, call=SNAP, queue="reception", agent="PJSIP/op101")
    assert event_key(a, event_fields(a)) == event_key(replay, event_fields(replay))
    assert event_key(a, event_fields(a)) != event_key(b, event_fields(b))
    assert set(event_fields(a)) == {"queue", "agent", "agent_name", "agent_channel"}


def test_rows_strip_nul_and_keep_everything_else() -> None:
    assert clean({"a\x00": ["b\x00", 1, None]}) == {"a": ["b", 1, None]}
    (ids, *rest) = call_arrays([(SNAP, 7.5)])
    row = dict(zip((name for name, _ in CALL_COLUMNS), (ids, *rest), strict=True))
    assert row["caller_name"] == ["Иванов"]
    assert json.loads(row["variables"][0]) == {"ROUTE_REASON": "xy"}
    assert row["updated_at"] == [7.5] and row["queued_at"] == [None]
    call_ids, types, ats, keys, payloads = event_arrays([CallStarted(at=1.0, call=SNAP)])
    assert (call_ids, types, ats) == (["1.1"], ["CallStarted"], [1.0])
    assert json.loads(payloads[0]) == {"channel": "", "state": "queued"}
    assert len(keys[0]) == 32


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), StoreTimeout),
        (ConnectionRefusedError(111, "refused"), StoreUnavailable),
        (asyncpg.ConnectionDoesNotExistError("closed"), StoreUnavailable),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), StoreUnavailable),
        (asyncpg.exceptions.TooManyConnectionsError("too many"), StoreUnavailable),
        (asyncpg.InterfaceError("connection is closed"), StoreUnavailable),
        (asyncpg.exceptions.UniqueViolationError("dup"), StoreConflict),
        (asyncpg.exceptions.UndefinedTableError("no table"), StoreQueryError),
        (asyncpg.exceptions.DataError("bad value"), StoreQueryError),
        (asyncpg.exceptions.ClientConfigurationError("bad dsn"), StoreConfigError),
    ],
)
def test_library_errors_are_translated(exc: BaseException, expected: type[StoreError]) -> None:
    translated = translate_error(exc, operation="op")
    assert type(translated) is expected
    assert translated.details["operation"] == "op"
    with pytest.raises(expected) as info, store_errors("op"):
        raise exc
    assert info.value.__cause__ is exc


def test_error_text_cannot_forge_log_lines() -> None:
    err = translate_error(asyncpg.exceptions.UndefinedTableError("a\r\nFAKE"), operation="op")
    assert "\n" not in str(err) and "\r" not in str(err)
