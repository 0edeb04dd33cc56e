"""The campaign call's dialog (pure state machine), its words for dates and times, and the
mapping of outcomes to CRM updates."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from campaigns.dialog import CallFacts, Dialog, Input, intent_of
from campaigns.outcomes import effects, final_outcome
from campaigns.speech import say_date, say_time

MSK = ZoneInfo("Europe/Moscow")
VISIT = datetime(2026, 12, 3, 9, 30, tzinfo=MSK)


def reminder(lang: str = "ru") -> Dialog:
    return Dialog(CallFacts("reminder", "Улыбка", lang, "Иванова Анна Петровна", VISIT))


def run(dialog: Dialog, *inputs: Input) -> tuple[str, dict[str, str]]:
    dialog.start()
    step = None
    for inp in inputs:
        step = dialog.feed(inp)
        if step.done:
            return step.outcome, step.data
    raise AssertionError(f"dialog not done after {inputs}: {step}")


@pytest.mark.parametrize(
    ("inp", "outcome"),
    [
        (Input("dtmf", "1"), "confirmed"),
        (Input("dtmf", "2"), "cancelled"),
        (Input("dtmf", "3"), "reschedule"),
        (Input("dtmf", "0"), "operator"),
        (Input("dtmf", "9"), "opt_out"),
        (Input("text", "Да, приду"), "confirmed"),
        (Input("text", "нет, не смогу"), "cancelled"),
        (Input("text", "а можно перенести на другой день"), "reschedule"),
        (Input("text", "соедините с администратором"), "operator"),
        (Input("text", "не звоните мне больше"), "opt_out"),
        (Input("machine"), "answering_machine"),
        (Input("hangup"), "hung_up"),
    ],
)
def test_reminder_answers(inp: Input, outcome: str) -> None:
    assert run(reminder(), inp)[0] == outcome


def test_unclear_answers_are_asked_again_then_given_up() -> None:
    d = reminder()
    d.start()
    first = d.feed(Input("text", "когда это было"))  # «да» inside a word is not a yes
    assert not first.done and "не расслышали" in first.say[0]
    assert not d.feed(Input("silence")).done
    last = d.feed(Input("dtmf", "7"))
    assert last.done and last.outcome == "no_response"


def test_the_greeting_says_who_calls_and_the_appointment_in_words() -> None:
    ru = reminder().start().say[0]
    assert "«Улыбка»" in ru and "Иванова Анна Петровна" in ru
    assert "в четверг, третьего декабря в девять часов тридцать минут" in ru
    en = reminder("en").start().say[0]
    assert "on Thursday, the third of December at nine thirty a.m." in en
    assert "Улыбка" in en


@pytest.mark.parametrize(
    ("t", "ru", "en"),
    [
        (time(9, 30), "в девять часов тридцать минут", "at nine thirty a.m."),
        (time(21, 1), "в двадцать один час одну минуту", "at nine oh one p.m."),
        (time(14, 5), "в четырнадцать часов пять минут", "at two oh five p.m."),
        (time(13, 44), "в тринадцать часов сорок четыре минуты", "at one forty-four p.m."),
        (time(12, 0), "в двенадцать часов ровно", "at noon"),
        (time(22, 22), "в двадцать два часа двадцать две минуты", "at ten twenty-two p.m."),
    ],
)
def test_times_in_words(t: time, ru: str, en: str) -> None:
    assert say_time(t, "ru") == ru
    assert say_time(t, "en") == en


@pytest.mark.parametrize(
    ("day", "ru", "en"),
    [
        (11, "в пятницу, одиннадцатого декабря", "on Friday, the eleventh of December"),
        (22, "во вторник, двадцать второго декабря", "on Tuesday, the twenty-second of December"),
        (30, "в среду, тридцатого декабря", "on Wednesday, the thirtieth of December"),
        (31, "в четверг, тридцать первого декабря", "on Thursday, the thirty-first of December"),
    ],
)
def test_dates_in_words(day: int, ru: str, en: str) -> None:
    assert say_date(date(2026, 12, day), "ru") == ru
    assert say_date(date(2026, 12, day), "en") == en


def test_feedback_score_and_comment() -> None:
    d = Dialog(CallFacts("feedback", "Улыбка"))
    assert run(d, Input("text", "ну на тройку"), Input("text", "долго ждал")) == (
        "low_score", {"score": "3", "comment": "долго ждал"})  # fmt: skip
    d = Dialog(CallFacts("feedback", "Улыбка"))
    rated = run(d, Input("dtmf", "5"), Input("dtmf", "#"))
    assert rated == ("rated", {"score": "5", "comment": ""})


def test_a_recorded_comment_keeps_its_recording_length_and_status_only() -> None:
    d = Dialog(CallFacts("feedback", "Smile", "en"))
    details = {"recording": "/rec/dial-9.wav", "duration_s": "3.10", "status": "transcribed",
               "score": "5"}  # a detail cannot overwrite the score  # fmt: skip
    assert run(d, Input("dtmf", "2"), Input("text", " the doctor was late ", details)) == (
        "low_score", {"score": "2", "comment": "the doctor was late",
                      "comment_recording": "/rec/dial-9.wav", "comment_duration_s": "3.10",
                      "comment_status": "transcribed"})  # fmt: skip


def test_recall_and_waitlist_offers() -> None:
    assert run(Dialog(CallFacts("recall", "Улыбка")), Input("dtmf", "1"))[0] == "booking_requested"
    wl = Dialog(CallFacts("waitlist", "Улыбка", "ru", "Петров", VISIT))
    assert "Освободилось время" in wl.start().say[0]
    assert wl.feed(Input("text", "да")).outcome == "slot_accepted"
    # «перенести» means nothing in a recall: asked again
    d = Dialog(CallFacts("recall", "Улыбка"))
    d.start()
    assert not d.feed(Input("dtmf", "3")).done


def test_no_input_after_the_end() -> None:
    d = reminder()
    run(d, Input("dtmf", "1"))
    with pytest.raises(ValueError):
        d.feed(Input("dtmf", "1"))


@pytest.mark.parametrize(
    ("result", "outcome", "status", "retry", "callback", "opt_out"),
    [
        ("answered", "confirmed", "confirmed", False, "", False),
        ("answered", "cancelled", "cancelled", False, "", False),
        ("answered", "reschedule", "", False, "campaign_reminder_reschedule", False),
        ("answered", "operator", "", False, "campaign_reminder_operator", False),
        ("answered", "opt_out", "", False, "", True),
        ("answered", "answering_machine", "", True, "", False),
        ("answered", "no_response", "", True, "", False),
        ("no_answer", "", "", True, "", False),
        ("busy", "", "", True, "", False),
    ],
)
def test_outcomes_to_crm_effects(result: str, outcome: str, status: str, retry: bool,
                                 callback: str, opt_out: bool) -> None:  # fmt: skip
    e = effects("reminder", result, outcome)
    assert (e.appointment_status, e.retry, e.callback_reason, e.opt_out) == (
        status, retry, callback, opt_out)  # fmt: skip
    assert e.offer_slot is (outcome == "cancelled")


def test_final_outcome() -> None:
    assert final_outcome("busy", "") == "unreached"
    assert final_outcome("answered", "answering_machine") == "unreached"
    assert final_outcome("answered", "confirmed") == "confirmed"
    assert effects("feedback", "answered", "low_score").manager_task
    assert intent_of("") == ""
