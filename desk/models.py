"""Desk data: users, call outcomes, operator status. Pure (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ROLES = ("operator", "supervisor", "marketer", "admin")
Status = Literal["available", "paused", "wrapup"]
STATUSES: tuple[str, ...] = ("available", "paused", "wrapup")
WRAPUP_REASON = "wrap-up"
"""The Asterisk pause reason that means "wrap-up" (a pause the desk shows as its own state)."""
OUTCOMES = ("booked", "not_booked", "info")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str
    name: str
    roles: tuple[str, ...]
    extension: str = ""
    """The operator's phone interface (``PJSIP/op101``); empty for people without a phone."""
    queues: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "login": self.login, "name": self.name, "roles": list(self.roles),
                "extension": self.extension, "queues": list(self.queues),
                "skills": list(self.skills), "active": self.active}  # fmt: skip


@dataclass(frozen=True, slots=True)
class UserInput:
    """A user as an admin creates or edits it (validated by ``policy.parse_user``)."""

    login: str
    name: str
    roles: tuple[str, ...]
    extension: str = ""
    queues: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    password: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an operator recorded after a call."""

    call_id: str
    outcome: str
    """``booked``, ``not_booked`` (with ``reason``) or ``info``."""
    tags: tuple[str, ...] = ()
    reason: str = ""
    notes: str = ""


@dataclass(frozen=True, slots=True)
class OperatorState:
    """An operator's desk status as Asterisk reports it."""

    extension: str
    status: Status
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": "status", "extension": self.extension, "status": self.status,
                "reason": self.reason}  # fmt: skip


@dataclass
class Pop:
    """A screen-pop card on one operator's screen; ``state`` follows the call."""

    call_id: str
    extension: str
    card: dict[str, Any]
    state: str = "ringing"
    """``ringing`` → ``talking`` → ``wrapup``; ``gone`` when the phone stopped ringing."""
    extra: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> dict[str, Any]:
        return {"type": "pop", "call_id": self.call_id, "state": self.state,
                "card": self.card, **self.extra}  # fmt: skip
