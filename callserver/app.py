"""Composition root: builds every component from the config and wires them together.

Nothing else in the code base constructs concrete adapters. Start-up never waits for Asterisk,
PostgreSQL or Redis to be up: each connection retries in the background and ``/healthz`` says
what is down, so a clinic's calls are ingested (and buffered) even while a dependency is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from callserver.asterisk.agi_server import FastAgiServer
from callserver.asterisk.ami_codec import AmiMessage
from callserver.asterisk.ami_connection import AmiClient
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.asterisk.ari_client import AriClient
from callserver.asterisk.resync import resync
from callserver.config import Config
from callserver.core.bus import EventBus
from callserver.core.model.live import LiveModel
from callserver.database import Database, TrackingSource
from callserver.health_checks import build_health_checks
from callserver.metrics import Metrics
from callserver.metrics_wiring import register_metrics
from callserver.store.call_writer import CallWriter
from callserver.store.live_state import RedisLiveState
from callserver.web.app import build_web_app
from callserver.web.calls import calls_routes
from callserver.web.live import LiveHub, live_routes
from callserver.wiring import Extensions, build_extensions
from crm_bridge.wiring import CrmBridge
from routing.service import RoutingService

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 15.0


class CallServer:
    """The whole server. ``start()`` brings everything up; ``aclose()`` flushes and stops."""

    def __init__(self, config: Config, pool: asyncpg.Pool, database: Database) -> None:
        """Use ``await CallServer.create(config)``; nothing here does I/O."""
        self.config = config
        self.bus = EventBus()
        self.model = LiveModel(self.bus)
        self.translator = AmiTranslator(self.model)
        self.ami_events: Counter[str] = Counter()
        self.ami = AmiClient(config.ami, on_event=self._on_ami_event, on_connected=self._resync)
        self.database = database
        self.pool = pool
        self.writer = CallWriter(config.database.dsn, config.database)
        self.redis = aioredis.from_url(
            config.redis.url, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self.live_state = RedisLiveState(self.redis, config.redis.prefix)
        self.hub = LiveHub()
        self.crm: CrmBridge | None = None
        self.routing: RoutingService | None = None
        self.tracking: TrackingSource | None = None
        self.ext: Extensions = build_extensions(self)
        self.agi = FastAgiServer(
            config.agi.host,
            config.agi.port,
            self.ext.agi_handlers,
            command_timeout=config.agi.command_timeout,
            session_timeout=config.agi.session_timeout,
        )
        self.ari = AriClient(config.ari, on_event=self.ext.on_ari_event)
        self.metrics = Metrics()
        register_metrics(self)
        for subscriber in (
            self.writer.submit,
            self.live_state.submit,
            self.hub.publish,
            *self.ext.bus_subscribers,
        ):
            self.bus.subscribe(subscriber)
        self._runner: web.AppRunner | None = None

    @classmethod
    async def create(cls, config: Config) -> CallServer:
        database = Database(config.database)
        pool = await database.open()  # min_size=0: connects on first use, not now
        return cls(config, pool, database)

    def _on_ami_event(self, msg: AmiMessage) -> None:
        self.ami_events[msg.name] += 1
        self.translator.handle(msg)

    async def _resync(self) -> None:
        """After every AMI (re)login: rebuild the live model from Asterisk's own lists."""
        try:
            await resync(self.ami, self.model, timeout=self.config.ami.action_timeout)
        except Exception as exc:  # the connection logs and retries; the model stays as it was
            log.warning("live model resync failed: %s", exc)

    def snapshot(self) -> dict[str, Any]:
        return self.model.to_dict(time.time())

    def web_app(self) -> web.Application:
        return build_web_app(
            api_token=self.config.http.api_token,
            health_checks=build_health_checks(self),
            metrics=self.metrics,
            routes=[
                *calls_routes(self.database.calls_reader(self.tracking)),
                *live_routes(self.hub, self.snapshot),
                *self.ext.routes,
            ],
            on_shutdown=[self.hub.close],
        )

    async def start(self) -> None:
        """Bring everything up; when a step fails (e.g. the HTTP port is taken) what had
        started is stopped again (``aclose``) before the error propagates."""
        try:
            await self._start()
        except BaseException:
            await self.aclose()
            raise

    async def _start(self) -> None:
        self.database.on_ready(self.writer.start)
        for hook in self.ext.on_database_ready:
            self.database.on_ready(hook)
        await self.database.start()
        await self.live_state.start()
        await self.ext.start()
        if self.config.agi.enabled:
            await self.agi.start()
        if self.config.ami.enabled:
            await self.ami.start()
        if self.config.ari.enabled:
            await self.ari.start()
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http.host, self.config.http.port)
        await site.start()
        log.info(
            "callserver up: http %s:%s, FastAGI %s:%s, AMI %s:%s",
            self.config.http.host,
            self.config.http.port,
            self.config.agi.host,
            self.agi.port if self.config.agi.enabled else "-",
            self.config.ami.host,
            self.config.ami.port,
        )

    async def aclose(self) -> None:
        """Stop taking calls (ARI, AMI, FastAGI), then flush: calls in memory reach PostgreSQL
        first, before the HTTP side and the other components get their time to stop (a process
        manager's stop timeout must not cut the flush)."""
        for closer in (
            self.ari.aclose,
            self.ami.aclose,
            self.agi.aclose,
            self.writer.aclose,
            self._stop_http,
            self.ext.aclose,
            self.live_state.aclose,
            self.database.aclose,
        ):
            try:
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await closer()
            except Exception:
                log.exception("error while stopping %s", getattr(closer, "__qualname__", closer))
        await self.redis.aclose()

    async def _stop_http(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


async def run_server(config: Config) -> None:
    """Run until SIGINT/SIGTERM, then shut down cleanly."""
    server = await CallServer.create(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await server.aclose()


async def migrate_only(config: Config) -> None:
    database = Database(config.database)
    applied = await database.migrate_once()
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
