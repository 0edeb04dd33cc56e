"""Calls routing sent to voicemail/callback get a callback job when they end."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from callbacks.after_hours import AfterHoursCallbacks
from callserver.core.events import CallEnded, CallSnapshot
from crm_bridge.models import CallbackRequest
from routing.models import Decision, RouteRecord

CALL = CallSnapshot(
    id="1795.7", linkedid="1795.7", direction="inbound", state="ended", caller="8 916 123-45-67",
    caller_name="", did="74951234567", ad_source="source-a", queue="", agent="", agent_name="",
    started_at=1795.0, ended_at=1830.0,
)  # fmt: skip


class Decisions:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def record_for(self, call_id: str) -> RouteRecord | None:
        decision = Decision(queue="reception", mode=self.mode,  # type: ignore[arg-type]
                            reasons=("after_hours", "known_patient"))  # fmt: skip
        return RouteRecord(call_id, call_id, "agi", decision, datetime.now(UTC), "found", "42")


class Sink:
    def __init__(self) -> None:
        self.requests: list[CallbackRequest] = []

    async def request_callback(self, **fields: Any) -> None:
        self.requests.append(CallbackRequest(**fields))


@pytest.mark.parametrize("mode", ["voicemail", "callback"])
async def test_a_call_sent_away_after_hours_gets_one_callback_job(mode: str) -> None:
    sink = Sink()
    jobs = AfterHoursCallbacks(Decisions(mode), sink)
    assert await jobs.handle(CallEnded(at=1830.0, call=CALL)) is True
    (request,) = sink.requests
    assert request.phone == "+79161234567"
    assert request.reason == "after_hours"
    assert request.patient_id == "42"
    assert request.idempotency_key == "callback-request:route-1795.7"  # a replay is one job


async def test_queued_or_answered_calls_get_no_job() -> None:
    sink = Sink()
    assert (
        await AfterHoursCallbacks(Decisions("queue"), sink).handle(CallEnded(at=1830.0, call=CALL))
        is False
    )
    answered = replace(CALL, answered_at=1800.0)
    assert (
        await AfterHoursCallbacks(Decisions("voicemail"), sink).handle(
            CallEnded(at=1830.0, call=answered)
        )
        is False
    )
    anonymous = replace(CALL, caller="anonymous")
    assert (
        await AfterHoursCallbacks(Decisions("voicemail"), sink).handle(
            CallEnded(at=1830.0, call=anonymous)
        )
        is False
    )
    assert sink.requests == []


async def test_the_bus_side_feeds_the_owned_task() -> None:
    sink = Sink()
    jobs = AfterHoursCallbacks(Decisions("voicemail"), sink)
    await jobs.start()
    try:
        jobs.submit(CallEnded(at=1830.0, call=CALL))
        jobs.submit(CallEnded(at=1830.0, call=replace(CALL, direction="outbound")))
        for _ in range(100):
            if sink.requests:
                break
            await asyncio.sleep(0.01)
    finally:
        await jobs.aclose()
    assert len(sink.requests) == 1
    assert jobs.created == 1
