"""pbxsim's ``[callbacks-patient-first]`` over AMI (in-process pbxsim, a plain AMI reader):
the answered patient hears the Read prompt, presses what the Originate's ``PBXSIM_PRESS`` (or
the scenario's ``[originate] press``) says, and on 1 the operator is dialled."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.scenario import load
from tests.integration.test_pbxsim_vhold import Ami

pytestmark = pytest.mark.integration


async def _run(number: str, extra: str, ring: int = 5) -> list[dict[str, str]]:
    """Every AMI message until the patient's channel hung up."""
    sc = dataclasses.replace(load("callbacks-patient-first"), calls=())
    pbx = Pbx(sc, PbxOptions(ami_port=0, agi_port=1, speed=10.0))
    await pbx.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    ami = Ami(reader, writer)
    try:
        await reader.readline()
        writer.write(
            b"Action: Login\r\nUsername: callserver\r\nSecret: callserver\r\n\r\n"
            + f"Action: Originate\r\nChannel: PJSIP/{number}@trunk\r\n"
            "Context: callbacks-patient-first\r\nExten: s\r\nPriority: 1\r\nTimeout: 30000\r\n"
            "CallerID: <74951234567>\r\nAsync: true\r\nVariable: CALLBACK_ATTEMPT=at-1\r\n"
            f"Variable: CALLBACK_AGENT=PJSIP/op101\r\nVariable: CALLBACK_RING={ring}\r\n"
            f"{extra}\r\n".encode()
        )
        response = await ami.until(lambda f: f.get("Event") == "OriginateResponse")
        await ami.until(lambda f: f.get("Event") == "Hangup"
                        and f.get("Uniqueid") == response["Uniqueid"])  # fmt: skip
        return ami.seen
    finally:
        writer.close()
        await pbx.aclose()


def _apps(seen: list[dict[str, str]]) -> list[str]:
    """The dialplan steps of the patient's channel (not the originate's ``AppDial2``)."""
    return [f"{f['Priority']} {f['Application']}" for f in seen
            if f.get("Event") == "Newexten" and f.get("Context") == "callbacks-patient-first"
            and f["Application"] != "AppDial2"]  # fmt: skip


def _var(seen: list[dict[str, str]], name: str) -> str | None:
    values = [f["Value"] for f in seen if f.get("Event") == "VarSet" and f["Variable"] == name]
    return values[-1] if values else None


async def test_the_patient_presses_1_and_the_operator_answers() -> None:
    seen = await _run("79035550101", "")  # [originate] press pins "1" for this number
    assert _apps(seen) == ["1 Wait", "2 Read", "3 GotoIf", "6 Dial", "7 Hangup"]
    assert [f["Digit"] for f in seen if f.get("Event") == "DTMFEnd"] == ["1"]
    assert (_var(seen, "CONFIRM"), _var(seen, "READSTATUS")) == ("1", "OK")
    dial = next(f for f in seen if f.get("Event") == "DialBegin" and "Channel" in f)
    assert dial["DestChannel"].startswith("PJSIP/op101-")
    assert _var(seen, "DIALSTATUS") == "ANSWER"


async def test_a_patient_who_does_not_press_gets_no_operator() -> None:
    seen = await _run("79035550102", "")
    assert _apps(seen) == ["1 Wait", "2 Read"]  # hung up during the prompt (talk_s 3 s)
    assert _var(seen, "DIALSTATUS") is None
    assert not [f for f in seen if f.get("Event") == "DialBegin" and "Channel" in f]


async def test_the_originate_variable_decides_and_an_operator_may_not_answer() -> None:
    # PBXSIM_PRESS overrides the scenario; ring 2 s < op101's 3 s ring time: NOANSWER
    seen = await _run("79035550102", "Variable: PBXSIM_PRESS=1\r\n", ring=2)
    assert _apps(seen) == ["1 Wait", "2 Read", "3 GotoIf", "6 Dial", "7 Hangup"]
    assert _var(seen, "DIALSTATUS") == "NOANSWER"
