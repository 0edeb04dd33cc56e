"""The ``campaign_calls`` port: an answered call's dialog handed to the voice bot once; nobody
taking it in time is ``no_dialog``; bad input kinds are refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from campaigns.dialer import IvrSessions
from campaigns.dialog import CallFacts, Dialog
from campaigns.models import CampaignSettings, ClaimedCall, Target


def call(dial_id: int) -> ClaimedCall:
    target = Target(phone="+79161234567", patient_key="tel:+79161234567",
                    next_attempt_at=datetime(2026, 12, 2, tzinfo=UTC))  # fmt: skip
    return ClaimedCall(dial_id, 1, 1, "recall", 1, target, CampaignSettings())


async def test_the_voice_bot_takes_the_dialog_once_and_ends_it() -> None:
    sessions = IvrSessions(pickup_s=2.0)
    talk = asyncio.create_task(
        sessions.converse(call(7), "PJSIP/trunk-1", Dialog(CallFacts("recall", "Улыбка")))
    )
    await asyncio.sleep(0.01)
    assert sessions.session(8) is None
    session = sessions.session(7)
    assert session is not None and sessions.session(7) is None
    said = session.start()["say"]
    assert isinstance(said, list) and "осмотр" in " ".join(said)
    with pytest.raises(ValueError):
        session.feed("telepathy")
    assert session.feed("text", "да, запишите")["done"] is True
    step = await talk
    assert step.outcome == "booking_requested"


async def test_nobody_taking_the_call_is_no_dialog() -> None:
    sessions = IvrSessions(pickup_s=0.05)
    step = await sessions.converse(call(9), "", Dialog(CallFacts("recall", "Улыбка")))
    assert step.done and step.outcome == "no_dialog"
    assert sessions.session(9) is None


async def test_the_bot_may_ask_before_the_runner_has_the_call() -> None:
    """ARI's StasisStart can beat AMI's OriginateResponse: ``take`` waits for the hand-over
    (and gives up on a dial nobody hands over)."""
    sessions = IvrSessions(pickup_s=2.0)
    early = asyncio.create_task(sessions.take(11, within=2.0, hangs_up=True))
    await asyncio.sleep(0.05)
    talk = asyncio.create_task(
        sessions.converse(call(11), "PJSIP/trunk-1", Dialog(CallFacts("recall", "Улыбка")))
    )
    session = await early
    assert session is not None and session.hangs_up
    session.start()
    session.feed("dtmf", "2")
    await asyncio.sleep(0.05)
    assert not talk.done()  # the bot has not released the line yet (goodbye playing)
    session.release()
    assert (await talk).outcome == "declined"
    assert await sessions.take(12, within=0.05) is None
