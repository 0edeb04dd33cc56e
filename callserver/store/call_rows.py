"""Rows and batch SQL for ``calls`` and ``call_events`` (used by ``CallWriter``).

A batch is written with two statements whatever its size: one ``INSERT … SELECT FROM unnest(…)
ON CONFLICT DO UPDATE`` for the latest snapshot of each call and one ``… ON CONFLICT DO NOTHING``
for the event rows. Times travel as POSIX seconds (``float8``) and become ``timestamptz`` in SQL.

The upsert *merges*: a newer snapshot never replaces a stored fact with less (``MERGE_RULES``).
A model that rebuilt a call from Asterisk's channel list alone (after a restart, PostgreSQL
unreachable at the resync) knows no DID, queue or routing variables and may see the operator's
channel as the caller; what was stored before is kept, new facts are added.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from callserver.core.events import CallEvent, CallSnapshot
from callserver.core.phone import try_normalize
from callserver.core.text import clean_text, text_problem

MAX_TEXT = 4000
"""Characters kept of any one text value in a row (the AMI edge already limits caller names)."""

# (column, kind): kind is a PostgreSQL array element type, or "ts" (POSIX seconds →
# timestamptz) or "jsonb" (JSON text → jsonb). Order = the snapshot's fields + updated_at.
CALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "text"),
    ("direction", "text"),
    ("caller", "text"),
    ("caller_e164", "text"),
    ("caller_name", "text"),
    ("did", "text"),
    ("ad_source", "text"),
    ("queue", "text"),
    ("agent", "text"),
    ("agent_name", "text"),
    ("state", "text"),
    ("started_at", "ts"),
    ("queued_at", "ts"),
    ("answered_at", "ts"),
    ("ended_at", "ts"),
    ("wait_seconds", "float8"),
    ("talk_seconds", "float8"),
    ("hold_seconds", "float8"),
    ("abandon_position", "int4"),
    ("hangup_by", "text"),
    ("hangup_cause", "text"),
    ("variables", "jsonb"),
    ("agents", "jsonb"),
    ("updated_at", "ts"),
)

_KEEP_TEXT = "COALESCE(NULLIF(EXCLUDED.{0}, ''), calls.{0})"
_EARLIEST = "LEAST(calls.{0}, EXCLUDED.{0})"
_KNOWN = "COALESCE(EXCLUDED.{0}, calls.{0})"
MERGE_RULES: dict[str, str] = {
    **{name: _KEEP_TEXT for name in ("caller", "caller_e164", "caller_name", "did",
                                      "ad_source", "queue", "agent", "agent_name")},
    "direction": "CASE WHEN calls.direction = 'inbound' THEN 'inbound' ELSE EXCLUDED.{0} END",
    "started_at": _EARLIEST,
    "queued_at": _EARLIEST,
    "answered_at": _EARLIEST,
    **{name: _KNOWN for name in ("wait_seconds", "talk_seconds", "hold_seconds",
                                 "abandon_position")},
    "variables": "calls.{0} || EXCLUDED.{0}",
    "agents": "CASE WHEN jsonb_array_length(EXCLUDED.{0}) >= jsonb_array_length(calls.{0})"
              " THEN EXCLUDED.{0} ELSE calls.{0} END",
}  # fmt: skip
"""Column → SQL of its merged value; columns not named take the newer snapshot's value
(state, end, who hung up: a newer snapshot knows better). Text facts are never emptied, a
call that arrived inbound stays inbound, the earliest known times win, numbers are never
nulled, variables are merged (newer values win), the longer agent history wins."""


def _array_type(kind: str) -> str:
    return {"ts": "float8", "jsonb": "text"}.get(kind, kind) + "[]"


def _select_expr(name: str, kind: str) -> str:
    if kind == "ts":
        return f"to_timestamp(t.{name})"
    if kind == "jsonb":
        return f"t.{name}::jsonb"
    return f"t.{name}"


def _upsert_calls_sql() -> str:
    names = [name for name, _ in CALL_COLUMNS]
    arrays = ", ".join(f"${i}::{_array_type(k)}" for i, (_, k) in enumerate(CALL_COLUMNS, 1))
    select = ", ".join(_select_expr(n, k) for n, k in CALL_COLUMNS)
    updates = ", ".join(
        f"{n} = {MERGE_RULES.get(n, 'EXCLUDED.{0}').format(n)}" for n in names if n != "id"
    )
    return (
        f"INSERT INTO calls ({', '.join(names)})\n"
        f"SELECT {select}\n"
        f"FROM unnest({arrays}) AS t({', '.join(names)})\n"
        f"ON CONFLICT (id) DO UPDATE SET {updates}\n"
        "WHERE calls.updated_at <= EXCLUDED.updated_at"
    )


UPSERT_CALLS = _upsert_calls_sql()
INSERT_EVENTS = (
    "INSERT INTO call_events (call_id, type, at, key, payload)\n"
    "SELECT t.call_id, t.type, to_timestamp(t.at), t.key, t.payload::jsonb\n"
    "FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $5::text[])"
    " AS t(call_id, type, at, key, payload)\n"
    "ON CONFLICT (call_id, key) DO NOTHING"
)


def clean(value: Any) -> Any:
    """``value`` with every string passed through ``clean_text``: NUL removed, lone surrogates
    → U+FFFD (PostgreSQL text and jsonb reject the one, asyncpg cannot encode the other; caller
    names are untrusted), each string cut to ``MAX_TEXT`` characters."""
    if isinstance(value, str):
        return clean_text(value, MAX_TEXT)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def _dumps(value: Any) -> str:
    """Compact JSON that PostgreSQL's jsonb takes. The AMI edge cleans Asterisk's text already,
    so the text is checked once as a whole and cleaned value by value only when it needs it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if "\\u0000" in text or text_problem(text) is not None:
        text = json.dumps(clean(value), ensure_ascii=False, separators=(",", ":"), default=str)
    return text


