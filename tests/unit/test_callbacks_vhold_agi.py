"""Virtual hold on a real live model (core LiveModel + bus, no sockets): the FastAGI scripts
offer and accept, and the callback job is created when the caller would have reached the head
of the queue — after the caller ahead, before the callers behind."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from callbacks.models import JobSpec
from callbacks.vhold_agi import Placer, VholdSettings, VirtualHold
from callserver.asterisk.agi_codec import AgiEnvironment
from callserver.core.bus import EventBus
from callserver.core.model import LiveModel, MemberInfo


@dataclass
class Session:
    env: AgiEnvironment
    vars: dict[str, str] = field(default_factory=dict)

    async def set_variable(self, name: str, value: str) -> None:
        self.vars[name] = value


class Jobs:
    def __init__(self) -> None:
        self.specs: list[JobSpec] = []

    async def submit(self, spec: JobSpec) -> str:
        self.specs.append(spec)
        return f"cb-{len(self.specs)}"


def setup(placer: Placer | None = None) -> tuple[LiveModel, VirtualHold, Jobs]:
    bus = EventBus()
    model = LiveModel(bus)
    jobs = Jobs()
    vh = VirtualHold(jobs, model, VholdSettings(threshold_s=120.0, mean_handle_s=180.0), placer)
    bus.subscribe(vh.submit)
    model.member_status(MemberInfo("reception", "PJSIP/op101", "Анна", "inuse", False, ""),
                        at=1.0)  # fmt: skip
    return model, vh, jobs


def caller(model: LiveModel, n: int, at: float) -> str:
    uid = f"100.{n}"
    model.channel_created(uid, uid, f"PJSIP/trunk-{n}", caller=f"7903555010{n}",
                          context="from-trunk", at=at)  # fmt: skip
    model.caller_joined_queue(uid, uid, "reception", n, caller=f"7903555010{n}", at=at)
    return uid


async def test_the_callback_is_due_exactly_at_the_callers_turn() -> None:
    model, vh, jobs = setup()
    a, b, c, d = (caller(model, n, float(n)) for n in (1, 2, 3, 4))
    await vh.start()
    try:
        offer = Session(AgiEnvironment(uniqueid=c, callerid="79035550103"))
        await vh.offer(offer)
        assert offer.vars["VHOLD_OFFER"] == "1"  # 3rd, nobody free: 3 × 180 s estimated
        # c presses the key: leaves the queue, the script accepts, the channel hangs up
        model.caller_left_queue(c, "reception", at=10.0)
        accept = Session(AgiEnvironment(uniqueid=c, callerid="79035550103", args=(c,)))
        await vh.accept(accept)
        assert accept.vars == {"VHOLD_ACCEPTED": "1", "VHOLD_POSITION": "3"}
        model.channel_hungup(c, cause="Normal Clearing", at=11.0)
        model.agent_connected(a, "reception", "PJSIP/op101", at=20.0)
        await asyncio.sleep(0)
        assert jobs.specs == []  # b is still ahead
        model.caller_abandoned(b, "reception", position=1, wait_seconds=30.0, at=32.0)
        for _ in range(3):
            await asyncio.sleep(0)
        # now c would have been at the head, d (who came later) still waits behind it
        assert [(s.phone, s.reason, s.queue, s.call_id) for s in jobs.specs] == [
            ("+79035550103", "virtual_hold", "reception", c)]
        assert jobs.specs[0].priority == 1000
        assert vh.queues["reception"].position(d) == 1
    finally:
        await vh.aclose()


async def test_accept_is_refused_for_an_unknown_call_or_a_hidden_number() -> None:
    model, vh, _jobs = setup()
    uid = caller(model, 1, 1.0)
    hidden = Session(AgiEnvironment(uniqueid=uid, callerid="anonymous"))
    await vh.accept(hidden)
    assert hidden.vars["VHOLD_ACCEPTED"] == "0"
    unknown = Session(AgiEnvironment(uniqueid="999.9", callerid="79035550101"))
    await vh.accept(unknown)
    assert unknown.vars["VHOLD_ACCEPTED"] == "0"


async def test_the_first_in_line_is_not_offered() -> None:
    model, vh, _jobs = setup()
    uid = caller(model, 1, 1.0)
    s = Session(AgiEnvironment(uniqueid=uid, callerid="79035550101"))
    await vh.offer(s)
    assert s.vars["VHOLD_OFFER"] == "0"


async def test_with_a_placeholder_the_place_is_taken_at_once() -> None:
    """The accepted caller's place goes to the placeholder (queue, position, phone, call);
    no job waits for the turn. A placeholder that cannot be placed: the job at once."""
    placed: list[tuple[str, int, str, str]] = []
    ok = [True]

    async def place(queue: str, position: int, phone: str, call_id: str) -> bool:
        placed.append((queue, position, phone, call_id))
        return ok[0]

    model, vh, jobs = setup(place)
    a, b, _c, d = (caller(model, n, float(n)) for n in (1, 2, 3, 4))
    await vh.start()
    try:
        model.caller_left_queue(b, "reception", at=10.0)
        accept = Session(AgiEnvironment(uniqueid=b, callerid="79035550102", args=(b,)))
        await vh.accept(accept)
        for _ in range(3):
            await asyncio.sleep(0)
        assert accept.vars == {"VHOLD_ACCEPTED": "1", "VHOLD_POSITION": "2"}
        assert placed == [("reception", 2, "+79035550102", b)]
        assert vh.accepted_call(b) and not vh.accepted_call(a)
        assert vh.queues["reception"].position(b) is None  # the placeholder holds it now
        model.agent_connected(a, "reception", "PJSIP/op101", at=20.0)
        await asyncio.sleep(0)
        assert jobs.specs == [] and vh.placed == 1
        ok[0] = False
        model.caller_left_queue(d, "reception", at=21.0)
        await vh.accept(Session(AgiEnvironment(uniqueid=d, callerid="79035550104", args=(d,))))
        for _ in range(5):
            await asyncio.sleep(0)
        assert [(s.phone, s.reason, s.priority) for s in jobs.specs] == [
            ("+79035550104", "virtual_hold", 1000)]
    finally:
        await vh.aclose()
