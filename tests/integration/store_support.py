"""Helpers for the store's integration tests: real call lifecycles and a TCP proxy that can be
cut (server "down": connections reset, new ones refused) and restored on the same port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

from callserver.core.events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallSnapshot,
    CallStarted,
)
from devtools.tcp_proxy import TcpProxy as TcpProxy

T0 = 1_790_000_000.0


def lifecycle(call_id: str, t0: float = T0) -> list[CallEvent]:
    """The five events of an answered inbound call, each with its real snapshot."""
    s0 = CallSnapshot(
        id=call_id, linkedid=call_id, direction="inbound", state="ringing",
        caller="79161234567", caller_name="Иванова Мария", did="74951234567",
        ad_source="source-a", queue="", agent="", agent_name="", started_at=t0,
    )  # fmt: skip
    s1 = replace(s0, state="queued", queue="reception", queued_at=t0 + 1)
    s2 = replace(s1, state="agent_ringing", agent="PJSIP/op101", agent_name="Оператор 101")
    s3 = replace(s2, state="answered", answered_at=t0 + 4, wait_seconds=3.0)
    s4 = replace(
        s3, state="ended", ended_at=t0 + 15, talk_seconds=11.0, hangup_by="caller",
        hangup_cause="16", variables=(("ROUTE_REASON", "new-patient"),),
    )  # fmt: skip
    return [
        CallStarted(at=t0, call=s0, channel=f"PJSIP/trunk-{call_id}"),
        CallQueued(at=t0 + 1, call=s1, queue="reception", position=1),
        AgentRinging(at=t0 + 1.5, call=s2, queue="reception", agent="PJSIP/op101"),
        CallAnswered(at=t0 + 4, call=s3, queue="reception", agent="PJSIP/op101", wait_seconds=3),
        CallEnded(at=t0 + 15, call=s4, talk_seconds=11.0, hangup_by="caller", cause="16"),
    ]


async def wait_until(cond: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


