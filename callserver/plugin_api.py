"""The one contract between callserver's core and its domain plugins.

A domain package (``routing``, ``crm_bridge``, ``callbacks`` …, or a clinic's own package) ships a
``plugin.py`` with an object satisfying :class:`Plugin`, registered under the entry point group
``callserver.plugins``. The composition root (``callserver.plugins``) finds it, parses its config
section with the plugin's own dataclass, hands it :class:`PluginDeps` (explicit collaborators,
never the server object) and collects what it returns in a :class:`Contribution`.

Plugins use each other only through *ports*: a plugin lists the ports it ``provides`` and the
ones it ``requires`` by name; the consumer declares the port's shape as its own
``typing.Protocol`` (structural typing), so no domain imports another. The root builds plugins in
dependency order and refuses a missing or circular requirement at start-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from callserver.asterisk.ami_codec import AmiMessage
from callserver.core.bus import EventBus, Subscriber
from callserver.core.events import AgentSnapshot, CallSnapshot
from callserver.core.model.records import QueueSnapshot
from callserver.errors import CallserverError

if TYPE_CHECKING:
    from callserver.asterisk.agi_server import AgiHandler
    from callserver.metrics import Reader
    from callserver.web.auth import Authenticator
    from callserver.web.health import HealthCheck

T = TypeVar("T")

AriEvent = Mapping[str, Any]
StasisHandler = Callable[[AriEvent], Awaitable[None]]
"""Handles one call's StasisStart in its own owned task (``callserver.stasis``)."""
AriEventHandler = Callable[[AriEvent], None]
"""Sees every ARI event on the reader's path: must be quick and never block."""


class PluginError(CallserverError):
    """A plugin cannot be found, loaded, configured or wired; the message names the plugin."""

    error_id = "plugin-error"


@runtime_checkable
class Component(Protocol):
    """Something a plugin owns that runs: started by the root, stopped in reverse order."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class AmiActions(Protocol):
    """The AMI actions a plugin may send (``callserver.asterisk.ami_connection.AmiClient``)."""

    async def send_action(
        self,
        action: str,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        *,
        timeout: float,  # noqa: ASYNC109 - per-action deadline, as AmiClient's
    ) -> AmiMessage: ...

    async def originate(
        self,
        headers: Mapping[str, str | Sequence[str]],
        *,
        timeout: float,  # noqa: ASYNC109 - per-action deadline, as AmiClient's
    ) -> AmiMessage: ...


class LiveView(Protocol):
    """Read-only questions about the live model (``callserver.core.model.live.LiveModel``)."""

    def calls(self) -> list[CallSnapshot]: ...

    def agents(self) -> list[AgentSnapshot]: ...

    def queues(self, now: float | None = None) -> dict[str, QueueSnapshot]: ...

    def longest_waits(self, now: float | None = None) -> dict[str, float]: ...

    def to_dict(self, now: float | None = None) -> dict[str, Any]: ...


class CallAnnotator(Protocol):
    """Adds a domain's data to call records in ``/api/calls``: ``key`` → value per linkedid."""

    key: str

    async def annotate(self, linkedids: Sequence[str]) -> dict[str, object]: ...


@dataclass(frozen=True)
class Metric:
    """One ``/metrics`` family: a counter when ``name`` ends in ``_total``, else a gauge."""

    name: str
    help: str
    read: Reader
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class StaticDir:
    """Files served under ``/static/<prefix>/`` (pages, scripts, styles; no external CDNs)."""

    prefix: str
    directory: Path


@dataclass
class Contribution:
    """What a plugin adds to the server. Everything is optional."""

    routes: list[web.RouteDef] = field(default_factory=list)
    public_paths: list[str] = field(default_factory=list)
    """Exact paths served without a principal (pages whose own script authenticates)."""
    authenticators: list[Authenticator] = field(default_factory=list)
    """Recognise requests the API token does not (e.g. a login session cookie)."""
    static: list[StaticDir] = field(default_factory=list)
    subscribers: list[Subscriber] = field(default_factory=list)
    """Bus subscribers: called synchronously per domain event, must not block."""
    components: list[Component] = field(default_factory=list)
    """Started at start-up, before the schema may exist (e.g. loading a rules file)."""
    after_database: list[Component] = field(default_factory=list)
    """Started once migrations are applied (workers over the plugin's tables)."""
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    agi_handlers: dict[str, AgiHandler] = field(default_factory=dict)
    """FastAGI script name (``agi://host/NAME``) → handler."""
    stasis_handlers: list[StasisHandler] = field(default_factory=list)
    ari_event_handlers: list[AriEventHandler] = field(default_factory=list)
    call_annotators: list[CallAnnotator] = field(default_factory=list)
    on_http_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run when the HTTP side starts stopping, before it waits for open requests: close the
    plugin's WebSockets here (else each open one holds shutdown up to its timeout)."""
    ports: dict[str, object] = field(default_factory=dict)
    """Ports this plugin provides to others, by the names in ``Plugin.provides``."""


