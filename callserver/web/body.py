"""Reading a JSON request body the same way in every domain: bounded, strict UTF-8, any
malformed or hostile body (bad UTF-8, not JSON, nesting deep enough to exhaust recursion, huge
numbers) a 400 naming ``body``, never a 500."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from callserver.errors import CallserverError, ErrorCategory

MAX_DIGITS = 400
"""Longer integer literals are refused (Python's int parsing of huge numbers is quadratic)."""


class BadBody(CallserverError):
    """The request body is too large or not JSON; ``details['field']`` is ``body``."""

    error_id = "bad-body"
    category = ErrorCategory.INVALID


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError("number too long")
    return int(text)


async def json_body(request: web.Request, *, max_bytes: int) -> Any:
    """The parsed JSON body (``{}`` when empty). Raises BadBody (400) when it is larger than
    ``max_bytes``, not UTF-8, not JSON, nested too deeply or holds an absurdly long number."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadBody(message=f"body larger than {max_bytes} bytes", field="body")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise BadBody(message=f"body larger than {max_bytes} bytes", field="body")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"), parse_int=_int)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadBody(message="body must be JSON (UTF-8)", field="body") from None


