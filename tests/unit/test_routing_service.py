"""RoutingService with small fake ports: budgets, fallbacks, safe default, reload, SIGHUP, and the
LiveModel adapter (no sockets)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import routing
from callserver.core.bus import EventBus
from callserver.core.model import LiveModel
from callserver.core.model.records import MemberInfo
from routing.live_model import LiveModelState
from routing.models import CallerProfile, LiveSnapshot, QueueLive, RouteRecord, RouteRequest
from routing.overrides import OverrideBook
from routing.reload import RulesHolder
from routing.service import RoutingPorts, RoutingService, RoutingSettings

EXAMPLE = Path(routing.__file__).parent / "rules.example.toml"
NOON = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
REQ = RouteRequest("u1", did="74957654321", caller="+79161234567")


class RedisDown:
    """A live-state port whose backend is unreachable (what a Redis adapter raises, translated)."""

    calls = 0

    async def snapshot(self, queues: Collection[str]) -> LiveSnapshot:
        self.calls += 1
        raise ConnectionError("redis: connection refused")


class Static:
    def __init__(self, snap: LiveSnapshot) -> None:
        self.snap = snap

    async def snapshot(self, queues: Collection[str]) -> LiveSnapshot:
        return self.snap


class Directory:
    def __init__(self, result: CallerProfile | None = None, exc: Exception | None = None) -> None:
        self.result, self.exc = result, exc

    async def lookup(self, phone_e164: str) -> CallerProfile | None:
        if self.exc:
            raise self.exc
        return self.result


class BrokenLog:
    def record(self, record: RouteRecord) -> None:
        raise RuntimeError("disk full")

    async def get(self, uniqueid: str) -> RouteRecord | None:
        return None


def make(ports: RoutingPorts, path: Path = EXAMPLE, **settings: Any) -> RoutingService:
    service = RoutingService(
        RulesHolder(path), OverrideBook(), ports, RoutingSettings(**settings), clock=lambda: NOON
    )
    service.rules.load_initial()
    return service


async def test_live_state_falls_back_to_in_process_model_when_redis_is_down() -> None:
    nobody = LiveSnapshot({})
    service = make(RoutingPorts(live=RedisDown(), live_fallback=Static(nobody)))
    d = await service.route(REQ)
    assert d.mode == "bot" and "no_agents" in d.reasons  # the fallback's state was used
    assert service.live_failures == 1


async def test_no_live_state_at_all_still_routes() -> None:
    service = make(RoutingPorts(live=RedisDown()))
    d = await service.route(REQ)
    assert (d.queue, d.mode) == ("reception", "queue")
    assert "live_unknown" in d.reasons


async def test_crm_error_routes_without_patient() -> None:
    service = make(RoutingPorts(directory=Directory(exc=OSError("crm down"))))
    d = await service.route(REQ)
    assert "crm_error" in d.reasons and service.crm_errors == 1


async def test_policy_crash_gives_safe_default(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr("routing.service.decide", boom)
    service = make(RoutingPorts())
    d = await service.route(REQ)
    assert (d.queue, d.mode, d.reasons) == ("reception", "queue", ("safe_default", "error"))
    assert service.safe_defaults == 1
    record = await service.record_for("u1")
    assert record is not None and record.decision == d


async def test_decision_log_failure_does_not_fail_the_call() -> None:
    service = make(RoutingPorts(decisions=BrokenLog()))
    assert (await service.route(REQ)).queue == "reception"


async def test_cancellation_is_not_swallowed() -> None:
    class Hang:
        async def lookup(self, phone_e164: str) -> CallerProfile | None:
            await asyncio.sleep(10)
            return None

    service = make(RoutingPorts(directory=Hang()), lookup_budget_ms=5000)
    task = asyncio.create_task(service.route(REQ))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_recent_decisions_are_bounded() -> None:
    service = make(RoutingPorts(), recent_decisions=3)
    for i in range(5):
        await service.route(RouteRequest(f"u{i}"))
    assert await service.record_for("u0") is None
    assert await service.record_for("u4") is not None


async def test_sighup_reloads_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    service = RoutingService(RulesHolder(path), OverrideBook(), RoutingPorts(),
                             RoutingSettings(reload_poll_s=60), clock=lambda: NOON)  # fmt: skip
    await service.start(install_sighup=True)
    try:
        if signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None):
            pytest.fail("SIGHUP handler not installed")
        old = service.rules.current.version
        path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if service.rules.current.version != old:
                break
        assert service.rules.current.version != old
        assert service.rules.reloads == 1
    finally:
        await service.aclose()
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


async def test_expired_override_is_swept_and_audited() -> None:
    from datetime import timedelta

    from routing.overrides import build_override

    now = [NOON]
    service = RoutingService(RulesHolder(EXAMPLE), OverrideBook(), RoutingPorts(),
                             RoutingSettings(reload_poll_s=0.01), clock=lambda: now[0])  # fmt: skip
    await service.start(install_sighup=False)
    try:
        o = build_override(service.rules.current, {"minutes": 1, "mode": "voicemail"},
                           actor="s", now=NOON)  # fmt: skip
        await service.overrides.add(o)
        assert (await service.route(REQ)).mode == "voicemail"
        now[0] = NOON + timedelta(minutes=2)
        await asyncio.sleep(0.1)
        assert service.overrides.active(now[0]) == []
        assert [e.action for e in await service.overrides.audit()] == ["expire", "create"]
        assert (await service.route(REQ)).mode == "queue"
    finally:
        await service.aclose()


async def test_live_model_adapter() -> None:
    model = LiveModel(EventBus())
    for queue, iface, status, paused in (
        ("reception", "PJSIP/op101", "not_inuse", False),
        ("reception", "PJSIP/op102", "inuse", False),
        ("reception", "PJSIP/op104", "not_inuse", True),
        ("doctors", "PJSIP/op103", "unavailable", False),
    ):
        model.member_status(MemberInfo(queue, iface, status=status, paused=paused), at=1.0)
    state = LiveModelState(model, max_age_s=0.0)
    snap = await state.snapshot(["reception", "doctors", "labq"])
    assert snap.queue("reception") == QueueLive(
        frozenset({"PJSIP/op101", "PJSIP/op102", "PJSIP/op104"}), frozenset({"PJSIP/op101"}), 0.0
    )
    assert snap.queue("doctors").logged_in == frozenset()
    assert snap.queue("labq") == QueueLive(frozenset(), frozenset(), 0.0)


async def test_shared_live_state_skips_malformed_entries_and_caches() -> None:

    from routing.live_model import SharedLiveState

    class Source:
        reads = 0

        async def live_agents(self) -> list[dict[str, Any]]:
            self.reads += 1
            return [
                {"interface": "PJSIP/op101", "queues": ["reception"], "status": "not_inuse"},
                {"interface": 5, "queues": ["reception"]},
                {"interface": "PJSIP/op102", "queues": "reception"},
            ]

        async def live_calls(self) -> list[dict[str, Any]]:
            return [{"state": "queued", "queue": "reception", "queued_at": "x"}]

    source = Source()
    shared = SharedLiveState(source, max_age_s=60)
    first = await shared.snapshot(["reception"])
    assert first.queue("reception").free == {"PJSIP/op101"}
    assert await shared.snapshot(["reception"]) is first and source.reads == 1


async def test_override_made_while_database_is_down_is_saved_later() -> None:
    from routing.models import AuditEntry, Override
    from routing.overrides import build_override

    class FlakyStore:
        def __init__(self) -> None:
            self.up = False
            self.saved: list[AuditEntry] = []

        def _check(self) -> None:
            if not self.up:
                raise ConnectionError("database down")

        async def save(self, entry: AuditEntry) -> None:
            self._check()
            self.saved.append(entry)

        async def active(self, now: datetime) -> list[Override]:
            self._check()
            live = {e.override.id: e.override for e in self.saved if e.action == "create"}
            for e in self.saved:
                if e.action != "create":
                    live.pop(e.override.id, None)
            return [o for o in live.values() if o.active(now)]

        async def audit(self, limit: int) -> list[AuditEntry]:
            self._check()
            return list(reversed(self.saved))[:limit]

    store = FlakyStore()
    book = OverrideBook(store)
    rules = RulesHolder(EXAMPLE).load_initial()
    o = build_override(rules, {"minutes": 30, "mode": "bot"}, actor="sup", now=NOON)
    assert await book.add(o) is False
    await book.refresh(NOON)  # still down: kept
    assert [x.id for x in book.active(NOON)] == [o.id]
    store.up = True
    await book.refresh(NOON)  # saved, then read back
    assert [e.action for e in store.saved] == ["create"]
    assert [x.id for x in book.active(NOON)] == [o.id]
    other = OverrideBook(store)  # another instance ends it without having refreshed yet
    assert await other.remove(o.id, actor="sup2", now=NOON) is True
    assert [e.action for e in await other.audit()] == ["delete", "create"]


async def test_refresh_racing_a_supervisor_change_does_not_undo_it() -> None:
    """Bug: a refresh whose read of the store ran while an add()/remove() was being saved
    replaced the in-memory set with the older state: a new override vanished, or an ended one
    came back, on this instance until the next refresh (override_refresh_s later)."""
    from routing.models import AuditEntry, Override
    from routing.overrides import build_override

    class SlowStore:
        def __init__(self) -> None:
            self.saved: list[AuditEntry] = []
            self.gate = asyncio.Event()
            self.saving = asyncio.Event()

        async def save(self, entry: AuditEntry) -> None:
            self.saving.set()
            await self.gate.wait()
            self.saved.append(entry)

        async def active(self, now: datetime) -> list[Override]:
            live = {e.override.id: e.override for e in self.saved if e.action == "create"}
            for e in self.saved:
                if e.action != "create":
                    live.pop(e.override.id, None)
            return [o for o in live.values() if o.active(now)]

        async def audit(self, limit: int) -> list[AuditEntry]:
            return []

    store = SlowStore()
    book = OverrideBook(store)
    rules = RulesHolder(EXAMPLE).load_initial()
    o = build_override(rules, {"minutes": 30, "mode": "bot"}, actor="sup", now=NOON)
    adding = asyncio.create_task(book.add(o))
    await store.saving.wait()
    await book.refresh(NOON)  # reads the store before the insert is committed
    assert [x.id for x in book.active(NOON)] == [o.id]
    store.gate.set()
    assert await adding is True
    store.gate.clear()
    store.saving.clear()
    removing = asyncio.create_task(book.remove(o.id, actor="sup", now=NOON))
    await store.saving.wait()
    await book.refresh(NOON)  # reads the store before the delete is committed
    assert book.active(NOON) == []
    store.gate.set()
    assert await removing is True
    await book.refresh(NOON)
    assert book.active(NOON) == []