class Ports:
    """The ports other plugins provided, limited to what this plugin declared it requires."""

    def __init__(
        self,
        plugin: str,
        available: Mapping[str, object],
        allowed: Sequence[str],
        late: Sequence[str] = (),
    ):
        self._plugin = plugin
        self._ports = {name: available[name] for name in allowed if name in available}
        self._allowed = frozenset(allowed)
        self._available = available  # the root keeps filling it as later plugins are built
        self._late = frozenset(late)

    def get(self, name: str, shape: Callable[..., T]) -> T:
        """The port ``name``; ``shape`` is the consumer's own Protocol, checked by its members.

        Raises PluginError when the port was not declared in ``requires`` or lacks a member.
        """
        if name not in self._allowed:
            raise PluginError(
                message=f"plugin {self._plugin}: port {name!r} used but not in its 'requires'",
                plugin=self._plugin,
            )
        port = self._ports[name]
        missing = [m for m in _protocol_members(shape) if not hasattr(port, m)]
        if missing:
            raise PluginError(
                message=f"plugin {self._plugin}: port {name!r} lacks {', '.join(missing)}",
                plugin=self._plugin,
            )
        return port  # type: ignore[return-value]  # checked structurally above

    def maybe(self, name: str, shape: Callable[..., T]) -> T | None:
        """Like ``get`` for an ``optional`` port: None when no enabled plugin provides it."""
        return self.get(name, shape) if name in self._ports else None

    def late(self, name: str, shape: Callable[..., T]) -> Callable[[], T | None]:
        """A port listed in the plugin's ``late`` tuple: used only at run time (``start`` or
        later), so it adds no build-order edge and two plugins may use each other's ports
        (desk uses callbacks' ``dialer``, callbacks uses desk's ``operator_notify``). Returns a
        function giving the port (checked like ``get``) or None when no plugin provides it."""
        if name not in self._late:
            raise PluginError(
                message=f"plugin {self._plugin}: port {name!r} used late but not in its 'late'",
                plugin=self._plugin,
            )

        def resolve() -> T | None:
            if name not in self._available:
                return None
            port = self._available[name]
            missing = [m for m in _protocol_members(shape) if not hasattr(port, m)]
            if missing:
                raise PluginError(
                    message=f"plugin {self._plugin}: port {name!r} lacks {', '.join(missing)}",
                    plugin=self._plugin,
                )
            return port  # type: ignore[return-value]  # checked structurally above

        return resolve

    def __contains__(self, name: str) -> bool:
        return name in self._ports


def _protocol_members(shape: Any) -> list[str]:
    """Public methods and attributes a Protocol declares (its own and its bases')."""
    names: set[str] = set()
    for klass in shape.__mro__:
        if klass is object or klass is Protocol or klass is Generic:
            continue
        names.update(n for n in vars(klass) if not n.startswith("_"))
        names.update(n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_"))
    return sorted(names)


@dataclass(frozen=True)
class ServerInfo:
    """Facts about this server a plugin may need (never the server object)."""

    instance_id: str
    """Unique per process (``host-pid``): worker ids, lease owners."""
    redis_prefix: str
    """The instance's Redis key prefix; a plugin adds its own segment (``crm:``)."""
    ari_app: str
    api_token_set: bool


@dataclass(frozen=True)
class PluginDeps:
    """Explicit collaborators handed to ``Plugin.build``."""

    bus: EventBus
    pool: asyncpg.Pool
    """Shared PostgreSQL pool; connects on first use (the schema may not exist yet)."""
    database_ready: asyncio.Event
    """Set once migrations are applied."""
    redis: aioredis.Redis
    ami: AmiActions
    ari: Any
    """``callserver.asterisk.ari_rest.AriRest``-like REST client (answer, play, bridges …)."""
    live: LiveView
    clock: Callable[[], float]
    """POSIX seconds (``time.time`` in production; tests may set it)."""
    server: ServerInfo
    ports: Ports


class Plugin(Protocol):
    """What a domain's ``plugin.py`` exports (an instance, registered as an entry point)."""

    name: str
    """Also the config section name (``[routing]``)."""
    config_type: type[Any] | None
    """A frozen dataclass with defaults for the section, or None when it has none."""
    migrations: Path | None
    """Folder of ``NNNN_name.sql`` files (applied in order, under the plugin's name)."""
    requires: tuple[str, ...]
    """Ports this plugin cannot work without (start-up fails when none provides them)."""
    optional: tuple[str, ...]
    """Ports it uses when some enabled plugin provides them (``deps.ports.maybe``)."""
    # A plugin may also list ``late: tuple[str, ...]``: ports used only once the server runs
    # (``deps.ports.late(name, Shape)`` gives a resolver); they add no build-order edge, so two
    # plugins may use each other's ports (desk ↔ callbacks).
    provides: tuple[str, ...]

    def validate(self, config: Any) -> None:
        """Raise ``ConfigError`` naming the key (``routing.default_queue: …``) when invalid."""

    def build(self, config: Any, deps: PluginDeps) -> Contribution:
        """Construct the plugin's objects; no I/O here (components do it in ``start``)."""
