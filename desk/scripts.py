"""Call scripts per caller segment (``desk_scripts``), managed by supervisors, held in memory
so a pop never waits for PostgreSQL; re-read after each edit and every ``REFRESH_SECONDS``."""

from __future__ import annotations

import logging
import re

from callserver.core.periodic import PeriodicRefresh
from callserver.store.errors import StoreError
from desk.errors import DeskInvalid, DeskNotFound
from desk.store import DeskStore

log = logging.getLogger(__name__)
REFRESH_SECONDS = 60.0
SEGMENT_RE = re.compile(r"^[\w.-]{1,40}$")
FALLBACK = {"segment": "default", "title": "", "body": "", "updated_by": ""}


class ScriptBook:
    def __init__(self, store: DeskStore) -> None:
        self._store = store
        self._scripts: dict[str, dict[str, str]] = {}
        self._refresher = PeriodicRefresh(
            self.reload, REFRESH_SECONDS, what="call scripts", expected=(StoreError,),
            logger=log,
        )

    def for_segment(self, segment: str) -> dict[str, str]:
        """The segment's script, else the ``default`` one, else an empty script."""
        return self._scripts.get(segment) or self._scripts.get("default") or FALLBACK

    def all(self) -> list[dict[str, str]]:
        return sorted(self._scripts.values(), key=lambda s: s["segment"])

    async def put(self, segment: str, title: str, body: str, by: str) -> None:
        """Save a script (raises DeskInvalid for a bad segment name or empty body)."""
        if not SEGMENT_RE.match(segment):
            raise DeskInvalid(message="segment: letters, digits . _ -", field="segment")
        if not body.strip() or len(body) > 5000 or len(title) > 200:
            raise DeskInvalid(message="body: 1-5000 characters, title ≤ 200", field="body")
        await self._store.put_script(segment, title, body, by)
        await self.reload()

    async def delete(self, segment: str) -> None:
        if not await self._store.delete_script(segment):
            raise DeskNotFound(message=f"no script for segment {segment!r}")
        await self.reload()

    async def reload(self) -> None:
        self._scripts = await self._store.scripts()

    async def start(self) -> None:
        await self.reload()
        self._refresher.start()

    async def aclose(self) -> None:
        await self._refresher.aclose()
