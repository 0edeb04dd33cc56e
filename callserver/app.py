"""Composition root: builds every component from the config and wires them together.

Nothing else in the code base constructs concrete adapters. Start-up never waits for Asterisk,
PostgreSQL or Redis to be up: each connection retries in the background and ``/healthz`` says
what is down, so a clinic's calls are ingested (and buffered) even while a dependency is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from callserver.asterisk.agi_server import FastAgiServer
from callserver.asterisk.ami_codec import AmiMessage
from callserver.asterisk.ami_connection import CLIENT_EVENTS, AmiClient
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.asterisk.ari_client import AriClient
from callserver.asterisk.resync import resync
from callserver.asterisk.stasis import StasisDispatcher
from callserver.config import Config
from callserver.core.bus import EventBus
from callserver.core.model.live import LiveModel
from callserver.database import Database
from callserver.health_checks import CoreHealthParts, build_health_checks
from callserver.metrics import Metrics
from callserver.metrics_wiring import KNOWN_AMI_EVENTS, CoreCounters, register_metrics
from callserver.plugin_api import Component, Contribution, PluginDeps, Ports, ServerInfo
from callserver.plugins import LoadedPlugin, build_plugins, load_plugins, migration_sources
from callserver.store.call_writer import CallWriter
from callserver.store.catchup import build_catchup
from callserver.store.live_state import RedisLiveState
from callserver.store.migrate import core_sources
from callserver.store.open_calls import PgOpenCalls
from callserver.web.app import REQUEST_TIMEOUT, build_web_app
from callserver.web.auth import token_authenticator
from callserver.web.calls import calls_routes
from callserver.web.live import LIVE_WS_PATH, LiveHub, live_routes
from callserver.web.middlewares import RequestDeadline

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 15.0
HTTP_KEEPALIVE_TIMEOUT = 15.0
"""Seconds an HTTP connection may sit idle, counted from the connect and from each answer: also
the time a client has to send a complete request head (a slowloris dribbling headers is cut;
aiohttp's default is an hour)."""
HTTP_LINGERING_TIME = 1.0
"""Seconds the rest of an unread request body is read and ignored after an early answer (a 408,
a 413) so the client sees it; aiohttp's 10 s would let a slow body hold the connection on."""


class CallServer:
    """The whole server. ``start()`` brings everything up; ``aclose()`` flushes and stops."""

    def __init__(
        self,
        config: Config,
        pool: asyncpg.Pool,
        database: Database,
        plugins: Sequence[LoadedPlugin] = (),
    ) -> None:
        """Use ``await CallServer.create(config)``; nothing here does I/O."""
        self.config = config
        self.bus = EventBus()
        self.model = LiveModel(self.bus)
        self.translator = AmiTranslator(self.model)
        self.ami_events: Counter[str] = Counter()
        self.ami = AmiClient(
            config.ami, on_event=self._on_ami_event, on_connected=self._resync,
            event_filters=(
                self.translator.event_filters(CLIENT_EVENTS) if config.ami.event_filter else ()
            ),
        )  # fmt: skip
        self.database = database
        self.pool = pool
        self.writer = CallWriter(config.database.dsn, config.database)
        self.open_calls = PgOpenCalls(pool)
        # calls missed on AMI, from Asterisk's cdr/queue_log ([database] cdr_dsn; None: off)
        self._synced_at: float | None = None
        """When the last resync after an AMI (re)connect finished (POSIX s)."""
        self._ami_read_at = 0.0
        """When the last AMI event was read (monotonic s)."""
        self.catchup = build_catchup(
            config.database, pool, self.bus.publish, lambda cid: self.model.call(cid) is not None,
            self._ami_seen,
        )
        self.redis = aioredis.from_url(
            config.redis.url, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self.live_state = RedisLiveState(self.redis, config.redis.prefix)
        self.hub = LiveHub()
        self.ari = AriClient(config.ari, on_event=self._on_ari_event)
        self.plugins = list(plugins)
        self.contributions: list[Contribution] = [
            c for _, c in build_plugins(self.plugins, self._plugin_deps)
        ]
        self.stasis = StasisDispatcher(
            self.ari,
            stasis_handlers=[h for c in self.contributions for h in c.stasis_handlers],
            quick_handlers=[h for c in self.contributions for h in c.ari_event_handlers],
            max_calls=config.ari.max_calls,
        )
        self.agi = FastAgiServer(
            config.agi.host,
            config.agi.port,
            {name: h for c in self.contributions for name, h in c.agi_handlers.items()},
            command_timeout=config.agi.command_timeout,
            session_timeout=config.agi.session_timeout,
        )
        self.http_deadline = RequestDeadline(REQUEST_TIMEOUT)
        self.metrics = Metrics()
        register_metrics(self.metrics, self._counters(),
                         [m for c in self.contributions for m in c.metrics])  # fmt: skip
        for subscriber in (
            self.writer.submit,
            self.live_state.submit,
            self.hub.publish,
            *(s for c in self.contributions for s in c.subscribers),
        ):
            self.bus.subscribe(subscriber)
        self._started: list[Component] = []
        self._runner: web.AppRunner | None = None

    def _counters(self) -> CoreCounters:
        return CoreCounters(
            ami=self.ami, ami_events=self.ami_events, translator=self.translator,
            model=self.model, bus=self.bus, writer=self.writer, live_state=self.live_state,
            agi=self.agi, ari=self.ari, hub=self.hub, stasis=self.stasis,
            http_deadline=self.http_deadline, http_connections=lambda: self.http_connections,
        )  # fmt: skip

    def _health_parts(self) -> CoreHealthParts:
        return CoreHealthParts(
            config=self.config, ami=self.ami, ari=self.ari, agi=self.agi,
            database=self.database, writer=self.writer, redis=self.redis,
        )  # fmt: skip

    def _plugin_deps(self, ports: Ports) -> PluginDeps:
        return PluginDeps(
            bus=self.bus,
            pool=self.pool,
            database_ready=self.database.ready,
            redis=self.redis,
            ami=self.ami,
            ari=self.ari,
            live=self.model,
            clock=time.time,
            server=ServerInfo(
                instance_id=f"{socket.gethostname()}-{os.getpid()}",
                redis_prefix=self.config.redis.prefix,
                ari_app=self.config.ari.app,
                api_token_set=bool(self.config.http.api_token),
            ),
            ports=ports,
        )

    @classmethod
    async def create(
        cls, config: Config, plugins: Sequence[LoadedPlugin] | None = None
    ) -> CallServer:
        """Load the plugins named in config (unless given) and build the server.

        Raises ConfigError / PluginError naming the bad section or plugin."""
        plugins = load_plugins(config) if plugins is None else plugins
        database = Database(config.database, [*core_sources(), *migration_sources(plugins)])
        pool = await database.open()  # min_size=0: connects on first use, not now
        return cls(config, pool, database, plugins)

    def _on_ari_event(self, event: dict[str, Any]) -> None:
        self.stasis.on_event(event)

    def _on_ami_event(self, msg: AmiMessage) -> None:
        # unknown names share one counter: whatever arrives on the AMI port, memory is bounded
        self.ami_events[msg.name if msg.name in KNOWN_AMI_EVENTS else "other"] += 1
        self.translator.handle(msg)
        self._ami_read_at = time.monotonic()

    async def _resync(self) -> None:
        """After every AMI (re)login: rebuild the live model from Asterisk's own lists."""
        self._synced_at = None
        try:
            await resync(
                self.ami, self.model, timeout=self.config.ami.action_timeout,
                store=self.open_calls,
            )  # fmt: skip
            self._synced_at = time.time()
        except Exception as exc:  # the connection logs and retries; the model stays as it was
            log.warning("live model resync failed: %s", exc)
        if self.catchup is not None:
            self.catchup.kick()  # what AMI missed meanwhile, from Asterisk's records

    def _ami_seen(self) -> float | None:
        """How far the live model has read Asterisk (POSIX s) while AMI is up; None while it
        is not (the catch-up then reads up to now). The newest event's time plus the seconds
        since it was read: behind by the lag a burst causes, level with now once it is read
        up (an idle link is current); never before the last resync's end."""
        if self.ami.state != "connected" or self._synced_at is None:
            return None
        idle = time.monotonic() - self._ami_read_at
        return max(self.model.now + idle, self._synced_at)

    async def _resync_if_connected(self) -> None:
        if self.config.ami.enabled and self.ami.state == "connected":
            await self._resync()

    def snapshot(self) -> dict[str, Any]:
        return self.model.to_dict(time.time())

    def web_app(self) -> web.Application:
        calls = self.database.calls_reader(
            [a for c in self.contributions for a in c.call_annotators]
        )
        return build_web_app(
            authenticators=[
                token_authenticator(self.config.http.api_token),
                *(a for c in self.contributions for a in c.authenticators),
            ],
            health_checks=build_health_checks(
                self._health_parts(),
                {k: v for c in self.contributions for k, v in c.health_checks.items()},
            ),
            metrics=self.metrics,
            routes=[
                *calls_routes(calls),
                *live_routes(self.hub, self.snapshot, self.config.http.api_token),
                *(r for c in self.contributions for r in c.routes),
            ],
            public_paths=[LIVE_WS_PATH, *(p for c in self.contributions for p in c.public_paths)],
            static=[(d.prefix, d.directory) for c in self.contributions for d in c.static],
            on_shutdown=[self.hub.close, *(h for c in self.contributions
                                           for h in c.on_http_shutdown)],
            deadline=self.http_deadline,
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
        # calls open in PostgreSQL that ended while we were down are closed by resync: run it
        # again once the schema is there, in case PostgreSQL was not at the first AMI login
        self.database.on_ready(self._resync_if_connected)
        if self.catchup is not None:
            self.database.on_ready(self.catchup.start)
        for contribution in self.contributions:
            for component in contribution.after_database:
                self.database.on_ready(functools.partial(self._start_component, component))
        await self.database.start()
        await self.live_state.start()
        for contribution in self.contributions:
            for component in contribution.components:
                await self._start_component(component)
        await self.stasis.start()
        if self.config.agi.enabled:
            await self.agi.start()
        if self.config.ami.enabled:
            await self.ami.start()
        if self.config.ari.enabled:
            await self.ari.start()
        self._runner = web.AppRunner(
            self.web_app(), access_log=None, keepalive_timeout=HTTP_KEEPALIVE_TIMEOUT,
            lingering_time=HTTP_LINGERING_TIME,
        )  # fmt: skip
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http.host, self.config.http.port)
        await site.start()
        log.info(
            "callserver up: http %s:%s, FastAGI %s:%s, AMI %s:%s, plugins %s",
            self.config.http.host,
            self.config.http.port,
            self.config.agi.host,
            self.agi.port if self.config.agi.enabled else "-",
            self.config.ami.host,
            self.config.ami.port,
            ", ".join(p.name for p in self.plugins) or "none",
        )

    async def _start_component(self, component: Component) -> None:
        self._started.append(component)  # before start: a half-started one is closed too
        await component.start()

    async def aclose(self) -> None:
        """Stop taking calls (ARI, AMI, FastAGI), then flush: calls in memory reach PostgreSQL
        first, before the HTTP side and the plugins' components get their time to stop (a
        process manager's stop timeout must not cut the flush). Components stop in the reverse
        order of their start."""
        closers = [
            self.ari.aclose,
            self.stasis.aclose,
            self.ami.aclose,
            self.agi.aclose,
            *([self.catchup.aclose] if self.catchup is not None else []),
            self.writer.aclose,
            self._stop_http,
            *(c.aclose for c in reversed(self._started)),
            self.live_state.aclose,
            self.database.aclose,
        ]
        self._started = []
        for closer in closers:
            try:
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await closer()
            except Exception:
                log.exception("error while stopping %s", getattr(closer, "__qualname__", closer))
        await self.redis.aclose()

    @property
    def http_connections(self) -> int:
        """HTTP connections open now (requests, idle keep-alives, WebSockets)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    async def _stop_http(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def settle_heap() -> None:
    """Once the server is up: collect, then move every object alive now (modules, plugins,
    models, connections) out of the garbage collector's sight (``gc.freeze``). A full
    collection then walks only what was made since; with the whole start-up heap in view
    one took up to 80 ms, holding the event loop (and every screen-pop) that long. Call it
    once per process (a test process starting many servers must not: what is frozen is never
    collected)."""
    gc.collect()
    gc.freeze()


async def run_server(config: Config) -> None:
    """Run until SIGINT/SIGTERM, then shut down cleanly."""
    server = await CallServer.create(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    settle_heap()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await server.aclose()


async def migrate_only(config: Config) -> None:
    plugins = load_plugins(config)
    database = Database(config.database, [*core_sources(), *migration_sources(plugins)])
    applied = await database.migrate_once()
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
