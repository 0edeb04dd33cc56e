"""pbxsim's Stasis hook when the app misbehaves (no sockets: the AMI server is not started)."""

from __future__ import annotations

import dataclasses

from pbxsim.app import Pbx, PbxOptions
from pbxsim.dialplan import InboundCall
from pbxsim.scenario import load
from pbxsim.stasis_session import StasisSession


class FailsAfterHangup:
    """Answers, waits for the caller's hangup event, then raises (a buggy ARI app)."""

    async def run(self, session: StasisSession) -> None:
        session.answer()
        await session.events.get()
        raise RuntimeError("app bug")


async def test_an_app_raising_after_the_caller_hung_up_still_ends_the_call() -> None:
    """Bug: the app's exception escaped the grace wait, crashed the call flow and left the
    caller's channel up forever (no Hangup event)."""
    events: list[bytes] = []
    sc = dataclasses.replace(load("stasis-dtmf"), calls=())
    pbx = Pbx(sc, PbxOptions(ami_port=0, agi_port=1, speed=50.0))
    pbx.engine.sink = events.append
    builtin = pbx.engine.stasis.get("callserver")
    if builtin is not None:
        pbx.engine.stasis.unregister("callserver", builtin)
    pbx.engine.stasis.register("callserver", FailsAfterHangup())
    try:
        pbx.start_call(InboundCall("74959990000", "79161234567", stasis_hold_s=2.0))
        await pbx.wait_idle(10.0)
        assert pbx.engine.channels == {}
        assert pbx.engine.calls_finished == 1
        hangups = [e for e in events if e.startswith(b"Event: Hangup\r\n")]
        assert len(hangups) == 1 and b"Channel: PJSIP/trunk-" in hangups[0]
    finally:
        await pbx.aclose()
