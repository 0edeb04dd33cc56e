"""A clinic's REST CRM for fault tests: the lookup and webhook of crm_bridge's REST contract
(crm_bridge/README.md), a switch to make it answer 503, and a record of what it stored.

It stores by ``Idempotency-Key`` (a repeat answers 409, as the contract says), so
``records[call_id]`` holds the distinct call records a call got and ``deliveries`` counts
every POST that was accepted, repeats included.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from aiohttp import web


class FakeCrm:
    def __init__(self) -> None:
        self.down = False
        self.keys: set[str] = set()
        self.records: defaultdict[str, set[str]] = defaultdict(set)
        self.deliveries: Counter[str] = Counter()
        self.refused = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/lookup", self._lookup)
        app.router.add_post("/webhook", self._webhook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _unavailable(self) -> web.Response:
        self.refused += 1
        return web.json_response({"error": "maintenance"}, status=503)

    async def _lookup(self, request: web.Request) -> web.Response:
        if self.down:
            return self._unavailable()
        return web.json_response({"error": "not found"}, status=404)

    async def _webhook(self, request: web.Request) -> web.Response:
        if self.down:
            return self._unavailable()
        key = request.headers.get("Idempotency-Key", "")
        body = json.loads(await request.read())
        self.deliveries[key] += 1
        if key in self.keys:
            return web.json_response({"status": "duplicate"}, status=409)
        self.keys.add(key)
        if body.get("type") == "call_record":
            call_id = str((body.get("data") or body).get("call_id", ""))
            self.records[call_id].add(key)
        return web.json_response({"status": "stored"}, status=201)
