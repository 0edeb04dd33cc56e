"""HMAC-SHA256 signature of webhook bodies (the receiving side's check is ``verify``).

Header ``X-Callserver-Signature: t=<unix seconds>,v1=<hex>`` where
``hex = HMAC_SHA256(secret, "<t>." + raw body bytes)``. The timestamp lets the receiver reject
replays older than a tolerance (300 s by default). Pure: standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Callserver-Signature"


def sign(secret: str, body: bytes, *, now: float | None = None) -> str:
    """Header value for ``body`` signed at ``now`` (POSIX seconds; default: the clock)."""
    stamp = int(time.time() if now is None else now)
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance: float = 300.0, now: float | None = None
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds.

    Never raises for a malformed header: ``t`` must be ASCII digits (at most 12), and the MAC is
    compared as bytes in constant time (``compare_digest`` raises on non-ASCII ``str``).
    """
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, value)
    stamp, mac = fields.get("t", ""), fields.get("v1", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or not mac:
        return False
    clock = time.time() if now is None else now
    if abs(clock - int(stamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), mac.encode())
