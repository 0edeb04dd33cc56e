"""Listen / whisper / barge: the AMI Originate into ChanSpy, refusals, and the audit trail.
The AMI side is a small fake of our own ``AmiActions`` port; the live model is the real one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from callserver.asterisk.ami_codec import AmiMessage
from callserver.asterisk.errors import AmiTimeout
from callserver.core.bus import EventBus
from callserver.core.model.live import LiveModel
from callserver.core.model.records import MemberInfo
from dashboards.errors import InvalidReportRequest, OperatorNotInCall, SpyFailed, UnknownOperator
from dashboards.spy import SpyService


class FakeAmi:
    def __init__(self, response: str = "Success", fail: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.response, self.fail = response, fail

    async def send_action(
        self, action: str, headers: Mapping[str, str | Sequence[str]] | None = None,
        *, timeout: float,  # noqa: ASYNC109 - the port's signature
    ) -> AmiMessage:
        raise AssertionError("not used")

    async def originate(
        self, headers: Mapping[str, str | Sequence[str]],
        *, timeout: float,  # noqa: ASYNC109 - the port's signature
    ) -> AmiMessage:
        self.sent.append({**headers, "_timeout": timeout})
        if self.fail:
            raise AmiTimeout(message="no OriginateResponse", action="Originate")
        return AmiMessage("event", "OriginateResponse", {
            "Event": "OriginateResponse", "Response": self.response,
            "Reason": "4" if self.response == "Success" else "0"})  # fmt: skip


class Audit:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def audit_spy(self, row: dict[str, Any]) -> int:
        self.rows.append(dict(row))
        return len(self.rows)


def live_with_a_call() -> LiveModel:
    model = LiveModel(EventBus())
    for op in ("PJSIP/op101", "PJSIP/op102"):
        model.member_status(MemberInfo("reception", op, op, "not_inuse"), at=1.0)
    model.channel_created("u1", "u1", "PJSIP/trunk-1", caller="+79160000001",
                          context="from-trunk", at=2.0)  # fmt: skip
    model.caller_joined_queue("u1", "u1", "reception", 1, at=2.0)
    model.agent_connected("u1", "reception", "PJSIP/op101", at=5.0)
    return model


@pytest.mark.parametrize(("mode", "options"), [("listen", "q"), ("whisper", "qw"), ("barge", "qB")])
async def test_spy_originates_chanspy_and_audits(mode: str, options: str) -> None:
    ami, audit = FakeAmi(), Audit()
    spy = SpyService(ami, live_with_a_call(), audit, lambda: 100.0, timeout=30.0)
    row = await spy.spy(actor="Петрова", supervisor="PJSIP/sup1", agent="PJSIP/op101", mode=mode)
    sent = ami.sent[0]
    assert (sent["Channel"], sent["Application"]) == ("PJSIP/sup1", "ChanSpy")
    assert sent["Data"] == f"PJSIP/op101-,{options}"  # '-': never PJSIP/op1010's channels
    assert sent["Timeout"] == "30000" and sent["_timeout"] == 30.0
    assert audit.rows[0] | {"id": 1} == row
    assert (row["actor"], row["mode"], row["call_id"], row["result"], row["at"]) == (
        "Петрова", mode, "u1", "started", 100.0)


async def test_refusals_are_audited_and_raised() -> None:
    audit = Audit()
    model = live_with_a_call()
    spy = SpyService(FakeAmi("Failure"), model, audit, lambda: 1.0, timeout=5.0)
    with pytest.raises(SpyFailed):
        await spy.spy(actor="a", supervisor="PJSIP/sup1", agent="PJSIP/op101", mode="listen")
    timeout_spy = SpyService(FakeAmi(fail=True), model, audit, lambda: 1.0, timeout=5.0)
    with pytest.raises(SpyFailed):
        await timeout_spy.spy(actor="a", supervisor="PJSIP/sup1", agent="PJSIP/op101",
                              mode="barge")  # fmt: skip
    assert [(r["result"], r["reason"]) for r in audit.rows] == [("failed", "0"),
                                                                 ("failed", "AmiTimeout")]


@pytest.mark.parametrize(("agent", "supervisor", "mode", "error"), [
    ("PJSIP/op101", "PJSIP/sup1", "record", InvalidReportRequest),
    ("PJSIP/op101,qB", "PJSIP/sup1", "listen", InvalidReportRequest),  # option smuggling
    ("PJSIP/op101", "PJSIP/sup1\r\nAction: Hangup", "listen", InvalidReportRequest),
    ("PJSIP/op101", "PJSIP/sup 1", "listen", InvalidReportRequest),
    ("PJSIP/op999", "PJSIP/sup1", "listen", UnknownOperator),
    ("PJSIP/op102", "PJSIP/sup1", "listen", OperatorNotInCall),
])  # fmt: skip
async def test_bad_requests_never_reach_asterisk(agent: str, supervisor: str, mode: str,
                                                 error: type[Exception]) -> None:  # fmt: skip
    ami = FakeAmi()
    spy = SpyService(ami, live_with_a_call(), Audit(), lambda: 1.0, timeout=5.0)
    with pytest.raises(error):
        await spy.spy(actor="a", supervisor=supervisor, agent=agent, mode=mode)
    assert ami.sent == []
