"""Password hashing with argon2id (``argon2-cffi``); hashing runs in an executor (~50 ms of
CPU each) so the event loop never waits for it."""

from __future__ import annotations

import asyncio
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("not-a-real-password")
"""Verified against when the login is unknown, so both answers take as long (no user probing)."""


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, _HASHER.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored`` (an argon2 hash); False for None."""
    return await asyncio.get_running_loop().run_in_executor(
        None, _verify, stored or _DUMMY, password, stored is not None
    )


def _verify(stored: str, password: str, real: bool) -> bool:
    try:
        return _HASHER.verify(stored, password) and real
    except (VerificationError, InvalidHashError):
        return False


def new_token(prefix: str = "") -> str:
    """A random token (256 bits, URL-safe)."""
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """What is stored for a session or API token: its SHA-256 (the token is high-entropy, so
    a fast hash suffices; a database leak does not give working tokens)."""
    return hashlib.sha256(token.encode()).digest()
