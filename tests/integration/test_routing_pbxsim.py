"""End to end through pbxsim: its lab dialplan runs ``AGI(agi://…/route,${DID},${AD_SOURCE})``
against callserver's FastAGI server with routing's handler, then honours ROUTE_* (queue, sticky
agent first, bot via Stasis, voicemail). Assertions read the AMI events pbxsim emits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callserver.asterisk.agi_server import FastAgiServer
from pbxsim.app import Pbx, PbxOptions
from pbxsim.dialplan import InboundCall
from pbxsim.scenario import AgentsSpec, QueueSpec, Scenario
from routing.agi_handler import make_route_handler
from routing.models import CallerProfile, LiveSnapshot, QueueLive
from routing.overrides import OverrideBook
from routing.reload import RulesHolder
from routing.service import RoutingPorts, RoutingService, RoutingSettings
from tests.integration.test_routing_agi import EXAMPLE, Clock, FakeDirectory, FakeLive

pytestmark = pytest.mark.integration

SCENARIO = Scenario(
    name="routing",
    dids={"74951234567": "source-a", "74957654321": "source-b"},
    queues=(QueueSpec("reception", members=(("*", 0),)), QueueSpec("doctors", members=(("*", 0),))),
    agents=AgentsSpec(count=3),
)
CALLER = "79161234567"


@dataclass
class World:
    service: RoutingService
    directory: FakeDirectory
    live: FakeLive
    clock: Clock
    agi: FastAgiServer

    async def call(
        self, did: str = "74951234567", *, agi_port: int | None = None
    ) -> list[dict[str, str]]:
        """One inbound call through pbxsim; the AMI events it produced, as dicts."""
        pbx = Pbx(SCENARIO, PbxOptions(agi_port=agi_port or self.agi.port, ami_port=0, speed=50.0))
        out: list[bytes] = []
        pbx.engine.sink = out.append
        try:
            pbx.start_call(InboundCall(did=did, caller=CALLER, patience=5.0, talk_s=2.0,
                                       stasis_hold_s=2.0))  # fmt: skip
            await asyncio.sleep(0)
            await pbx.wait_idle(10.0)
        finally:
            await pbx.aclose()
        return [_event(block) for block in b"".join(out).decode().split("\r\n\r\n") if block]


def _event(block: str) -> dict[str, str]:
    pairs = (line.split(": ", 1) for line in block.split("\r\n") if ": " in line)
    return {k: v for k, v in pairs}


def varsets(events: list[dict[str, str]]) -> dict[str, str]:
    return {e["Variable"]: e["Value"] for e in events if e.get("Event") == "VarSet"}


def apps(events: list[dict[str, str]]) -> list[str]:
    return [e["Application"] for e in events if e.get("Event") == "Newexten"]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    directory, live, clock = (
        FakeDirectory(),
        FakeLive(),
        Clock(datetime(2026, 11, 23, 9, tzinfo=UTC)),
    )
    service = RoutingService(RulesHolder(EXAMPLE), OverrideBook(),
                             RoutingPorts(directory=directory, live=live),
                             RoutingSettings(lookup_budget_ms=150), clock=clock)  # fmt: skip
    await service.start(install_sighup=False)
    agi = FastAgiServer("127.0.0.1", 0, {"route": make_route_handler(service)})
    await agi.start()
    try:
        yield World(service, directory, live, clock, agi)
    finally:
        await agi.aclose()
        await service.aclose()


async def test_known_patient_rings_coordinator_first(world: World) -> None:
    world.directory.patients["+79161234567"] = CallerProfile("p-1", coordinator="PJSIP/op103")
    events = await world.call("74957654321")
    v = varsets(events)
    assert (v["AGISTATUS"], v["ROUTE_AGENT"], v["ROUTE_STICKY"]) == ("SUCCESS", "PJSIP/op103", "20")
    ringing = [e["Channel"] for e in events if e.get("Event") == "Newchannel"
               and e.get("Channel", "").startswith("PJSIP/op")]  # fmt: skip
    assert ringing and ringing[0].startswith("PJSIP/op103-")


async def test_paid_ad_call_flagged_and_prioritised(world: World) -> None:
    events = await world.call("74951234567")
    v = varsets(events)
    assert v["ROUTE_CAMPAIGN"] == "yandex-implants-q4"
    assert v["ROUTE_PRIORITY"] == "5" and "paid" in v["ROUTE_REASON"].split(",")
    joins = [e for e in events if e.get("Event") == "QueueCallerJoin"]
    assert [e["Queue"] for e in joins] == ["reception"]
    record = await world.service.record_for(events[0]["Uniqueid"])
    assert record is not None and record.decision.tracking.paid


async def test_overload_sends_caller_to_the_bot(world: World) -> None:
    world.live.state = LiveSnapshot(
        {"reception": QueueLive(frozenset({"PJSIP/op101"}), frozenset(), 600.0)}
    )
    events = await world.call()
    assert varsets(events)["ROUTE_MODE"] == "bot"
    assert "Stasis" in apps(events) and "Queue" not in apps(events)


async def test_after_hours_goes_to_voicemail(world: World) -> None:
    world.clock.at = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 23:00 Moscow
    events = await world.call()
    assert varsets(events)["ROUTE_MODE"] == "voicemail"
    assert "VoiceMail" in apps(events) and "Queue" not in apps(events)


async def test_crm_timeout_still_routes(world: World) -> None:
    world.directory.patients["+79161234567"] = CallerProfile("p-1", coordinator="PJSIP/op103")
    world.directory.delay = 3.0
    events = await world.call()
    v = varsets(events)
    assert "crm_timeout" in v["ROUTE_REASON"] and "ROUTE_AGENT" not in v
    assert [e["Queue"] for e in events if e.get("Event") == "QueueCallerJoin"] == ["reception"]


async def test_callserver_down_dialplan_defaults_carry_the_call(world: World) -> None:
    port = world.agi.port
    await world.agi.aclose()
    events = await world.call(agi_port=port)
    v = varsets(events)
    assert v["AGISTATUS"] == "FAILURE" and v["ROUTE_QUEUE"] == "reception"
    assert [e["Queue"] for e in events if e.get("Event") == "QueueCallerJoin"] == ["reception"]
