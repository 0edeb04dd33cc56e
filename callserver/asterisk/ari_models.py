"""Shapes of the ARI JSON objects callserver reads (Asterisk 20/22, ``pretty = no``).

Plain ``TypedDict``s over the decoded JSON: no copying, no validation beyond "it is an object".
Every key is optional (``total=False``) because Asterisk adds and omits fields between versions;
read with ``.get()`` where a field may be missing. Everything in them is untrusted input.
"""

from __future__ import annotations

from typing import Any, TypedDict


class CallerId(TypedDict, total=False):
    name: str
    number: str


class DialplanCep(TypedDict, total=False):
    context: str
    exten: str
    priority: int
    app_name: str
    app_data: str


class Channel(TypedDict, total=False):
    id: str
    name: str
    state: str
    protocol_id: str
    caller: CallerId
    connected: CallerId
    accountcode: str
    dialplan: DialplanCep
    creationtime: str
    language: str
    channelvars: dict[str, str]


class Bridge(TypedDict, total=False):
    id: str
    technology: str
    bridge_type: str
    bridge_class: str
    creator: str
    name: str
    channels: list[str]
    creationtime: str
    video_mode: str


class Playback(TypedDict, total=False):
    id: str
    media_uri: str
    target_uri: str
    language: str
    state: str


class Application(TypedDict, total=False):
    name: str
    channel_ids: list[str]
    bridge_ids: list[str]
    endpoint_ids: list[str]
    device_names: list[str]
    events_allowed: list[dict[str, Any]]
    events_disallowed: list[dict[str, Any]]


class AsteriskSystem(TypedDict, total=False):
    version: str
    entity_id: str


class AsteriskInfo(TypedDict, total=False):
    build: dict[str, Any]
    system: AsteriskSystem
    config: dict[str, Any]
    status: dict[str, Any]


AriEvent = dict[str, Any]
"""One decoded events-WebSocket frame: ``type``, ``timestamp``, ``application`` and per-type keys
(``channel``, ``bridge``, ``playback``, ``args`` …)."""
