"""ARI REST calls on aiohttp, each with a deadline and typed errors (used by ``AriClient``).

Every call is bounded by ``AriConfig.request_timeout`` seconds (connect + whole answer) and raises
``AriTimeout``, ``AriConnectionError`` (cannot connect / connection lost), ``AriHttpError``
(status ≥ 400; ``details['status']``, ``details['body']``) or ``AriError`` (answer not JSON or
an invalid id).
Resource ids go into the path percent-encoded one segment each and values into the query string
via yarl, so an untrusted id or value can never change which resource is addressed.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote

import aiohttp
from yarl import URL

from callserver.asterisk.ari_models import Application, AsteriskInfo, Bridge, Channel, Playback
from callserver.asterisk.errors import AriConnectionError, AriError, AriHttpError, AriTimeout
from callserver.config import AriConfig

Query = Mapping[str, str | int | None]
"""Query parameters; a ``None`` value leaves the parameter out."""

HEADERS = {"Accept": "application/json"}
_BODY_KEEP = 2000


def clean(text: object, limit: int = 200) -> str:
    """Untrusted text made safe for one log line: CR/LF escaped, cut to ``limit`` characters."""
    s = str(text)[:limit]
    return s.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` header value for HTTP basic auth (UTF-8 credentials)."""
    if ":" in username:
        raise AriError(message="ari.username must not contain ':'", key="ari.username")
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _segment(value: str) -> str:
    """One percent-encoded path segment that cannot add, climb or leave a path level."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise AriError(message=f"invalid ARI resource id {clean(repr(value))}", value=value)
    return quote(value, safe="")


class AriRest:
    """The REST half of one Asterisk's ARI.

    ``session`` is borrowed (never closed) when given; otherwise one is created on first use and
    closed by ``aclose()``.
    """

    def __init__(self, config: AriConfig, *, session: aiohttp.ClientSession | None = None) -> None:
        self._config = config
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._base = config.url.rstrip("/")
        self._headers = {**HEADERS, "Authorization": basic_auth(config.username, config.password)}

    async def aclose(self) -> None:
        """Close the HTTP session if this object created it. Requests after this raise
        AriConnectionError: a Stasis task still running at shutdown must not open a new session
        nobody closes (an unclosed-session leak seen in the end-to-end tests)."""
        self._closed = True
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise AriConnectionError(message="ARI client closed (server stopping)")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _url(self, *segments: str) -> URL:
        return URL(self._base + "/" + "/".join(_segment(s) for s in segments), encoded=True)

    def _transport_error(self, method: str, url: URL, exc: BaseException) -> AriError:
        timeout = self._config.request_timeout
        what = f"ARI {method} {url.raw_path}"
        if isinstance(exc, TimeoutError):
            return AriTimeout(message=f"{what}: no answer within {timeout}s", timeout=timeout)
        if isinstance(exc, aiohttp.ClientConnectionError | OSError):
            return AriConnectionError(message=f"{what}: {clean(exc) or type(exc).__name__}")
        return AriError(message=f"{what}: {clean(exc) or type(exc).__name__}")

    async def _request(
        self, method: str, *segments: str, query: Query | None = None, body: Any = None
    ) -> Any:
        """One REST exchange within ``request_timeout``; returns decoded JSON, or None for an
        empty answer (204). Raises AriTimeout, AriConnectionError, AriHttpError or AriError."""
        url = self._url(*segments)
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        try:
            async with asyncio.timeout(self._config.request_timeout):
                async with self._get_session().request(
                    method, url, params=params, json=body, headers=self._headers
                ) as resp:
                    status, raw = resp.status, await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self._transport_error(method, url, exc) from exc
        if status >= 400:
            raise _http_error(method, url, status, raw)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise AriError(
                message=f"ARI {method} {url.raw_path}: answer {status} is not JSON", status=status
            ) from exc

    async def _object(self, method: str, *segments: str, query: Query | None = None) -> Any:
        data = await self._request(method, *segments, query=query)
        if not isinstance(data, dict):
            what = clean("/".join(segments))
            raise AriError(message=f"ARI {method} {what}: expected a JSON object")
        return data

    # -- REST resources --------------------------------------------------------------------------

    async def asterisk_info(self) -> AsteriskInfo:
        """``GET /asterisk/info``."""
        return cast(AsteriskInfo, await self._object("GET", "asterisk", "info"))

    async def application(self, name: str) -> Application:
        """``GET /applications/{name}``; 404 (AriHttpError) while the app is not registered."""
        return cast(Application, await self._object("GET", "applications", name))

    async def channels(self) -> list[Channel]:
        """``GET /channels``: every channel Asterisk has, not only ours."""
        data = await self._request("GET", "channels")
        if not isinstance(data, list):
            raise AriError(message="ARI GET channels: expected a JSON list")
        return cast(list[Channel], data)

    async def channel(self, channel_id: str) -> Channel:
        """``GET /channels/{id}``."""
        return cast(Channel, await self._object("GET", "channels", channel_id))

    async def get_variable(self, channel_id: str, name: str) -> str:
        """``GET /channels/{id}/variable?variable=NAME``; the value (404 when unset)."""
        data = await self._object(
            "GET", "channels", channel_id, "variable", query={"variable": name}
        )
        return str(data.get("value", ""))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        """``POST /channels/{id}/variable?variable=NAME&value=VALUE`` (204)."""
        query = {"variable": name, "value": value}
        await self._request("POST", "channels", channel_id, "variable", query=query)

    async def answer(self, channel_id: str) -> None:
        """``POST /channels/{id}/answer`` (204)."""
        await self._request("POST", "channels", channel_id, "answer")

    async def continue_in_dialplan(self, channel_id: str) -> None:
        """``POST /channels/{id}/continue`` (204): leave Stasis, go on with the dialplan."""
        await self._request("POST", "channels", channel_id, "continue")

    async def hangup(self, channel_id: str, reason: str | None = "normal") -> None:
        """``DELETE /channels/{id}?reason=…`` (204); ``reason=None`` sends no reason."""
        await self._request("DELETE", "channels", channel_id, query={"reason": reason})

    async def play(
        self,
        channel_id: str,
        media: str,
        playback_id: str | None = None,
        *,
        lang: str | None = None,
    ) -> Playback:
        """``POST /channels/{id}/play[/{playback_id}]?media=…&lang=…`` (201)."""
        path = ("channels", channel_id, "play") + ((playback_id,) if playback_id else ())
        return cast(
            Playback, await self._object("POST", *path, query={"media": media, "lang": lang})
        )

    async def stop_playback(self, playback_id: str) -> None:
        """``DELETE /playbacks/{id}`` (204): stop a playback (404 when it already ended)."""
        await self._request("DELETE", "playbacks", playback_id)

    async def create_bridge(
        self, type: str = "mixing", bridge_id: str | None = None, *, name: str | None = None
    ) -> Bridge:
        """``POST /bridges?type=…&bridgeId=…&name=…``; ``type`` is comma-separated ARI flags."""
        query = {"type": type, "bridgeId": bridge_id, "name": name}
        return cast(Bridge, await self._object("POST", "bridges", query=query))

    async def bridge(self, bridge_id: str) -> Bridge:
        """``GET /bridges/{id}``."""
        return cast(Bridge, await self._object("GET", "bridges", bridge_id))

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        """``POST /bridges/{id}/addChannel?channel=…`` (204)."""
        query = {"channel": channel_id}
        await self._request("POST", "bridges", bridge_id, "addChannel", query=query)

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        """``POST /bridges/{id}/removeChannel?channel=…`` (204)."""
        query = {"channel": channel_id}
        await self._request("POST", "bridges", bridge_id, "removeChannel", query=query)

    async def destroy_bridge(self, bridge_id: str) -> None:
        """``DELETE /bridges/{id}`` (204)."""
        await self._request("DELETE", "bridges", bridge_id)

    async def bridge_play(
        self, bridge_id: str, media: str, playback_id: str | None = None, *, lang: str | None = None
    ) -> Playback:
        """``POST /bridges/{id}/play[/{playback_id}]?media=…&lang=…`` (201)."""
        path = ("bridges", bridge_id, "play") + ((playback_id,) if playback_id else ())
        return cast(
            Playback, await self._object("POST", *path, query={"media": media, "lang": lang})
        )

    async def external_media(
        self,
        app: str,
        external_host: str,
        format: str,
        *,
        encapsulation: str = "rtp",
        transport: str = "udp",
        direction: str = "both",
        channel_id: str | None = None,
    ) -> Channel:
        """``POST /channels/externalMedia?…``: a UnicastRTP channel sending ``format`` audio to
        ``external_host`` ("host:port"); its ``channelvars`` name the local RTP address/port."""
        query = {
            "app": app,
            "external_host": external_host,
            "format": format,
            "encapsulation": encapsulation,
            "transport": transport,
            "direction": direction,
            "channelId": channel_id,
        }
        return cast(Channel, await self._object("POST", "channels", "externalMedia", query=query))

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | None = None,
        caller_id: str | None = None,
        ring_timeout: int | None = None,
        channel_id: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """``POST /channels?endpoint=…&app=…``: dial ``endpoint`` into Stasis app ``app``
        (default: ours); ``ring_timeout`` is ARI's ``timeout`` in seconds; ``variables`` go in the
        JSON body."""
        query: dict[str, str | int | None] = {
            "endpoint": endpoint,
            "app": app or self._config.app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": ring_timeout,
            "channelId": channel_id,
        }
        body = {"variables": dict(variables)} if variables else None
        data = await self._request("POST", "channels", query=query, body=body)
        if not isinstance(data, dict):
            raise AriError(message="ARI POST channels: expected a JSON object")
        return cast(Channel, data)


def _http_error(method: str, url: URL, status: int, raw: bytes) -> AriHttpError:
    text = raw[:_BODY_KEEP].decode("utf-8", "replace")
    reason = text
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        reason = str(parsed.get("message") or parsed.get("error") or text)
    hint = " (check ari.username / ari.password)" if status == 401 else ""
    return AriHttpError(
        message=f"ARI {method} {url.raw_path} -> {status}: {clean(reason)}{hint}",
        status=status,
        body=text,
        method=method,
        path=url.raw_path,
    )
