"""The shapes of other domains' ports this package uses (structural: no imports of theirs)."""

from __future__ import annotations

from typing import Any, Protocol


class PatientCard(Protocol):
    """The part of the CRM's card read here."""

    id: str
    full_name: str
    vip: bool


class PatientLookup(Protocol):
    """``patient_lookup`` (crm)."""

    async def lookup(self, phone: str) -> PatientCard | None: ...


EVERYONE = "*"
"""The ``operator_notify`` extension meaning every operator's browser."""


class OperatorNotify(Protocol):
    """``operator_notify`` (desk): a JSON frame to an operator's browser(s), or with
    ``EVERYONE`` to every operator's."""

    async def push(self, extension: str, frame: dict[str, Any]) -> None: ...


class OperatorDirectory(Protocol):
    """``operator_directory`` (desk)."""

    async def operators(self) -> list[dict[str, Any]]: ...

    def name_for(self, interface: str) -> str: ...
