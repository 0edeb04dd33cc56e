"""The campaign call as the bot's dialog (``ivr.campaign_dialog``) over the real campaign
session (``campaigns.dialer.IvrSessions``), the grammars it listens with, the handler's
argument parsing, and texts synthesised once (``ivr.spoken``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from campaigns.dialer import IvrSessions
from campaigns.dialog import CallFacts, Dialog
from campaigns.models import CampaignSettings, ClaimedCall, Target
from campaigns.speech import say_time
from ivr.campaign_calls import dial_id_of
from ivr.campaign_dialog import CampaignDialog
from ivr.models import (
    Answered,
    Comment,
    Dtmf,
    EndComment,
    HangUp,
    Hangup,
    ListenComment,
    PlayPrompts,
    PromptFinished,
    SilenceTimeout,
    SpeechStarted,
    StartRecognition,
    StartSilenceTimer,
    StopPlayback,
    StopRecognition,
    Utterance,
)
from ivr.spoken import SpokenTexts
from recognition.intents import grammar_for, match_intent
from recognition.phrases import STATE_INTENTS

VISIT = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def call(dial_id: int, kind: str) -> ClaimedCall:
    target = Target(phone="+79161234567", patient_key="tel:+79161234567",
                    next_attempt_at=VISIT, lang="en")  # fmt: skip
    return ClaimedCall(dial_id, 1, 1, kind, 1, target, CampaignSettings())


async def taken(kind: str = "reminder") -> tuple[IvrSessions, CampaignDialog, asyncio.Task[object]]:
    sessions = IvrSessions(pickup_s=2.0, talk_s=5.0)
    facts = CallFacts(kind, "Smile", "en", "Dr Ivanova", VISIT)
    talk: asyncio.Task[object] = asyncio.create_task(
        sessions.converse(call(5, kind), "PJSIP/trunk-1", Dialog(facts)))
    await asyncio.sleep(0)
    session = sessions.session(5, hangs_up=True)
    assert session is not None
    return sessions, CampaignDialog(session, lang="en", silence_s=3.0), talk


async def test_a_spoken_yes_confirms_after_the_goodbye_has_played() -> None:
    _, dialog, talk = await taken()
    first = dialog.handle(Answered(speech=True))
    assert first[0] == StartRecognition("campaign_choice", "en")
    play = first[1]
    assert isinstance(play, PlayPrompts) and len(play.prompts) == 2
    assert "Dr Ivanova" in play.prompts[0] and say_time(VISIT.time(), "en") in play.prompts[0]
    assert dialog.handle(SpeechStarted()) == [StopPlayback()]  # barge-in
    bye = dialog.handle(Utterance("yes please", "yes", 0.9))
    assert bye[0] == StopRecognition() and isinstance(bye[1], PlayPrompts)
    assert dialog.outcome == "confirmed" and dialog.state == "goodbye"
    await asyncio.sleep(0.05)
    assert not talk.done()  # the runner waits: hanging up now would cut the goodbye off
    assert dialog.handle(PromptFinished()) == [HangUp()]
    step = await asyncio.wait_for(talk, 1.0)
    assert getattr(step, "outcome", "") == "confirmed"


async def test_keys_silence_and_a_hang_up() -> None:
    _, dialog, talk = await taken()
    dialog.handle(Answered(speech=False))
    assert dialog.handle(PromptFinished()) == [StartSilenceTimer(3.0)]
    again = dialog.handle(SilenceTimeout())
    assert isinstance(again[0], PlayPrompts) and "Sorry" in again[0].prompts[0]
    dialog.handle(PromptFinished())
    assert dialog.handle(Hangup()) == [] and dialog.outcome == "hung_up"
    assert getattr(await asyncio.wait_for(talk, 1.0), "outcome", "") == "hung_up"
    _, dialog, talk = await taken()
    dialog.handle(Answered(speech=True))
    out = dialog.handle(Dtmf("9"))
    assert out[0] == StopPlayback() and dialog.outcome == "opt_out"


async def test_feedback_hash_before_any_speech_leaves_no_comment() -> None:
    _, dialog, talk = await taken("feedback")
    first = dialog.handle(Answered(speech=True))
    assert first[0] == StartRecognition("campaign_score", "en")
    comment = dialog.handle(Utterance("three", "score", 1.0))
    assert ListenComment("comment") in comment and dialog.state == "comment"
    dialog.handle(PromptFinished())
    assert dialog.handle(Dtmf("#"))[-1] == PlayPrompts(("Thank you! Goodbye.",), "en")
    assert dialog.outcome == "low_score"
    dialog.handle(PromptFinished())
    data = getattr(await asyncio.wait_for(talk, 1.0), "data", {})
    assert data == {"score": "3", "comment": ""}


async def test_a_spoken_comment_ends_at_hash_and_reaches_the_result_with_its_recording() -> None:
    _, dialog, talk = await taken("feedback")
    dialog.handle(Answered(speech=True))
    dialog.handle(Dtmf("5"))
    dialog.handle(PromptFinished())
    dialog.handle(SpeechStarted())
    assert dialog.handle(SilenceTimeout()) == []  # a speaker is not silent
    assert dialog.handle(Dtmf("#")) == [EndComment()]  # the transcript is still to come
    assert dialog.state == "comment"
    out = dialog.handle(Comment("the doctor was very good", "/rec/dial-5.wav", 2.5,
                                "transcribed"))
    assert out[-1] == PlayPrompts(("Thank you! Goodbye.",), "en") and dialog.outcome == "rated"
    dialog.handle(PromptFinished())
    data = getattr(await asyncio.wait_for(talk, 1.0), "data", {})
    assert data == {"score": "5", "comment": "the doctor was very good",
                    "comment_recording": "/rec/dial-5.wav", "comment_duration_s": "2.50",
                    "comment_status": "transcribed"}


@pytest.mark.parametrize(("state", "text", "intent"), [
    ("campaign_choice", "reschedule", "reschedule"), ("campaign_choice", "do not call",
                                                      "opt_out"),
    ("campaign_offer", "reschedule", "unknown"), ("campaign_score", "five", "score"),
])  # fmt: skip
def test_campaign_grammars(state: str, text: str, intent: str) -> None:
    assert match_intent(text, "en", STATE_INTENTS[state]).intent == intent
    assert "не звоните" in grammar_for(state, "ru").phrases


def test_only_campaign_arguments_name_a_dial() -> None:
    assert dial_id_of(["campaign", "12"]) == 12
    for args in (["inbound", "12"], ["campaign"], ["campaign", "-1"], ["campaign", "0"],
                 ["campaign", "1" * 30], ["campaign", "1;x"]):  # fmt: skip
        assert dial_id_of(args) is None


async def test_a_text_is_synthesised_once(tmp_path: Path) -> None:
    spoken = SpokenTexts(str(tmp_path), "callserver")
    a, b = await asyncio.gather(spoken.media("Hello --help", "en"), spoken.media("Hello --help",
                                                                                 "en"))
    assert a == b and a.startswith("sound:callserver/spoken/") and spoken.made == 1
    files = list((tmp_path / "en" / "callserver" / "spoken").glob("*.wav"))
    assert len(files) == 1 and files[0].stat().st_size > 1000
    assert await spoken.media("Hello --help", "en") == a and spoken.made == 1
    assert await SpokenTexts("", "callserver").media("Hello", "en") == ""
