"""Reading a JSON request body the same way in every domain: bounded, strict UTF-8, any
malformed or hostile body (bad UTF-8, not JSON, nesting deep enough to exhaust recursion, huge
numbers) a 400 naming ``body``, a body over the endpoint's limit a 413, never a 500.

Both answers have the one error body (``callserver.web.middlewares``)::

    400 {"error_id": "bad-body", "message": "body must be JSON (UTF-8)",
         "details": {"field": "body"}}
    413 {"error_id": "body-too-large", "message": "body larger than 65536 bytes",
         "details": {"field": "body", "max_bytes": 65536}}
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from callserver.errors import CallserverError, ErrorCategory

MAX_DIGITS = 400
"""Longer integer literals are refused (Python's int parsing of huge numbers is quadratic)."""


class BadBody(CallserverError):
    """The request body is not JSON, or not the JSON object the endpoint takes;
    ``details['field']`` is ``body``."""

    error_id = "bad-body"
    category = ErrorCategory.INVALID


class BodyTooLarge(CallserverError):
    """The request body is larger than the endpoint takes; ``details['field']`` is ``body``,
    ``details['max_bytes']`` the limit."""

    error_id = "body-too-large"
    category = ErrorCategory.TOO_LARGE


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError("number too long")
    return int(text)


def _too_large(max_bytes: int) -> BodyTooLarge:
    return BodyTooLarge(
        message=f"body larger than {max_bytes} bytes", field="body", max_bytes=max_bytes
    )


async def _read(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, however many pieces it arrives in (``content.read(n)`` returns what
    has arrived so far, not ``n`` bytes); raises BodyTooLarge past ``max_bytes``."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(max_bytes + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
    return b"".join(chunks)


async def raw_body(request: web.Request, *, max_bytes: int) -> bytes:
    """The whole body as bytes (an upload); raises BodyTooLarge (413) past ``max_bytes``."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    return await _read(request, max_bytes)


async def json_body(request: web.Request, *, max_bytes: int) -> Any:
    """The parsed JSON body (``{}`` when empty). Raises BodyTooLarge (413) when it is larger
    than ``max_bytes``; BadBody (400) when it is not UTF-8, not JSON, nested too deeply or
    holds an absurdly long number."""
    raw = await raw_body(request, max_bytes=max_bytes)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"), parse_int=_int)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadBody(message="body must be JSON (UTF-8)", field="body") from None


async def json_object(request: web.Request, *, max_bytes: int) -> dict[str, Any]:
    """Like ``json_body``, for endpoints that take a JSON object (``{}`` when empty); any
    other JSON value (a list, a string, a number) raises BadBody (400) too."""
    data = await json_body(request, max_bytes=max_bytes)
    if not isinstance(data, dict):
        raise BadBody(message="body must be a JSON object", field="body")
    return data
