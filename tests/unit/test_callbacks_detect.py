"""Miss detection from bus events (the detector's ``handle``, with a fake job sink)."""

from __future__ import annotations

from dataclasses import replace

from callbacks.detect import MissDetector
from callbacks.models import JobSpec
from callbacks.policy import MissRules
from callserver.core.events import CallAbandoned, CallAnswered, CallEnded, CallSnapshot

CALL = CallSnapshot(
    id="1795.7", linkedid="1795.7", direction="inbound", state="queued", caller="89035550101",
    caller_name="Анна", did="74957654321", ad_source="source-b", queue="reception", agent="",
    agent_name="", started_at=100.0, queued_at=104.0,
)  # fmt: skip
RULES = MissRules(10.0, 60.0, 3.0, frozenset({"bot"}))


class Jobs:
    def __init__(self) -> None:
        self.specs: list[JobSpec] = []
        self.closed: list[tuple[str, str]] = []

    async def submit(self, spec: JobSpec) -> str:
        self.specs.append(spec)
        return "cb-1"

    async def close_for_phone(self, phone: str, outcome: str = "patient_called") -> list[str]:
        self.closed.append((phone, outcome))
        return []


async def test_an_abandon_becomes_a_job_at_once() -> None:
    jobs = Jobs()
    d = MissDetector(jobs, RULES, 45.0)
    call = replace(CALL, state="abandoned")
    assert await d.handle(CallAbandoned(113.0, call, "reception", 9.0, 1)) == "abandoned"
    (spec,) = jobs.specs
    assert (spec.phone, spec.reason, spec.source, spec.queue, spec.call_id, spec.missed_at) == (
        "+79035550101", "abandoned", "source-b", "reception", "1795.7", 113.0)
    assert spec.name == "Анна"
    # the same call's end adds nothing (the abandon already made the job)
    ended = replace(call, ended_at=113.5)
    assert await d.handle(CallEnded(113.5, ended)) is None
    assert len(jobs.specs) == 1
    assert d.misses == {"abandoned": 1}


async def test_held_until_the_queue_timeout_is_a_ring_out() -> None:
    jobs = Jobs()
    d = MissDetector(jobs, RULES, 45.0)
    assert await d.handle(CallAbandoned(150.0, CALL, "reception", 45.0, 1)) == "queue_timeout"


async def test_ivr_hangup_and_a_hidden_number() -> None:
    jobs = Jobs()
    d = MissDetector(jobs, RULES, 45.0)
    ivr = replace(CALL, state="ended", queued_at=None, queue="", ended_at=120.0)
    assert await d.handle(CallEnded(120.0, ivr)) == "ivr_hangup"
    hidden = replace(ivr, caller="anonymous")
    assert await d.handle(CallEnded(120.0, hidden)) is None
    assert [s.reason for s in jobs.specs] == ["ivr_hangup"]


async def test_reaching_an_operator_closes_the_callers_jobs() -> None:
    jobs = Jobs()
    d = MissDetector(jobs, RULES, 45.0)
    answered = replace(CALL, state="answered", answered_at=110.0)
    await d.handle(CallAnswered(110.0, answered, "reception", "PJSIP/op101", "Анна", 6.0, 2.0))
    assert jobs.closed == [("+79035550101", "patient_called")]


def test_the_bus_side_ignores_outbound_calls() -> None:
    d = MissDetector(Jobs(), RULES, 45.0)
    d.submit(CallAbandoned(1.0, replace(CALL, direction="outbound"), "reception", 9.0, 1))
    d.submit(CallAbandoned(1.0, CALL, "reception", 9.0, 1))
    assert d.pending == 1


async def test_a_caller_who_accepted_virtual_hold_is_no_miss() -> None:
    jobs = Jobs()
    d = MissDetector(jobs, RULES, 45.0, skip=lambda call_id: call_id == CALL.id)
    d.submit(CallEnded(120.0, replace(CALL, state="routing", ended_at=120.0)))
    assert d.pending == 0
    other = replace(CALL, id="1795.8", linkedid="1795.8", state="routing", ended_at=120.0)
    d.submit(CallEnded(120.0, other))
    assert d.pending == 1
