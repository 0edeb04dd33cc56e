"""Request bodies every JSON endpoint must refuse the same way (``callserver.web.body``): the
cases and the one check of the answer, shared by the domains' HTTP tests."""

from __future__ import annotations

from typing import Any

JSON = {"Content-Type": "application/json"}


def cases(max_bytes: int) -> list[tuple[str, bytes, int, str]]:
    """``(name, body, status, error_id)`` for an endpoint taking at most ``max_bytes``."""
    return [
        ("not JSON", b'{"phone": ', 400, "bad-body"),
        ("not UTF-8", b'{"phone": "\xff"}', 400, "bad-body"),
        ("a 500-digit number", b'{"minutes": ' + b"9" * 500 + b"}", 400, "bad-body"),
        ("a list", b'["+79161234567"]', 400, "bad-body"),
        ("a string", b'"+79161234567"', 400, "bad-body"),
        ("too large", b'{"note": "' + b"x" * max_bytes + b'"}', 413, "body-too-large"),
    ]


def check_refusal(name: str, status: int, answer: Any, expected: int, error_id: str) -> None:
    """The one error body naming ``body``, with ``expected`` status and ``error_id``."""
    assert status == expected, (name, answer)
    assert set(answer) == {"error_id", "message", "details"}, (name, answer)
    assert answer["error_id"] == error_id, (name, answer)
    assert answer["details"]["field"] == "body", (name, answer)
    assert answer["message"].startswith("body"), (name, answer)
