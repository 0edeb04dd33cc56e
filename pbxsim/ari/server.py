"""pbxsim's ARI: the REST subset the voice bot needs and the events websocket (aiohttp).

Auth like Asterisk's ``ari.conf`` user: HTTP basic auth or ``?api_key=user:password``,
anything else is 401. Parameters come from the query string and/or a JSON object body
(a body that does not parse is 400 ``Error parsing request body``). Errors are
``{"message": …}`` with Asterisk's status codes. ``AriServer.feed_ami`` must receive every
event the engine emits (``attach`` wires it) so ARI events can be derived from them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from pbxsim.ari.app_adapter import AriApp
from pbxsim.ari.core import AriCore
from pbxsim.ari.errors import AriError, BadRequest, Conflict, NotFound, Unprocessable
from pbxsim.ari.json_shapes import application_json, asterisk_info, bridge_json, channel_json, dumps
from pbxsim.ari.operations import AriOps, default_audio
from pbxsim.ari.websocket import events
from pbxsim.engine import Engine
from pbxsim.rtp import RtpEndpoint

log = logging.getLogger("pbxsim.ari")
STATUS = {NotFound: 404, BadRequest: 400, Conflict: 409, Unprocessable: 422}
BODY_TIMEOUT_S = 10.0
"""Wall seconds a client gets to send its request body."""
HEADERS = {"Server": "Asterisk/22.10.1", "Cache-Control": "no-cache, no-store"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class AriConfig:
    """Listen address, the one ARI user, and where externalMedia audio comes from."""

    host: str = "127.0.0.1"
    port: int = 8088
    user: str = "callserver"
    password: str = "callserver"
    entity_id: str = "02:50:42:58:53:01"
    rtp_host: str = "127.0.0.1"
    audio: Path | None = None
    """WAV sent as the caller's voice when the caller has no ``PBXSIM_AUDIO`` variable."""


CORE = web.AppKey("core", AriCore)
OPS = web.AppKey("ops", AriOps)
CONFIG = web.AppKey("config", AriConfig)
STARTED = web.AppKey("started", float)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])


def reply(obj: object, status: int = 200, location: str = "") -> web.Response:
    headers = dict(HEADERS)
    if location:
        headers["Location"] = location
    return web.Response(
        text=dumps(obj), status=status, content_type="application/json", headers=headers
    )


def no_content() -> web.Response:
    return web.Response(status=204, headers=HEADERS)


def _authorized(request: web.Request, cfg: AriConfig) -> bool:
    expected = f"{cfg.user}:{cfg.password}"
    key = request.query.get("api_key")
    if key is not None:
        return hmac.compare_digest(key.encode(), expected.encode())
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected.encode())


@web.middleware
async def ari_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth (401), then ``AriError`` → ``{"message": …}`` with Asterisk's status."""
    if not _authorized(request, request.app[CONFIG]):
        resp = reply({"message": "Authentication required"}, 401)
        resp.headers["WWW-Authenticate"] = 'Basic realm="Asterisk REST Interface"'
        return resp
    try:
        return await handler(request)
    except AriError as exc:
        return reply({"message": exc.message}, STATUS.get(type(exc), 500))
    except web.HTTPNotFound:
        return reply({"message": "Resource not found"}, 404)
    except web.HTTPMethodNotAllowed:
        return reply({"message": "Invalid method"}, 405)


async def params(request: web.Request) -> dict[str, Any]:
    """Query parameters, overlaid with the fields of a JSON object body if there is one.

    Raises:
        BadRequest: the body is not a JSON object.
    """
    out: dict[str, Any] = dict(request.query)
    if request.body_exists:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise BadRequest(message="Error parsing request body") from exc
            if not isinstance(body, dict):
                raise BadRequest(message="Error parsing request body")
            out.update(body)
    return out


def _str(p: dict[str, Any], key: str, default: str = "") -> str:
    value = p.get(key, default)
    if isinstance(value, dict | list):
        raise BadRequest(message=f"Invalid parameter {key}")
    return str(value)


# -- asterisk / applications ------------------------------------------------------------
async def get_info(request: web.Request) -> web.Response:
    return reply(asterisk_info(request.app[CONFIG].entity_id, request.app[STARTED]))


def _app_json(core: AriCore, app: AriApp) -> dict[str, Any]:
    chans = [uid for uid, r in core.channels.items() if r.app is app and r.subscribed]
    bridges = [bid for bid, b in core.bridges.items() if b.app is app]
    return application_json(app.name, chans, bridges)


