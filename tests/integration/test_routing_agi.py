"""Routing over a real FastAGI socket: the server from callserver.asterisk, our route handler,
and a test-side peer that speaks like Asterisk (tests/agi_peer.py)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callserver.asterisk.agi_server import FastAgiServer
from routing.agi_handler import make_route_handler
from routing.models import CallerProfile, LiveSnapshot, QueueLive, RouteRecord
from routing.overrides import OverrideBook
from routing.reload import RulesHolder
from routing.service import RoutingPorts, RoutingService, RoutingSettings
from tests.agi_peer import AgiCall, agi_call

EXAMPLE = Path(__file__).parents[2] / "routing" / "rules.example.toml"
MONDAY_NOON_MSK = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OP101, OP102, OP103 = "PJSIP/op101", "PJSIP/op102", "PJSIP/op103"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def __call__(self) -> datetime:
        return self.at


class FakeDirectory:
    """PatientDirectory over a dict, with an optional delay (seconds) to simulate a slow CRM."""

    def __init__(self) -> None:
        self.patients: dict[str, CallerProfile] = {}
        self.delay = 0.0
        self.lookups: list[str] = []

    async def lookup(self, phone_e164: str) -> CallerProfile | None:
        self.lookups.append(phone_e164)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.patients.get(phone_e164)


class FakeLive:
    def __init__(self) -> None:
        self.state = LiveSnapshot(
            {
                "reception": QueueLive(frozenset({OP101, OP102}), frozenset({OP101}), 5.0),
                "doctors": QueueLive(frozenset({OP102, OP103}), frozenset({OP103}), 10.0),
            }
        )

    async def snapshot(self, queues: Collection[str]) -> LiveSnapshot:
        return self.state


@dataclass
class Rig:
    service: RoutingService
    directory: FakeDirectory
    live: FakeLive
    clock: Clock
    port: int
    rules_file: Path


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rules_file = tmp_path / "rules.toml"
    shutil.copy(EXAMPLE, rules_file)
    directory, live, clock = FakeDirectory(), FakeLive(), Clock(MONDAY_NOON_MSK)
    service = RoutingService(
        RulesHolder(rules_file),
        OverrideBook(),
        RoutingPorts(directory=directory, live=live),
        RoutingSettings(lookup_budget_ms=150, reload_poll_s=0.05),
        clock=clock,
    )
    await service.start(install_sighup=False)
    server = FastAgiServer(
        "127.0.0.1", 0, {"route": make_route_handler(service)}, command_timeout=2.0,
        session_timeout=5.0,
    )  # fmt: skip
    await server.start()
    try:
        yield Rig(service, directory, live, clock, server.port, rules_file)
    finally:
        await server.aclose()
        await service.aclose()


async def test_known_patient_goes_to_coordinator_first(rig: Rig) -> None:
    rig.directory.patients["+79161234567"] = CallerProfile("p-1", coordinator=OP103, language="ru")
    call = await agi_call(rig.port, {"agi_arg_1": "74957654321", "agi_arg_2": "source-b"})
    v = call.variables
    assert v["ROUTE_AGENT"] == OP103
    assert v["ROUTE_STICKY"] == "20"
    assert v["ROUTE_MODE"] == "queue"
    assert v["ROUTE_QUEUE"] == "reception"
    assert v["ROUTE_LANG"] == "ru"
    assert "sticky:coordinator" in v["ROUTE_REASON"].split(",")
    assert rig.directory.lookups == ["+79161234567"]  # 7XXXXXXXXXX normalised to E.164
    assert call.closed_by_server


async def test_paid_ad_call_is_flagged_prioritised_and_recorded(rig: Rig) -> None:
    call = await agi_call(rig.port, {"agi_uniqueid": "1795413075.7"})
    v = call.variables
    assert v["ROUTE_CAMPAIGN"] == "yandex-implants-q4"
    assert int(v["ROUTE_PRIORITY"]) == 5
    assert "paid" in v["ROUTE_REASON"].split(",")
    assert v["ROUTE_RULES_VERSION"] == rig.service.rules.current.version
    record = await rig.service.record_for("1795413075.7")
    assert record is not None
    t = record.decision.tracking
    assert (t.did, t.source, t.campaign, t.paid) == (
        "74951234567", "source-a", "yandex-implants-q4", True,
    )  # fmt: skip
    assert next(c[:3] for c in call.commands) == ["SET", "VARIABLE", "ROUTE_QUEUE"]


async def test_overload_sends_to_bot(rig: Rig) -> None:
    rig.live.state = LiveSnapshot({"reception": QueueLive(frozenset({OP101}), frozenset(), 300.0)})
    call = await agi_call(rig.port)
    assert call.variables["ROUTE_MODE"] == "bot"
    assert "overflow_wait" in call.variables["ROUTE_REASON"]


async def test_nobody_logged_in_sends_to_bot(rig: Rig) -> None:
    rig.live.state = LiveSnapshot({})
    call = await agi_call(rig.port)
    assert (call.variables["ROUTE_MODE"], call.variables["ROUTE_REASON"].split(",")[-1]) == (
        "bot", "no_agents",
    )  # fmt: skip


async def test_after_hours_goes_to_voicemail(rig: Rig) -> None:
    rig.clock.at = datetime(2026, 11, 23, 19, 30, tzinfo=UTC)  # 22:30 in Moscow
    call = await agi_call(rig.port)
    assert call.variables["ROUTE_MODE"] == "voicemail"
    assert "after_hours" in call.variables["ROUTE_REASON"]
    assert "ROUTE_AGENT" not in call.variables


async def test_crm_timeout_still_routes_within_budget(rig: Rig) -> None:
    rig.directory.patients["+79161234567"] = CallerProfile("p-1", coordinator=OP103)
    rig.directory.delay = 2.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    call = await agi_call(rig.port)
    elapsed = loop.time() - started
    assert call.variables["ROUTE_QUEUE"] == "reception"
    assert "crm_timeout" in call.variables["ROUTE_REASON"]
    assert "ROUTE_AGENT" not in call.variables
    assert elapsed < 0.6, elapsed
    assert rig.service.crm_timeouts == 1


async def test_ivr_choice_routes_to_skill_queue(rig: Rig) -> None:
    call = await agi_call(rig.port, {"agi_arg_3": "", "agi_arg_4": "2"})
    assert call.variables["ROUTE_QUEUE"] == "doctors"
    assert "ivr:surgery" in call.variables["ROUTE_REASON"]


async def test_rules_hot_reload_during_traffic(rig: Rig) -> None:
    old = rig.service.rules.current.version
    text = rig.rules_file.read_text(encoding="utf-8")
    paid_did = 'campaign = "yandex-implants-q4"\nclinic = "moscow"\n'
    assert text.count(paid_did) == 1
    new_text = text.replace('version = "2026-11-23.1"', 'version = "2026-11-23.2"').replace(
        paid_did, paid_did + 'queue = "doctors"\n'
    )

    async def traffic(n: int) -> list[dict[str, str]]:
        out = []
        for i in range(n):
            call = await agi_call(rig.port, {"agi_uniqueid": f"1795.{i}"})
            out.append(call.variables)
        return out

    async def edit() -> None:
        await asyncio.sleep(0.05)
        tmp = rig.rules_file.with_suffix(".tmp")
        tmp.write_text(new_text, encoding="utf-8")
        tmp.replace(rig.rules_file)  # atomic, as an editor or a config tool would do

    results = await asyncio.gather(traffic(150), traffic(150), edit())
    calls = results[0] + results[1]
    assert all("ROUTE_QUEUE" in v and "ROUTE_MODE" in v for v in calls)  # nothing dropped
    versions = [v["ROUTE_RULES_VERSION"] for v in calls]
    new = rig.service.rules.current.version
    assert new != old and new.startswith("2026-11-23.2@")
    assert set(versions) <= {old, new}
    for v in calls:  # each call is consistent with the rules version it was decided by
        assert v["ROUTE_QUEUE"] == ("doctors" if v["ROUTE_RULES_VERSION"] == new else "reception")
    if versions[-1] != new:  # the edit may land after the traffic: one more call sees it
        await asyncio.sleep(0.2)
        assert (await agi_call(rig.port)).variables["ROUTE_RULES_VERSION"] == new


async def test_invalid_rules_file_keeps_old_rules(rig: Rig) -> None:
    old = rig.service.rules.current.version
    rig.rules_file.write_text('[defaults]\nqueue = "nowhere"\n', encoding="utf-8")
    rig.service.request_reload()
    await asyncio.sleep(0.2)
    assert rig.service.rules.current.version == old
    assert "defaults.queue" in rig.service.rules.last_error
    call = await agi_call(rig.port)
    assert call.variables["ROUTE_RULES_VERSION"] == old


async def test_injection_attempts_are_sent_as_data(rig: Rig) -> None:
    env = {
        "agi_callerid": '79161234567" HANGUP',
        "agi_calleridname": 'x"\\ EXEC Dial PJSIP/999',
        "agi_arg_2": 'source-a" EXEC Dial',
        "agi_arg_3": 'camp"\\nSET VARIABLE X 1',
        "agi_uniqueid": "1795.9",
    }
    call = await agi_call(rig.port, env)
    verbs = {tuple(c[:2]) for c in call.commands}
    assert verbs == {("SET", "VARIABLE")}
    assert set(call.variables) <= {
        "ROUTE_QUEUE", "ROUTE_PRIORITY", "ROUTE_AGENT", "ROUTE_STICKY", "ROUTE_LANG",
        "ROUTE_MODE", "ROUTE_REASON", "ROUTE_CAMPAIGN", "ROUTE_RULES_VERSION",
    }  # fmt: skip
    for value in call.variables.values():
        assert '"' not in value and "\n" not in value and " " not in value
    assert "anonymous" in call.variables["ROUTE_REASON"]  # unreadable caller ID: not guessed
    assert rig.directory.lookups == []


async def test_failed_set_variable_leaves_dialplan_defaults(rig: Rig) -> None:
    call = await agi_call(rig.port, fail_command="SET")
    assert len(call.commands) == 1  # stopped after the first failure
    assert call.variables == {}
    assert call.closed_by_server
    after = await agi_call(rig.port)  # the server is still fine
    assert after.variables["ROUTE_QUEUE"] == "reception"


async def test_caller_hanging_up_mid_route(rig: Rig) -> None:
    call = await agi_call(rig.port, hangup_after=2)
    assert len(call.commands) == 3
    after = await agi_call(rig.port)
    assert "ROUTE_MODE" in after.variables


async def test_supervisor_override_applies_to_next_call(rig: Rig) -> None:
    from routing.overrides import build_override

    override = build_override(
        rig.service.rules.current,
        {"scope": "queue", "value": "reception", "minutes": 30, "mode": "bot"},
        actor="supervisor-1",
        now=rig.clock.at,
    )
    await rig.service.overrides.add(override)
    call = await agi_call(rig.port)
    assert call.variables["ROUTE_MODE"] == "bot"
    assert f"override:{override.id}" in call.variables["ROUTE_REASON"]
    audit = await rig.service.overrides.audit()
    assert [(e.action, e.actor) for e in audit] == [("create", "supervisor-1")]


class HeldLog:
    """A DecisionLog whose writes finish only when the test says so."""

    def __init__(self) -> None:
        self.records: list[RouteRecord] = []
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    def record(self, record: RouteRecord) -> None:
        self.records.append(record)

    async def wait_written(self, uniqueid: str, within: float) -> bool:
        self.waiting.set()
        await self.release.wait()
        return True

    async def get(self, uniqueid: str) -> RouteRecord | None:
        return None


async def test_route_reason_is_set_only_once_the_decision_is_written(rig: Rig) -> None:
    """A channel carrying ROUTE_REASON has a stored decision: callserver killed while the write
    is pending leaves the dialplan without it (the reconciler relies on this)."""
    log = HeldLog()
    service = RoutingService(
        RulesHolder(rig.rules_file), OverrideBook(),
        RoutingPorts(directory=rig.directory, live=rig.live, decisions=log),
        RoutingSettings(lookup_budget_ms=150), clock=rig.clock,
    )  # fmt: skip
    server = FastAgiServer("127.0.0.1", 0, {"route": make_route_handler(service)})
    await server.start()
    try:
        call = AgiCall()
        task = asyncio.ensure_future(agi_call(server.port, {"agi_uniqueid": "1.1"}, call=call))
        await asyncio.wait_for(log.waiting.wait(), 5)
        assert "ROUTE_MODE" in call.variables and "ROUTE_REASON" not in call.variables
        log.release.set()
        await asyncio.wait_for(task, 5)
        assert call.variables["ROUTE_REASON"] and [r.uniqueid for r in log.records] == ["1.1"]
    finally:
        await server.aclose()
