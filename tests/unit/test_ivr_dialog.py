"""The voice-bot dialog as a pure state machine (ivr.dialog): no audio, inputs → commands."""

from __future__ import annotations

import pytest

from ivr.dialog import Dialog
from ivr.models import (
    Answered,
    CreateCallbackJob,
    DialogSettings,
    Dtmf,
    HangUp,
    Hangup,
    OperatorFreed,
    PlayPrompts,
    PromptFinished,
    RecognitionLost,
    ReturnToQueue,
    SendAppointmentRequest,
    SilenceTimeout,
    SpeechStarted,
    StartRecognition,
    StartSilenceTimer,
    StopPlayback,
    StopRecognition,
    Utterance,
)
from ivr.prompts import PROMPTS


def started(lang: str = "en", speech: bool = True) -> Dialog:
    d = Dialog(DialogSettings(lang=lang))  # type: ignore[arg-type]
    d.handle(Answered(speech=speech))
    d.handle(PromptFinished())
    return d


def prompts(cmds: list[object]) -> tuple[str, ...]:
    return tuple(p for c in cmds if isinstance(c, PlayPrompts) for p in c.prompts)


def test_answer_greets_plays_the_menu_and_listens_with_the_menu_grammar() -> None:
    d = Dialog(DialogSettings(lang="ru"))
    cmds = d.handle(Answered())
    assert cmds == [PlayPrompts(("greeting", "main_menu"), "ru"),
                    StartRecognition("main_menu", "ru")]
    assert d.handle(PromptFinished()) == [StartSilenceTimer(5.0)]


def test_silence_reprompts_twice_then_creates_a_callback_job() -> None:
    d = started()
    for _ in range(2):
        cmds = d.handle(SilenceTimeout())
        assert prompts(cmds) == ("no_input", "main_menu")
        d.handle(PromptFinished())
    cmds = d.handle(SilenceTimeout())
    assert CreateCallbackJob("unknown", (), "no_input") in cmds
    assert prompts(cmds) == ("callback_promise", "goodbye")
    assert d.handle(PromptFinished()) == [HangUp()]
    assert d.outcome == "callback"


def test_silence_while_the_prompt_still_plays_is_ignored() -> None:
    d = Dialog()
    d.handle(Answered())
    assert d.handle(SilenceTimeout()) == []


def test_barge_in_stops_the_prompt_and_the_utterance_is_used() -> None:
    d = Dialog(DialogSettings(lang="en"))
    d.handle(Answered())
    assert d.handle(SpeechStarted()) == [StopPlayback()]
    assert d.handle(SpeechStarted()) == []  # nothing left to stop
    cmds = d.handle(Utterance("book an appointment", "book"))
    assert prompts(cmds) == ("confirm_book", "yes_no") and d.state == "confirm"
    assert StartRecognition("confirm", "en") in cmds


def test_booking_by_voice_sends_the_appointment_request_with_the_callers_words() -> None:
    d = started()
    d.handle(Utterance("i want to book an appointment", "book"))
    d.handle(PromptFinished())
    cmds = d.handle(Utterance("yes please", "yes"))
    assert SendAppointmentRequest("book", ("i want to book an appointment", "yes please")) in cmds
    assert StopRecognition() in cmds
    assert prompts(cmds) == ("request_accepted", "goodbye")
    assert d.handle(PromptFinished()) == [HangUp()] and d.outcome == "appointment"


def test_no_in_the_confirmation_goes_back_to_the_menu() -> None:
    d = started()
    d.handle(Utterance("cancel", "cancel"))
    cmds = d.handle(Utterance("no", "no"))
    assert prompts(cmds) == ("lets_try_again", "main_menu") and d.state == "main_menu"
    assert d.pending is None


@pytest.mark.parametrize(("keys", "expected"), [
    ("11", SendAppointmentRequest("book", ())),
    ("211", SendAppointmentRequest("reschedule", ())),
    ("221", SendAppointmentRequest("cancel", ())),
    ("3", CreateCallbackJob("callback", (), "asked")),
])
def test_dtmf_menu(keys: str, expected: object) -> None:
    d = started()
    cmds: list[object] = []
    for k in keys:
        cmds = list(d.handle(Dtmf(k)))
    assert expected in cmds


def test_dtmf_during_a_prompt_stops_it_and_zero_asks_for_an_operator() -> None:
    d = Dialog()
    d.handle(Answered())
    cmds = d.handle(Dtmf("0"))
    assert cmds[0] == StopPlayback()
    assert prompts(cmds) == ("operator_wait",) and d.state == "wait_operator"


