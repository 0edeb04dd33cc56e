"""Text that PostgreSQL (``text``, ``jsonb``) and UTF-8 can hold: one place that knows what is not.

PostgreSQL refuses the NUL character in ``text`` and ``jsonb`` (also as the JSON escape
``\\u0000``), and asyncpg cannot encode a lone UTF-16 surrogate (``\\ud83d``: half an emoji, which
JSON bodies, ``surrogateescape``-decoded headers and cut strings can carry) — one such value used to
fail a request with a 5xx or make a whole write fail. Two ways to deal with it:

* ``clean_text`` / ``clean_json`` for text we must keep whatever it is (Asterisk's caller names
  and hangup causes, a CRM's card): NUL removed, lone surrogates → U+FFFD, cut to a limit;
* ``text_problem`` / ``first_bad_text`` for input a person can correct (HTTP bodies and query
  strings): the caller answers 400 naming the field instead of storing a changed value.

Pure: standard library only.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"
MAX_DEPTH = 32
"""``first_bad_text``/``clean_json`` stop descending below this nesting (a JSON body is bounded)."""


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def clean_text(value: str, max_len: int | None = None) -> str:
    """``value`` without NUL characters, each lone surrogate replaced by U+FFFD, cut to
    ``max_len`` characters (no limit when None). Never raises; ASCII input without NUL that
    fits is returned as is (cheap enough for the AMI hot path)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii() and _has_surrogate(value):
        # through UTF-16: a high+low pair written as two code points becomes the one character
        # it stands for, each lone half becomes U+FFFD
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if max_len is not None and len(value) > max_len:
        value = value[:max_len]
    return value


def clean_json(value: Any, max_len: int | None = None, _depth: int = 0) -> Any:
    """``value`` (JSON-like: dict, list, tuple, str, scalars) with every string, keys included,
    passed through ``clean_text`` (``max_len`` applies to each string). Lists come back as lists.
    Nesting deeper than ``MAX_DEPTH`` is replaced by None."""
    if isinstance(value, str):
        return clean_text(value, max_len)
    if _depth >= MAX_DEPTH and isinstance(value, dict | list | tuple):
        return None
    if isinstance(value, dict):
        return {
            clean_text(str(k), max_len): clean_json(v, max_len, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [clean_json(v, max_len, _depth + 1) for v in value]
    return value


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as it is ('contains a NUL character', 'contains an
    invalid character (a lone surrogate)'), or None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii() and _has_surrogate(value):
        return "contains an invalid character (a lone surrogate, e.g. half an emoji)"
    return None


def first_bad_text(value: Any, path: str = "", _depth: int = 0) -> tuple[str, str] | None:
    """The first string (keys included) in a JSON-like ``value`` that ``text_problem`` refuses,
    as ``(field, reason)``; ``field`` is the dotted path (``patient.notes``, ``phones[1]``;
    ``path`` itself for a bare string, ``body`` when it is empty). None when all are fine.
    Nesting deeper than ``MAX_DEPTH`` is reported as ``(path, 'nested too deeply')``."""
    if isinstance(value, str):
        problem = text_problem(value)
        return None if problem is None else (path or "body", problem)
    if _depth >= MAX_DEPTH and isinstance(value, dict | list | tuple):
        return (path or "body", "nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            name = clean_text(str(key), 100)
            if (problem := text_problem(str(key))) is not None:
                return (f"{path}.{name}" if path else name, "name " + problem)
            found = first_bad_text(item, f"{path}.{name}" if path else name, _depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = first_bad_text(item, f"{path or 'body'}[{i}]", _depth + 1)
            if found is not None:
                return found
    return None
