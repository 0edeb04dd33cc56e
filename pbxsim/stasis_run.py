"""Running ``Stasis(app,args)`` for a channel: the hook call, the caller's side, teardown.

The caller side (DTMF presses, hanging up after ``hold_s``) runs beside the app; whichever
ends first decides the teardown. Times are scenario seconds.
"""

from __future__ import annotations

import asyncio
import logging

from pbxsim import ami_events as ev
from pbxsim.engine import Call, Engine
from pbxsim.stasis import StasisEvent
from pbxsim.stasis_session import StasisSession

log = logging.getLogger("pbxsim.stasis")
APP_GRACE_S = 5.0
"""Wall seconds an app gets to return after the caller hung up before it is cancelled."""


async def _caller_side(
    eng: Engine, session: StasisSession, dtmf: tuple[tuple[float, str], ...], hold_s: float
) -> None:
    start = eng.clock.now()
    for at, digit in dtmf:
        await eng.clock.sleep(start + at - eng.clock.now())
        if session.hangup_cause is not None or session.channel.hungup:
            return
        session.dtmf(digit, 280)
    await eng.clock.sleep(start + hold_s - eng.clock.now())


async def run_stasis(
    eng: Engine, call: Call, args: list[str], dtmf: tuple[tuple[float, str], ...], hold_s: float
) -> None:
    """Hand ``call`` to the registered app; returns when the channel left Stasis.

    No app registered: ``STASISSTATUS=FAILED`` and the dialplan goes on (like Asterisk).
    """
    ch = call.channel
    eng.setvar(ch, "STASISSTATUS", "")
    app = eng.stasis.get(eng.config.stasis_app)
    if app is None:
        eng.setvar(ch, "STASISSTATUS", "FAILED")
        return
    session = StasisSession(eng, ch, eng.config.stasis_app, args)
    app_task = asyncio.ensure_future(app.run(session))
    caller_task = asyncio.ensure_future(_caller_side(eng, session, dtmf, hold_s))
    hangup_wait = asyncio.ensure_future(call.interrupted.wait())
    try:
        await asyncio.wait(
            {app_task, caller_task, hangup_wait}, return_when=asyncio.FIRST_COMPLETED
        )
        if not app_task.done():
            session.events.put_nowait(StasisEvent("hangup", cause=call.hangup_cause or 16))
            # asyncio.wait, not wait_for: an app raising here must not skip the teardown
            await asyncio.wait({app_task}, timeout=APP_GRACE_S)
            _caller_hung_up(eng, session)
    finally:
        for t in (app_task, caller_task, hangup_wait):
            t.cancel()
        await asyncio.gather(app_task, caller_task, hangup_wait, return_exceptions=True)
    if app_task.done() and not app_task.cancelled() and app_task.exception() is not None:
        log.error("stasis app failed on %s", ch.name, exc_info=app_task.exception())
    if ch.hungup:
        eng.calls_finished += 1
        return
    if session.hangup_cause is not None:
        session.finish(by_app=True)
        eng.calls_finished += 1
        return
    eng.setvar(ch, "STASISSTATUS", "SUCCESS")


def _caller_hung_up(eng: Engine, session: StasisSession) -> None:
    """The caller's BYE while in Stasis: leave bridges, hang up everything."""
    ch = session.channel
    if ch.hungup or session.hangup_cause is not None:
        return
    if ch.name.startswith("PJSIP/"):
        eng.rtp_qos(ch, None)
    eng.emit(ev.hangup_request(ch))
    for br in session.bridges:
        if ch in br.channels:
            eng.setvar(ch, "BRIDGEPEER", "")
            eng.bridge_leave(br, ch)
    session.finish(by_app=False)