async def list_apps(request: web.Request) -> web.Response:
    core = request.app[CORE]
    return reply([_app_json(core, a) for a in core.apps.values() if a.outboxes])


async def get_app(request: web.Request) -> web.Response:
    app = request.app[OPS].app(request.match_info["name"])
    return reply(_app_json(request.app[CORE], app))


# -- channels -----------------------------------------------------------------------------
async def list_channels(request: web.Request) -> web.Response:
    return reply(request.app[OPS].list_channels())


async def get_channel(request: web.Request) -> web.Response:
    return reply(channel_json(request.app[OPS].channel(request.match_info["id"])))


async def answer(request: web.Request) -> web.Response:
    await params(request)
    request.app[OPS].answer(request.match_info["id"])
    return no_content()


async def get_variable(request: web.Request) -> web.Response:
    value = request.app[OPS].get_var(request.match_info["id"], request.query.get("variable", ""))
    return reply({"value": value})


async def set_variable(request: web.Request) -> web.Response:
    p = await params(request)
    request.app[OPS].set_var(request.match_info["id"], _str(p, "variable"), _str(p, "value"))
    return no_content()


async def play_channel(request: web.Request) -> web.Response:
    p = await params(request)
    pid = request.match_info.get("pid") or _str(p, "playbackId")
    pb = request.app[OPS].play_channel(
        request.match_info["id"], _str(p, "media"), pid, _str(p, "lang")
    )
    return reply(pb.json(), 201, location=f"/ari/playbacks/{pb.id}")


async def hangup(request: web.Request) -> web.Response:
    p = await params(request)
    await request.app[OPS].hangup(
        request.match_info["id"], _str(p, "reason") or _str(p, "reason_code")
    )
    return no_content()


async def continue_(request: web.Request) -> web.Response:
    await params(request)
    request.app[OPS].continue_(request.match_info["id"])
    return no_content()


async def external_media(request: web.Request) -> web.Response:
    p = await params(request)
    for key in ("app", "external_host", "format"):
        if not _str(p, key):
            raise BadRequest(message=f"{key} cannot be empty")
    if _str(p, "encapsulation", "rtp") != "rtp" or _str(p, "transport", "udp") != "udp":
        raise BadRequest(message="pbxsim supports encapsulation=rtp transport=udp only")
    variables = p.get("variables", {})
    if not isinstance(variables, dict):
        raise BadRequest(message="Invalid parameter variables")
    ops = request.app[OPS]
    snap = await ops.external_media(
        _str(p, "app"),
        _str(p, "external_host"),
        _str(p, "format"),
        {str(k): str(v) for k, v in variables.items()},
        _str(p, "channelId"),
    )
    return reply(snap)


# -- bridges ------------------------------------------------------------------------------
async def list_bridges(request: web.Request) -> web.Response:
    return reply([bridge_json(b.bridge, b.created) for b in request.app[CORE].bridges.values()])


async def create_bridge(request: web.Request) -> web.Response:
    p = await params(request)
    bid = request.match_info.get("id") or _str(p, "bridgeId")
    brec = request.app[OPS].create_bridge(_str(p, "type"), _str(p, "name"), bid)
    return reply(bridge_json(brec.bridge, brec.created))


async def get_bridge(request: web.Request) -> web.Response:
    brec = request.app[OPS].bridge(request.match_info["id"])
    return reply(bridge_json(brec.bridge, brec.created))


async def add_channel(request: web.Request) -> web.Response:
    p = await params(request)
    uids = [u for u in _str(p, "channel").split(",") if u]
    await request.app[OPS].add_channels(request.match_info["id"], uids)
    return no_content()


async def remove_channel(request: web.Request) -> web.Response:
    p = await params(request)
    request.app[OPS].remove_channel(request.match_info["id"], _str(p, "channel"))
    return no_content()


async def play_bridge(request: web.Request) -> web.Response:
    p = await params(request)
    pid = request.match_info.get("pid") or _str(p, "playbackId")
    pb = request.app[OPS].play_bridge(
        request.match_info["id"], _str(p, "media"), pid, _str(p, "lang")
    )
    return reply(pb.json(), 201, location=f"/ari/playbacks/{pb.id}")


async def destroy_bridge(request: web.Request) -> web.Response:
    request.app[OPS].destroy_bridge(request.match_info["id"])
    return no_content()


