"""A small fake Asterisk ARI over real sockets, for the ARI client's integration tests.

An aiohttp app on 127.0.0.1:0 with the lab's ``/ari`` prefix:

* REST: every request/response pair recorded in ``fixtures/asterisk/ari-rest-examples.txt`` is
  replayed byte for byte (status, body, ``Content-type``, ``Location``); a request matches on
  method, path and query parameters (order-free). Anything else under ``/ari/channels/{id}`` or
  ``/ari/bridges/{id}`` answers Asterisk's ``404 {"message":"Channel not found"}`` /
  ``"Bridge not found"``; other paths ``404 Resource not found``. A channel deleted with
  ``DELETE /ari/channels/{id}`` is gone: later requests on it get the 404.
  ``GET /ari/applications/{app}`` answers only while the app's events WebSocket is open, as in
  Asterisk (the app exists while a client is subscribed).
* Auth like Asterisk: HTTP basic auth or ``?api_key=user:password``; otherwise
  ``401 {"message":"Authentication required"}`` (also on the WebSocket upgrade).
* Events: ``GET /ari/events?app=…`` upgrades to a WebSocket; ``send()`` pushes frames to every
  open one, ``replay_stasis()`` pushes the recorded ``ari-stasis-call.jsonl`` lines unchanged,
  ``drop()`` closes them (``abrupt=True`` cuts the TCP connection without a close frame).
* Knobs: ``delay`` (seconds before each REST answer, for timeout tests), ``close_on_accept``
  (close each events WebSocket right after the upgrade, a flapping peer); ``requests`` records
  ``(method, raw path with query)`` of every REST request; its decoded path segments are in
  ``segments`` and its body in ``bodies``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from yarl import URL

from tests.transcripts import FIXTURES, segments

REST_FILE = "ari-rest-examples.txt"
STASIS_FILE = "ari-stasis-call.jsonl"
_AUTH_BODY = b'{"message":"Authentication required"}'


@dataclass(frozen=True)
class Recorded:
    """One HTTP exchange from the transcript."""

    method: str
    target: str
    """Request target as sent, e.g. ``/ari/channels/1795413228.13/answer``."""
    status: int
    headers: dict[str, str]
    body: bytes


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    norm = data.replace(b"\r\n", b"\n")
    head, _, body = norm.partition(b"\n\n")
    return head.decode().split("\n"), body


def recorded_exchanges() -> list[Recorded]:
    """The request/response pairs of ari-rest-examples.txt, in order."""
    out: list[Recorded] = []
    pending: tuple[str, str] | None = None
    for seg in segments(REST_FILE):
        if seg.marker.endswith(">>> request"):
            first = _split_head(seg.data)[0][0].split(" ")
            pending = (first[0], first[1])
        elif seg.marker.endswith("<<< response") and pending is not None:
            lines, body = _split_head(seg.data)
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            length = int(headers.get("Content-Length", "0"))
            status = int(lines[0].split(" ")[1])
            out.append(Recorded(pending[0], pending[1], status, headers, body[:length]))
            pending = None
    return out


def stasis_frames() -> list[str]:
    """The recorded events WebSocket text frames, one per jsonl line, unchanged."""
    text = (FIXTURES / STASIS_FILE).read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line]


def _key(method: str, path: str, query: MultiDictProxy[str]) -> tuple[str, str, frozenset[Any]]:
    return method, path, frozenset(query.items())


class FakeAri:
    """The fake server; ``await start()``, use ``url``, ``await aclose()``."""

    def __init__(
        self, *, username: str = "callserver", password: str = "callserver", app: str = "callserver"
    ) -> None:
        self.username, self.password, self.app = username, password, app
        self.delay = 0.0
        self.close_on_accept = False
        self.requests: list[tuple[str, str]] = []
        self.segments: list[list[str]] = []
        self.bodies: list[bytes] = []
        self.ws_requests: list[tuple[str, str | None]] = []
        """``(raw path with query, Authorization header)`` of every accepted events upgrade."""
        self.gone: set[str] = set()
        self._table: dict[tuple[str, str, frozenset[Any]], Recorded] = {}
        for rec in recorded_exchanges():
            url = URL(rec.target)
            self._table[_key(rec.method, url.path, url.query)] = rec
        self._sockets: list[tuple[web.WebSocketResponse, web.BaseRequest]] = []
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ari"

    @property
    def ws_connections(self) -> int:
        return len(self.ws_requests)

    @property
    def open_sockets(self) -> int:
        return sum(1 for ws, _ in self._sockets if not ws.closed)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def aclose(self) -> None:
        self._closing.set()
        await self.drop()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- test controls ---------------------------------------------------------------------------

    async def send(self, frame: str | dict[str, Any]) -> int:
        """Send one text frame to every open events WebSocket; returns how many got it."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        sent = 0
        for ws, _ in list(self._sockets):
            if not ws.closed:
                await ws.send_str(text)
                sent += 1
        return sent

    async def replay_stasis(self) -> int:
        """Send every recorded Stasis frame; returns the number of frames."""
        frames = stasis_frames()
        for frame in frames:
            await self.send(frame)
        return len(frames)

    async def drop(self, *, abrupt: bool = False) -> None:
        """Close every events WebSocket (a close frame, or the bare TCP cut if ``abrupt``)."""
        sockets, self._sockets = self._sockets, []
        for ws, request in sockets:
            if abrupt and request.transport is not None:
                request.transport.abort()
            elif not ws.closed:
                await ws.close(code=1001, message=b"going away")

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait (at most 5 s) until ``predicate()`` holds; re-checked after every request and
        every WebSocket opened or closed."""
        async with asyncio.timeout(5.0):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_ws(self, count: int) -> None:
        """Wait (at most 5 s) until ``count`` events WebSockets were accepted and one is open."""
        await self.wait_for(lambda: self.ws_connections >= count and self.open_sockets > 0)

    # -- handlers --------------------------------------------------------------------------------

    def _authorized(self, request: web.BaseRequest) -> bool:
        expected = f"{self.username}:{self.password}"
        if request.query.get("api_key") == expected:
            return True
        header = request.headers.get("Authorization", "")
        token = base64.b64encode(expected.encode()).decode()
        return header == f"Basic {token}"

    @staticmethod
    def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
        hdrs = {"Cache-Control": "no-cache, no-store", **(headers or {})}
        if body:
            hdrs.setdefault("Content-type", "application/json")
        return web.Response(status=status, body=body or None, headers=hdrs)

    def _unauthorized(self) -> web.Response:
        www = {"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'}
        return self._json(401, _AUTH_BODY, www)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized()
        if not request.query.get("app"):
            return self._json(400, b'{"message":"Missing param \'app\'"}')
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws_requests.append((request.raw_path, request.headers.get("Authorization")))
        self._sockets.append((ws, request))
        self._changed.set()
        if self.close_on_accept:
            await ws.close(code=1011, message=b"flapping")
        try:
            async for _ in ws:
                pass  # the client sends nothing ARI cares about
        finally:
            self._changed.set()
        return ws

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized()
        self.requests.append((request.method, request.raw_path))
        self.bodies.append(await request.read())
        raw_path = request.raw_path.partition("?")[0]
        parts = [unquote(p) for p in raw_path.split("/")[1:]]
        self.segments.append(parts)
        self._changed.set()
        if self.delay:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.delay):
                    await self._closing.wait()
        return self._answer(request, raw_path, parts)

    def _answer(self, request: web.Request, raw_path: str, parts: list[str]) -> web.Response:
        query = MultiDict(request.query)
        query.popall("api_key", None)
        resource = parts[1] if len(parts) > 1 else ""
        ident = parts[2] if len(parts) > 2 else None
        if resource == "applications" and ident == self.app and self.open_sockets == 0:
            return self._json(404, b'{"message":"Application not found"}')
        if resource == "channels" and ident in self.gone:
            return self._json(404, b'{"message":"Channel not found"}')
        rec = self._table.get(_key(request.method, raw_path, MultiDictProxy(query)))
        if rec is None:
            return self._not_found(resource, ident)
        if request.method == "DELETE" and resource == "channels" and ident is not None:
            self.gone.add(ident)
        keep = {k: v for k, v in rec.headers.items() if k in ("Content-type", "Location")}
        return self._json(rec.status, rec.body, keep)

    def _not_found(self, resource: str, ident: str | None) -> web.Response:
        if resource == "channels" and ident is not None:
            return self._json(404, b'{"message":"Channel not found"}')
        if resource == "bridges" and ident is not None:
            return self._json(404, b'{"message":"Bridge not found"}')
        return self._json(404, b'{"message":"Resource not found"}')
