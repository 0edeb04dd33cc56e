"""The agent-first dialer against a fake AMI (our own AmiActions shape): the Originate it
sends, and how OriginateResponse and the call's DIALSTATUS become the attempt's result."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from callbacks.dialer import (
    AgentFirstDialer,
    CallEnds,
    DialSettings,
    PatientFirstDialer,
    result_of,
)
from callserver.asterisk.ami_codec import AmiMessage
from callserver.asterisk.errors import AmiConnectionError
from callserver.core.events import CallEnded, CallSnapshot


def ended(linkedid: str, dialstatus: str) -> CallEnded:
    call = CallSnapshot(
        id=linkedid, linkedid=linkedid, direction="internal", state="ended", caller="79035550101",
        caller_name="", did="", ad_source="", queue="", agent="", agent_name="", started_at=1.0,
        ended_at=5.0, variables=(("DIALSTATUS", dialstatus),) if dialstatus else (),
    )  # fmt: skip
    return CallEnded(5.0, call)


class FakeAmi:
    def __init__(self, response: str, reason: str, ends: CallEnds, status: str = "") -> None:
        self.sent: list[Mapping[str, str | Sequence[str]]] = []
        self._response, self._reason, self._ends, self._status = response, reason, ends, status
        self.down = False

    async def send_action(
        self, action: str, headers: object = None, *, timeout: float  # noqa: ASYNC109
    ) -> AmiMessage:
        raise NotImplementedError

    async def originate(
        self, headers: Mapping[str, str | Sequence[str]], *, timeout: float  # noqa: ASYNC109
    ) -> AmiMessage:
        if self.down:
            raise AmiConnectionError(message="AMI not connected")
        self.sent.append(headers)
        if self._response == "Success":
            # the call ends on the bus a little later
            asyncio.get_running_loop().call_later(
                0.01, self._ends.submit, ended("1700.5", self._status)
            )
        return AmiMessage("event", "OriginateResponse", {
            "Response": self._response, "Reason": self._reason, "Uniqueid": "1700.5"})


SETTINGS = DialSettings("callbacks-dial", 20.0, 5.0)


async def run(response: str, reason: str, status: str = "") -> tuple[str, FakeAmi, list[str]]:
    ends = CallEnds()
    ami = FakeAmi(response, reason, ends, status)
    seen: list[str] = []

    async def on_uniqueid(u: str) -> None:
        seen.append(u)

    dialer = AgentFirstDialer(ami, ends, SETTINGS)
    outcome = await dialer.originate(attempt_id="at-1", operator="PJSIP/op101",
                                     phone="+79035550101", caller_id="+7 495 123-45-67",
                                     label='Перезвон "Анна"\r\n', on_uniqueid=on_uniqueid)
    return outcome.result, ami, seen


@pytest.mark.parametrize(("status", "result"), [
    ("ANSWER", "answered"), ("BUSY", "busy"), ("NOANSWER", "no_answer"),
    ("CONGESTION", "failed"), ("CHANUNAVAIL", "failed"), ("", "failed"),
])  # fmt: skip
async def test_patient_leg_result_comes_from_dialstatus(status: str, result: str) -> None:
    got, ami, seen = await run("Success", "4", status)
    assert got == result
    assert seen == ["1700.5"]
    h = ami.sent[0]
    assert h["Channel"] == "PJSIP/op101"
    assert h["Context"] == "callbacks-dial" and h["Exten"] == "79035550101"
    assert h["Timeout"] == "20000"
    assert h["Variable"] == ["CALLBACK_ATTEMPT=at-1", "CALLBACK_CID=74951234567"]
    # the operator's phone shows the patient's number; the label cannot break the header
    assert h["CallerID"] == '"Перезвон Анна" <79035550101>'


@pytest.mark.parametrize("reason", ["0", "1", "3", "5", "8"])
async def test_operator_leg_failures(reason: str) -> None:
    got, _ami, seen = await run("Failure", reason)
    assert got == "operator_no_answer"
    assert seen == []


async def test_ami_down_is_not_dialed() -> None:
    ends = CallEnds()
    ami = FakeAmi("Success", "4", ends)
    ami.down = True
    outcome = await AgentFirstDialer(ami, ends, SETTINGS).originate(
        attempt_id="at-2", operator="PJSIP/op101", phone="+79035550101", caller_id="", label="")
    assert outcome.result == "not_dialed"


async def test_an_end_seen_before_the_wait_is_not_lost() -> None:
    ends = CallEnds()
    ends.submit(ended("9.9", "BUSY"))
    got = await ends.wait("9.9", 0.1)
    assert got is not None and dict(got.call.variables)["DIALSTATUS"] == "BUSY"
    assert await ends.wait("nope", 0.05) is None


async def run_patient_first(response: str, reason: str, status: str = "") -> tuple[str, FakeAmi]:
    ends = CallEnds()
    ami = FakeAmi(response, reason, ends, status)
    dialer = PatientFirstDialer(ami, ends, SETTINGS, "callbacks-patient-first",
                                "PJSIP/{number}@trunk", 30.0)  # fmt: skip
    outcome = await dialer.originate(attempt_id="at-9", operator="PJSIP/op102",
                                     phone="+79035550101", caller_id="74951234567", label="x")
    return outcome.result, ami


@pytest.mark.parametrize(("response", "reason", "status", "result"), [
    ("Failure", "3", "", "no_answer"),
    ("Failure", "5", "", "busy"),
    ("Failure", "8", "", "failed"),
    ("Success", "4", "ANSWER", "answered"),            # pressed 1, the operator answered
    ("Success", "4", "NOANSWER", "operator_no_answer"),
    ("Success", "4", "", "no_answer"),                  # answered, did not press 1
])  # fmt: skip
async def test_patient_first(response: str, reason: str, status: str, result: str) -> None:
    got, ami = await run_patient_first(response, reason, status)
    assert got == result
    h = ami.sent[0]
    assert h["Channel"] == "PJSIP/79035550101@trunk"
    assert h["Context"] == "callbacks-patient-first" and h["Exten"] == "s"
    assert h["Timeout"] == "30000"
    assert h["CallerID"] == '"" <74951234567>'
    assert h["Variable"] == ["CALLBACK_ATTEMPT=at-9", "CALLBACK_AGENT=PJSIP/op102",
                             "CALLBACK_RING=20"]


def test_the_translator_keeps_dialstatus_for_the_dialer() -> None:
    """AMI → live model → CallEnded: the operator leg's DIALSTATUS (set by the dialplan's
    Dial) reaches the bus, which is how an attempt's patient result is known."""
    from callserver.asterisk.ami_codec import AmiCodec
    from callserver.asterisk.ami_translate import AmiTranslator
    from callserver.core.bus import EventBus
    from callserver.core.model import LiveModel

    bus = EventBus()
    seen: list[CallEnded] = []
    bus.subscribe(lambda e: seen.append(e) if isinstance(e, CallEnded) else None)
    translator = AmiTranslator(LiveModel(bus))
    stream = (
        b"Asterisk Call Manager/9.0.0\r\n"
        b"Event: Newchannel\r\nChannel: PJSIP/op101-00000001\r\nUniqueid: 1700.5\r\n"
        b"Linkedid: 1700.5\r\nCallerIDNum: 79035550101\r\nContext: callbacks-dial\r\n"
        b"Timestamp: 1700.0\r\n\r\n"
        b"Event: VarSet\r\nChannel: PJSIP/op101-00000001\r\nUniqueid: 1700.5\r\n"
        b"Variable: DIALSTATUS\r\nValue: BUSY\r\nTimestamp: 1705.0\r\n\r\n"
        b"Event: Hangup\r\nChannel: PJSIP/op101-00000001\r\nUniqueid: 1700.5\r\n"
        b"Cause-txt: Normal Clearing\r\nTimestamp: 1706.0\r\n\r\n"
    )
    for msg in AmiCodec().feed(stream):
        translator.handle(msg)
    (ended,) = seen
    assert ended.call.id == "1700.5"
    assert dict(ended.call.variables)["DIALSTATUS"] == "BUSY"
    assert result_of(ended).result == "busy"


async def test_the_virtual_hold_placeholder_originate() -> None:
    ends = CallEnds()
    ami = FakeAmi("Success", "4", ends, "ANSWER")
    outcome = await AgentFirstDialer(ami, ends, SETTINGS).originate_slot(
        attempt_id="at-7", channel="Local/79035550101@callbacks-vhold-slot/n",
        phone="+79035550101", caller_id="+7 495 123-45-67", label="Перезвон",
        variables={"VHOLD_QUEUE": "reception", "VHOLD_POSITION": "2"}, wait_s=600.0,
    )  # fmt: skip
    assert outcome.result == "answered"
    (sent,) = ami.sent
    assert sent["Channel"] == "Local/79035550101@callbacks-vhold-slot/n"
    assert (sent["Context"], sent["Exten"], sent["Timeout"]) == (
        "callbacks-dial", "79035550101", "600000")  # fmt: skip
    assert sent["Variable"] == ["CALLBACK_ATTEMPT=at-7", "CALLBACK_CID=74951234567",
                                "VHOLD_QUEUE=reception", "VHOLD_POSITION=2"]  # fmt: skip
