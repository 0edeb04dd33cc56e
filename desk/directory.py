"""The ``operator_directory`` port: who sits at which phone, by name (never ``PJSIP/op104``).

The list is read from ``desk_users`` at start, after every user change, and every
``REFRESH_SECONDS`` (another instance's edits); ``name_for`` answers from memory.
"""

from __future__ import annotations

import logging
from typing import Any

from callserver.core.periodic import PeriodicRefresh
from callserver.store.errors import StoreError
from desk.models import User
from desk.store import DeskStore

log = logging.getLogger(__name__)
REFRESH_SECONDS = 60.0


class OperatorDirectory:
    def __init__(self, store: DeskStore) -> None:
        self._store = store
        self._users: list[User] = []
        self._names: dict[str, str] = {}
        self._refresher = PeriodicRefresh(
            self.refresh, REFRESH_SECONDS, what="operator directory", expected=(StoreError,),
            logger=log,
        )

    async def operators(self) -> list[dict[str, Any]]:
        """Active people bound to a phone: ``user_id, name, extension, queues, skills``."""
        return [{"user_id": str(u.id), "name": u.name, "extension": u.extension,
                 "queues": list(u.queues), "skills": list(u.skills)}
                for u in self._users if u.extension and u.active]  # fmt: skip

    def name_for(self, interface: str) -> str:
        """The operator's name at ``interface`` (case-insensitive), else the interface."""
        return self._names.get(interface.lower(), interface)

    async def refresh(self) -> None:
        """Re-read the users (raises StoreError when PostgreSQL fails)."""
        users = await self._store.users()
        self._users = users
        self._names = {u.extension.lower(): u.name for u in users if u.extension and u.active}

    async def start(self) -> None:
        await self.refresh()
        self._refresher.start()

    async def aclose(self) -> None:
        await self._refresher.aclose()
