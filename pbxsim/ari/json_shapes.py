"""ARI JSON exactly shaped like Asterisk 22's (keys, nesting and key order).

Shapes copied from ``tests/fixtures/asterisk/ari-stasis-call.jsonl`` and
``ari-rest-examples.txt``. Asterisk renders JSON compactly (no spaces); ``dumps`` does too.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pbxsim.model import Bridge, Channel

Json = dict[str, Any]
ARI_STATE = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
}
CAUSE_TXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    19: "No user responding",
    21: "Call Rejected",
    32: "Circuit/channel congestion",
    34: "Circuit/channel congestion",
}


def dumps(obj: object) -> str:
    """Compact JSON like Asterisk's (non-ASCII kept as UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def ari_time(ts: float) -> str:
    """``2026-11-23T05:53:48.238+0000`` (UTC, milliseconds)."""
    ms = int(ts * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{ms:03d}+0000"


def _party(num: str, name: str) -> Json:
    return {
        "name": "" if name == "<unknown>" else name,
        "number": "" if num == "<unknown>" else num,
    }


def protocol_id(ch: Channel) -> str:
    """The SIP Call-ID of PJSIP channels (``PVTCALLID`` when set), empty for others."""
    if not ch.name.startswith("PJSIP/"):
        return ""
    return ch.variables.get("PVTCALLID") or f"1-{ch.uniqueid.rsplit('.', 1)[-1]}@127.0.0.1"


def channel_json(
    ch: Channel, *, state: int | None = None, app: tuple[str, str] | None = None
) -> Json:
    """A channel snapshot; ``state``/``app`` override the live values (earlier snapshots)."""
    app_name, app_data = app if app is not None else (ch.app, ch.app_data)
    return {
        "id": ch.uniqueid,
        "name": ch.name,
        "state": ARI_STATE.get(ch.state if state is None else state, "Unknown"),
        "protocol_id": protocol_id(ch),
        "caller": _party(ch.cid_num, ch.cid_name),
        "connected": _party(ch.conn_num, ch.conn_name),
        "accountcode": "",
        "dialplan": {
            "context": ch.context,
            "exten": ch.exten,
            "priority": ch.priority,
            "app_name": app_name,
            "app_data": app_data,
        },
        "creationtime": ari_time(ch.created),
        "language": ch.language,
    }


def bridge_json(br: Bridge, created: float, technology: str = "simple_bridge") -> Json:
    """A bridge snapshot (``bridge_class`` ``stasis``: every ARI-made bridge is one)."""
    return {
        "id": br.uniqueid,
        "technology": technology,
        "bridge_type": "mixing",
        "bridge_class": "stasis",
        "creator": br.creator,
        "name": br.name if br.name != "<unknown>" else "",
        "channels": [c.uniqueid for c in br.channels],
        "creationtime": ari_time(created),
        "video_mode": br.video_mode,
    }


@dataclass
class Playback:
    """One playback: ``target_uri`` is ``channel:<id>`` or ``bridge:<id>``."""

    id: str
    media_uri: str
    target_uri: str
    language: str = "en"
    state: str = "queued"

    def json(self, state: str | None = None) -> Json:
        return {
            "id": self.id,
            "media_uri": self.media_uri,
            "target_uri": self.target_uri,
            "language": self.language,
            "state": state or self.state,
        }


def event(type_: str, *, before: Json | None = None, after: Json | None = None) -> Json:
    """An event without the trailing ``asterisk_id``/``application`` (added per app).

    ``before`` fields come ahead of ``type`` (ChannelVarset, ChannelHangupRequest put
    theirs there), ``after`` fields follow ``timestamp``.
    """
    out: Json = dict(before or {})
    out["type"] = type_
    out["timestamp"] = ari_time(time.time())
    out.update(after or {})
    return out


def for_app(ev: Json, asterisk_id: str, app: str) -> Json:
    out = dict(ev)
    out["asterisk_id"] = asterisk_id
    out["application"] = app
    return out


def asterisk_info(entity_id: str, started: float) -> Json:
    """GET /asterisk/info."""
    return {
        "build": {
            "os": "Linux",
            "kernel": "pbxsim",
            "machine": "x86_64",
            "options": "OPTIONAL_API",
            "date": ari_time(started),
            "user": "pbxsim",
        },
        "system": {"version": "22.10.1", "entity_id": entity_id},
        "config": {"name": "", "default_language": "en", "setid": {"user": "", "group": ""}},
        "status": {"startup_time": ari_time(started), "last_reload_time": ari_time(started)},
    }


def application_json(name: str, channel_ids: list[str], bridge_ids: list[str]) -> Json:
    """GET /applications/{name}."""
    return {
        "name": name,
        "channel_ids": channel_ids,
        "bridge_ids": bridge_ids,
        "endpoint_ids": [],
        "device_names": [],
        "events_allowed": [],
        "events_disallowed": [],
    }