def test_a_spoken_digit_counts_as_the_key() -> None:
    d = started()
    cmds = d.handle(Utterance("one", "digits", digits="1"))
    assert d.state == "confirm" and d.pending == "book"
    assert prompts(cmds) == ("confirm_book", "yes_no")


def test_operator_freed_mid_dialog_returns_the_call_to_the_queue_with_priority() -> None:
    d = started()
    d.handle(Utterance("reschedule my appointment", "reschedule"))  # prompt playing
    cmds = d.handle(OperatorFreed())
    assert cmds == [StopPlayback(), StopRecognition(), ReturnToQueue(10)]
    assert d.outcome == "queue"
    assert d.handle(Utterance("yes", "yes")) == [] and d.handle(Hangup()) == []


def test_operator_request_waits_then_goes_to_the_queue_when_one_frees_up() -> None:
    d = started()
    d.handle(Utterance("operator", "operator"))
    d.handle(PromptFinished())
    assert d.handle(OperatorFreed()) == [StopRecognition(), ReturnToQueue(10)]


def test_waiting_for_an_operator_too_long_becomes_a_callback() -> None:
    d = started()
    d.handle(Utterance("operator", "operator"))
    for _ in range(2):
        d.handle(PromptFinished())
        assert prompts(d.handle(SilenceTimeout())) == ("operator_wait",)
    d.handle(PromptFinished())
    assert CreateCallbackJob("operator", ("operator",), "no_operator") in d.handle(
        SilenceTimeout())


def test_operator_freed_after_the_outcome_is_ignored() -> None:
    d = started()
    d.handle(Dtmf("3"))
    assert d.handle(OperatorFreed()) == [] and d.outcome == "callback"


def test_unknown_utterances_reprompt_twice_then_callback_with_the_words() -> None:
    d = started()
    for text in ("what about tuesday", "hmm"):
        cmds = d.handle(Utterance(text, "unknown", 0.3))
        assert prompts(cmds) == ("not_understood", "main_menu")
    cmds = d.handle(Utterance("my tooth hurts", "unknown", 0.2))
    assert CreateCallbackJob("unknown", ("what about tuesday", "hmm", "my tooth hurts"),
                             "not_understood") in cmds


def test_a_low_score_match_counts_as_not_understood() -> None:
    d = started()
    cmds = d.handle(Utterance("bock", "book", score=0.5))
    assert prompts(cmds)[0] == "not_understood" and d.state == "main_menu"


def test_repeat_replays_the_current_question() -> None:
    d = started()
    d.handle(Utterance("cancel my appointment", "cancel"))
    assert prompts(d.handle(Utterance("repeat", "repeat"))) == ("confirm_cancel", "yes_no")
    assert prompts(d.handle(Dtmf("*"))) == ("confirm_cancel", "yes_no")


def test_hangup_before_an_outcome_is_a_callback_job_with_the_intent() -> None:
    d = started()
    d.handle(Utterance("book an appointment", "book"))
    assert d.handle(Hangup()) == [CreateCallbackJob("book", ("book an appointment",), "hangup")]
    assert d.outcome == "hangup"


def test_without_recognition_the_menu_is_keypad_only() -> None:
    d = Dialog(DialogSettings(lang="ru"))
    cmds = d.handle(Answered(speech=False))
    assert cmds == [PlayPrompts(("greeting", "main_menu_dtmf"), "ru")]
    d.handle(PromptFinished())
    assert d.handle(Dtmf("1")) == [PlayPrompts(("confirm_book", "yes_no_dtmf"), "ru")]


def test_recognition_lost_mid_call_switches_to_keypad_prompts() -> None:
    d = started()
    cmds = d.handle(RecognitionLost())
    assert cmds == [StopRecognition(), PlayPrompts(("main_menu_dtmf",), "en")]
    assert not any(isinstance(c, StartRecognition) for c in d.handle(Dtmf("2")))


def test_every_prompt_the_dialog_can_play_has_russian_and_english_text() -> None:
    played: set[str] = set()
    for speech in (True, False):
        for script in ("11", "211", "221", "12", "3", "0", "*", "9"):
            d = started(speech=speech)
            played |= set(prompts(d.handle(Answered())))
            for k in script:
                played |= set(prompts(d.handle(Dtmf(k))))
            d.handle(PromptFinished())
            played |= set(prompts(d.handle(SilenceTimeout())))
        d = Dialog()
        played |= set(prompts(d.handle(Answered(speech=speech))))
    assert played >= {"greeting", "main_menu", "confirm_book", "goodbye", "no_input"}
    for pid in played:
        assert PROMPTS[pid]["ru"] and PROMPTS[pid]["en"], pid
