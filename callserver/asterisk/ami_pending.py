"""Bookkeeping of AMI actions waiting for their answer (used by ``ami_connection``).

A ``Pending`` is completed by the ``Response`` with its ActionID (``single``), by the
``EventList: Complete`` event after the list items (``list``) or by the ``OriginateResponse`` event
(``originate``). ``Response: Error`` fails it with ``AmiActionError``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from callserver.asterisk.ami_codec import AmiMessage
from callserver.asterisk.errors import AmiActionError

Mode = Literal["single", "list", "originate"]


@dataclass(slots=True)
class Pending:
    """One action waiting for its answer. ``mode`` says what completes it."""

    action: str
    mode: Mode
    future: asyncio.Future[Any]
    items: list[AmiMessage] = field(default_factory=list)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def resolve(self, value: Any) -> None:
        if not self.future.done():
            self.future.set_result(value)

    def on_response(self, msg: AmiMessage) -> None:
        if msg.name == "Error":
            text = msg.get("Message", "") or ""
            self.fail(
                AmiActionError(
                    message=f"AMI {self.action} failed: {text!r}", action=self.action, response=text
                )
            )
        elif self.mode == "single":
            self.resolve(msg)
        elif self.mode == "list" and (msg.get("EventList") or "").lower() != "start":
            self.resolve([])  # an action that turned out to have no event list

    def on_event(self, msg: AmiMessage) -> bool:
        """Take an event carrying this action's ActionID; True when it is consumed here."""
        if self.mode == "list":
            if (msg.get("EventList") or "").lower() == "complete":
                self.resolve(self.items)
            else:
                self.items.append(msg)
            return True
        if self.mode == "originate" and msg.name == "OriginateResponse":
            self.resolve(msg)
        return False


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that ended a session's TaskGroup (cancellations of siblings left aside)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]