def event_fields(event: CallEvent) -> dict[str, Any]:
    """The event's own fields: everything except ``at`` and the ``call`` snapshot."""
    fields: dict[str, Any] = {}
    for cls in reversed(type(event).__mro__):
        for name in getattr(cls, "__slots__", ()):
            if name not in ("at", "call") and name[0] != "_":
                fields[name] = getattr(event, name)
    return fields


def event_key(event: CallEvent, fields: dict[str, Any]) -> str:
    """Stable identity of an event: the same event replayed gives the same key; two agents rung
    at the same instant (ringall) give different keys."""
    text = _dumps([event.type, repr(event.at), fields])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def call_arrays(latest: Sequence[tuple[CallSnapshot, float]]) -> list[list[Any]]:
    """Column arrays for ``UPSERT_CALLS`` from (snapshot, updated_at) pairs, one per call."""
    columns: list[list[Any]] = [[] for _ in CALL_COLUMNS]
    for snapshot, updated_at in latest:
        row = snapshot.to_dict()
        row["updated_at"] = updated_at
        row["caller_e164"] = try_normalize(snapshot.caller) or ""
        for column, (name, kind) in zip(columns, CALL_COLUMNS, strict=True):
            value = row[name]
            if kind == "jsonb":
                value = _dumps(value)
            elif kind == "text":
                value = clean(value)
            column.append(value)
    return columns


def event_arrays(events: Sequence[CallEvent]) -> list[list[Any]]:
    """Column arrays for ``INSERT_EVENTS``; ``payload`` = own fields + the call state after."""
    call_ids: list[str] = []
    types: list[str] = []
    ats: list[float] = []
    keys: list[str] = []
    payloads: list[str] = []
    for event in events:
        fields = event_fields(event)
        call_ids.append(clean(event.call.id))
        types.append(event.type)
        ats.append(event.at)
        keys.append(event_key(event, fields))
        payloads.append(_dumps({**fields, "state": event.call.state}))
    return [call_ids, types, ats, keys, payloads]
