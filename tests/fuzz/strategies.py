"""Hypothesis strategies for hostile HTTP input: JSON bodies of every wrong shape, raw bytes,
query strings and path segments with NUL, lone surrogates, huge numbers and huge strings."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

FIELDS = (
    "phone", "reason", "note", "comment", "scope", "value", "minutes", "mode", "queue",
    "priority", "full_name", "phones", "birth_date", "status", "starts_at", "patient_id",
    "doctor_id", "due_at", "request_id", "call_id", "external_id", "vip", "language",
    "result", "state", "limit", "offset", "id", "name", "password", "username", "extension",
    "duration_min", "clinic", "doctor", "segment", "notes", "balance", "query", "since",
)  # fmt: skip
"""Field names the routes read (so fuzzed values reach the validators, not just unknown keys)."""

# every code point, lone surrogates included (half an emoji in a JSON \\ud83d escape)
any_char = st.characters(codec=None, blacklist_categories=())
hostile_text = st.one_of(
    st.text(any_char, max_size=40),
    st.sampled_from(["\x00", "a\x00b", "\ud83d", "\udfff x", "\r\nX-Injected: 1", "'; DROP--",
                     "<script>", "%00", "..", "+79161234567", "89161234567", "", " ", "NaN"]),
    st.integers(0, 300_000).map(lambda n: "я" * n),
)  # fmt: skip
huge_int = st.one_of(
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 10**30, -(10**30), 10**4000]),
)
scalars = st.one_of(
    st.none(), st.booleans(), huge_int,
    st.floats(allow_nan=True, allow_infinity=True), hostile_text,
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), hostile_text), inner, max_size=6),
    ),
    max_leaves=20,
)


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"phone":' * depth + b"1" + b"}" * depth


deep = st.builds(_nested, st.integers(1, 60_000), st.sampled_from(["list", "dict"]))
field_bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, min_size=1, max_size=8)


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()  # ensure_ascii: lone surrogates travel as \\udXXX


bodies = st.one_of(
    field_bodies.map(_dump),
    json_values.map(_dump),
    deep,
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"null", b"[]", b'"x"', b"1e999999", b"-", b"\xff\xfe{}",
                     b'{"phone": "\\u0000"}', b'{"phone": "\\ud83d"}',
                     b'{"a": 1' + b"0" * 5000 + b"}"]),
    st.integers(900_000, 1_200_000).map(lambda n: b'{"note": "' + b"x" * n + b'"}'),
)  # fmt: skip

# query values go into the URL already percent-encoded: raw bytes, so invalid UTF-8 too
short_text = st.one_of(
    st.text(any_char, max_size=40), hostile_text.filter(lambda s: len(s) < 300)
)
raw_query_value = st.one_of(
    short_text.map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")),
    st.sampled_from(["%00", "%ED%A0%BD", "%FF", "-1", "0", "1e400", "9" * 40, "1.5",
                     "2026-13-45", "%", "%%", "x" * 1_500]),
)  # fmt: skip
queries = st.dictionaries(st.sampled_from(FIELDS), raw_query_value, max_size=4)
path_values = st.one_of(
    st.integers(0, 10**40).map(str),
    raw_query_value,
)
