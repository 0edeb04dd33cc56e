"""Transfers and hold on the live API over a real socket: ``/ws/live`` frames and ``/api/live``
while the golden transcripts are replayed through the real codec, translator and model."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from callserver.asterisk.ami_codec import AmiCodec
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.core.bus import EventBus
from callserver.core.model import LiveModel
from callserver.metrics import Metrics
from callserver.web.app import build_web_app
from callserver.web.auth import token_authenticator
from callserver.web.live import LIVE_WS_PATH, LiveHub, live_routes
from tests.transcripts import from_asterisk

TOKEN = "flows-token"


async def test_transfer_and_hold_reach_the_websocket_and_the_live_snapshot() -> None:
    bus, hub = EventBus(), LiveHub()
    model = LiveModel(bus)
    translator = AmiTranslator(model)
    bus.subscribe(hub.publish)
    routes = live_routes(hub, model.to_dict, TOKEN)
    app = build_web_app(
        authenticators=[token_authenticator(TOKEN)], health_checks={}, metrics=Metrics(),
        routes=routes, public_paths=[LIVE_WS_PATH], on_shutdown=[hub.close],
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(app)) as c:
        ws = await c.ws_connect(f"/ws/live?token={TOKEN}")
        for _ in range(500):  # the handler registers the client after the handshake
            if hub.clients:
                break
            await asyncio.sleep(0.01)
        assert hub.clients == 1
        on_hold: list[dict[str, Any]] = []
        for name in ("ami-hold-unhold.txt", "ami-blind-transfer.txt"):
            for msg in AmiCodec().feed(from_asterisk(name)):
                translator.handle(msg)
                if msg.name == "Hold":
                    on_hold.append(await (await c.get("/api/live", headers=auth)).json())
        frames: list[dict[str, Any]] = []
        calls_ended = 0
        while calls_ended < 2:  # the hold call, then the transferred one
            frames.append(json.loads((await ws.receive(timeout=5)).data))
            calls_ended += frames[-1]["type"] == "CallEnded"
        await ws.close()
    [live] = on_hold
    assert [(c["state"], c["agent"]) for c in live["calls"]] == [("on_hold", "PJSIP/op101")]
    assert live["counts"]["on_hold"] == 1
    by_type = {f["type"]: f for f in frames}
    held, unheld = by_type["CallHeld"], by_type["CallUnheld"]
    assert held["agent"] == "PJSIP/op101" and held["call"]["state"] == "on_hold"
    assert unheld["held_seconds"] > 4 and unheld["call"]["hold_seconds"] == unheld["held_seconds"]
    moved = by_type["CallTransferred"]
    assert (moved["kind"], moved["from_agent"], moved["target"]) == (
        "blind", "PJSIP/op101", "102@operators")
    answered = by_type["TransferAnswered"]
    assert answered["agent"] == "PJSIP/op102" and answered["call"]["agent"] == "PJSIP/op102"
    ended = [f for f in frames if f["type"] == "CallEnded"][-1]
    assert [t["agent"] for t in ended["call"]["agents"]] == ["PJSIP/op101", "PJSIP/op102"]
    assert ended["call"]["agents"][0]["talk_seconds"] == 4.0
