"""callserver.core.text: what PostgreSQL cannot hold is cleaned or named (issue 9, defect 5)."""

from __future__ import annotations

import pytest

from callserver.core.text import clean_json, clean_text, first_bad_text, text_problem


@pytest.mark.parametrize(
    ("raw", "limit", "clean"),
    [
        ("Иванов", None, "Иванов"),
        ("a\x00b\x00", None, "ab"),
        ("cut inside an emoji \ud83d", None, "cut inside an emoji \ufffd"),
        ("\ud83d\ude00 a pair written as two halves", None, "😀 a pair written as two halves"),
        ("\udcff surrogateescape", None, "\ufffd surrogateescape"),
        ("Я" * 500, 200, "Я" * 200),
        ("ok", 0, ""),
    ],
)
def test_clean_text(raw: str, limit: int | None, clean: str) -> None:
    assert clean_text(raw, limit) == clean
    clean_text(raw, limit).encode("utf-8")  # always encodable


def test_clean_json_cleans_keys_and_nested_values() -> None:
    value = {"a\x00": ["\ud83d", 1, None, {"b": ("x\x00",)}], "n": 2.5}
    assert clean_json(value) == {"a": ["\ufffd", 1, None, {"b": ["x"]}], "n": 2.5}


def test_problems_are_named_with_their_field_path() -> None:
    assert text_problem("Иванов 🙂") is None
    assert text_problem("a\x00") == "contains a NUL character"
    assert "surrogate" in (text_problem("\ud83d") or "")
    body = {"name": "ok", "phones": ["+79161234567", "\ud83d"], "card": {"notes": "\x00"}}
    assert first_bad_text(body) == ("phones[1]", text_problem("\ud83d"))
    assert first_bad_text({"card": {"notes": "\x00"}}) == ("card.notes", "contains a NUL character")
    assert first_bad_text({"k\x00": 1}) == ("k", "name contains a NUL character")
    assert first_bad_text("\x00", "q") == ("q", "contains a NUL character")
    assert first_bad_text({"a": [1, 2.0, None, True]}) is None
    deep: object = "x"
    for _ in range(100):
        deep = [deep]
    assert first_bad_text(deep) == ("body" + "[0]" * 32, "nested too deeply")
