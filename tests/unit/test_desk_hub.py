"""The operator_notify hub without sockets: frames reach only the addressed operator's
browsers (or everyone with ``*``); a browser that stops reading is dropped, not waited for."""

from __future__ import annotations

import json

from desk.hub import CLIENT_QUEUE, OperatorHub


async def test_frames_reach_only_the_addressed_phone_case_insensitively() -> None:
    hub = OperatorHub()
    anna, boris = hub.subscribe("PJSIP/op101"), hub.subscribe("PJSIP/op102")
    await hub.push("pjsip/OP101", {"type": "callback_pop", "phone": "+79161234567"})
    assert json.loads(anna.get_nowait() or "")["type"] == "callback_pop"
    assert boris.empty()
    await hub.push("*", {"type": "callback_job", "job": {"id": "j1"}})
    assert not anna.empty() and not boris.empty()
    hub.unsubscribe(anna)
    await hub.push("PJSIP/op101", {"type": "x"})
    assert anna.qsize() == 1  # only the broadcast from before


async def test_a_browser_that_stops_reading_is_dropped() -> None:
    hub = OperatorHub()
    slow, fine = hub.subscribe("PJSIP/op101"), hub.subscribe("PJSIP/op102")
    for i in range(CLIENT_QUEUE + 1):
        hub.push_text("PJSIP/op101", f'{{"n": {i}}}')
    assert hub.dropped_clients == 1 and hub.clients == 1
    items = [slow.get_nowait() for _ in range(slow.qsize())]
    assert items[-1] is None  # its handler is told to close
    hub.push_text("PJSIP/op102", "{}")
    assert fine.get_nowait() == "{}"