# -- playbacks ----------------------------------------------------------------------------
async def get_playback(request: web.Request) -> web.Response:
    return reply(request.app[OPS].playback(request.match_info["id"]).json())


async def stop_playback(request: web.Request) -> web.Response:
    request.app[OPS].stop_playback(request.match_info["id"])
    return no_content()


# -- wiring -------------------------------------------------------------------------------
def build_app(engine: Engine, config: AriConfig) -> tuple[web.Application, AriCore]:
    """The aiohttp application (routes under ``/ari``) and its ``AriCore``."""
    core = AriCore(engine, config.entity_id)
    app = web.Application(middlewares=[ari_middleware])
    app[CORE] = core
    app[OPS] = AriOps(core, default_audio(config.audio), config.rtp_host)
    app[CONFIG] = config
    app[STARTED] = time.time()
    app[SOCKETS] = set()
    app.on_shutdown.append(_close_sockets)
    r = app.router
    r.add_get("/ari/asterisk/info", get_info)
    r.add_get("/ari/applications", list_apps)
    r.add_get("/ari/applications/{name}", get_app)
    r.add_get("/ari/events", partial(events, core, app[SOCKETS]))
    r.add_get("/ari/channels", list_channels)
    r.add_post("/ari/channels/externalMedia", external_media)
    r.add_get("/ari/channels/{id}", get_channel)
    r.add_delete("/ari/channels/{id}", hangup)
    r.add_post("/ari/channels/{id}/answer", answer)
    r.add_post("/ari/channels/{id}/continue", continue_)
    r.add_get("/ari/channels/{id}/variable", get_variable)
    r.add_post("/ari/channels/{id}/variable", set_variable)
    r.add_post("/ari/channels/{id}/play", play_channel)
    r.add_post("/ari/channels/{id}/play/{pid}", play_channel)
    r.add_get("/ari/bridges", list_bridges)
    r.add_post("/ari/bridges", create_bridge)
    r.add_post("/ari/bridges/{id}", create_bridge)
    r.add_get("/ari/bridges/{id}", get_bridge)
    r.add_delete("/ari/bridges/{id}", destroy_bridge)
    r.add_post("/ari/bridges/{id}/addChannel", add_channel)
    r.add_post("/ari/bridges/{id}/removeChannel", remove_channel)
    r.add_post("/ari/bridges/{id}/play", play_bridge)
    r.add_post("/ari/bridges/{id}/play/{pid}", play_bridge)
    r.add_get("/ari/playbacks/{id}", get_playback)
    r.add_delete("/ari/playbacks/{id}", stop_playback)
    return app, core


async def _close_sockets(app: web.Application) -> None:
    sockets: set[web.WebSocketResponse] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close()


class AriServer:
    """The ARI HTTP/WebSocket server of one engine; ``start()`` binds, ``aclose()`` stops.

    ``feed_ami`` must see every event the engine emits (see ``attach``).
    """

    def __init__(self, engine: Engine, config: AriConfig | None = None) -> None:
        self.config = config or AriConfig()
        self.app, self.core = build_app(engine, self.config)
        self._runner: web.AppRunner | None = None
        self.port = self.config.port

    def feed_ami(self, data: bytes) -> None:
        self.core.on_ami(data)

    def media(self, channel_id: str) -> RtpEndpoint | None:
        """The RTP endpoint of externalMedia channel ``channel_id`` (kept after hangup)."""
        return self.core.media.get(channel_id)

    async def start(self) -> None:
        """Listen on ``config.host:config.port`` (port 0: any; the bound one is ``port``).

        Raises:
            OSError: the address cannot be bound.
        """
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        for sock in getattr(site._server, "sockets", None) or ():
            self.port = int(sock.getsockname()[1])
            break

    async def aclose(self) -> None:
        """Close websockets, stop listening, stop playbacks and RTP."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.core.aclose()


def attach(engine: Engine, server: AriServer) -> None:
    """Make ``server`` see the engine's events (wraps ``engine.sink``; call once)."""
    downstream = engine.sink

    def sink(data: bytes) -> None:
        downstream(data)
        server.feed_ami(data)

    engine.sink = sink


async def start_ari(engine: Engine, config: AriConfig) -> AriServer:
    """Build the ARI server for ``engine``, tap its events and start listening.

    Raises:
        OSError: ``config.host:config.port`` cannot be bound.
    """
    server = AriServer(engine, config)
    attach(engine, server)
    await server.start()
    return server
