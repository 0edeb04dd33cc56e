"""Phrase lists of the voice bot, Russian and English: the one source for both the per-state
recognition grammars and the intent matcher (so the recogniser can only return phrases the
matcher knows). Lower case; Russian with «е» for «ё» (normalised the same way on input).
"""

from __future__ import annotations

from typing import Literal

Intent = Literal[
    "book", "reschedule", "cancel", "operator", "callback", "yes", "no", "digits", "repeat",
    "opt_out", "score", "unknown",
]
INTENTS: tuple[Intent, ...] = (
    "book", "reschedule", "cancel", "operator", "callback", "yes", "no", "digits", "repeat",
    "opt_out", "score", "unknown",
)

PHRASES: dict[str, dict[Intent, tuple[str, ...]]] = {
    "en": {
        "book": (
            "book", "book an appointment", "i want to book an appointment",
            "i would like to book an appointment", "make an appointment",
            "i want to make an appointment", "new appointment", "schedule an appointment",
            "i want to see a doctor", "appointment",
        ),
        "reschedule": (
            "reschedule", "reschedule my appointment", "i want to reschedule",
            "change my appointment", "i need to change my appointment", "move my appointment",
            "another time", "change the time",
        ),
        "cancel": (
            "cancel", "cancel my appointment", "cancel the appointment", "i want to cancel",
            "i need to cancel my appointment",
        ),
        "operator": (
            "operator", "talk to an operator", "connect me to an operator", "speak to a person",
            "talk to a person", "a real person", "receptionist", "administrator",
            "representative", "agent",
        ),
        "callback": (
            "call me back", "please call me back", "call back later", "i want a call back",
            "can you call me back",
        ),
        "yes": ("yes", "yeah", "yes please", "correct", "that is right", "sure", "right", "okay"),
        "no": ("no", "nope", "no thanks", "no thank you", "wrong", "that is wrong", "not right"),
        "repeat": ("repeat", "repeat that", "say that again", "can you repeat that"),
        "opt_out": ("do not call", "do not call me", "don't call me", "stop calling",
                    "stop calling me", "remove me from the list"),
        "score": ("one", "two", "three", "four", "five"),
    },
    "ru": {
        "book": (
            "записаться", "запись", "записаться на прием", "хочу записаться", "новая запись",
            "запишите меня", "на прием", "записаться к врачу",
        ),
        "reschedule": (
            "перенести", "перенести запись", "перенести прием", "хочу перенести",
            "другое время", "изменить время",
        ),
        "cancel": ("отменить", "отменить запись", "отменить прием", "отмена", "хочу отменить"),
        "operator": (
            "оператор", "оператора", "соедините с оператором", "соедините с администратором",
            "администратор", "администратора", "живой человек", "позовите оператора",
        ),
        "callback": (
            "перезвоните", "перезвоните мне", "перезвонить", "обратный звонок", "позвоните мне",
        ),
        "yes": ("да", "конечно", "верно", "правильно", "да конечно", "ага", "хорошо"),
        "no": ("нет", "неверно", "неправильно", "не надо", "нет спасибо"),
        "repeat": ("повторите", "повторить", "еще раз", "не понял", "не поняла"),
        "opt_out": ("не звоните", "не звоните мне", "больше не звоните", "не звонить",
                    "отпишите меня"),
        "score": ("один", "два", "три", "четыре", "пять", "единица", "двойка", "тройка",
                  "четверка", "пятерка"),
    },
}

UNITS: dict[str, dict[str, int]] = {
    "en": {
        "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
        "seven": 7, "eight": 8, "nine": 9,
    },
    "ru": {
        "ноль": 0, "нуль": 0, "один": 1, "одна": 1, "два": 2, "две": 2, "три": 3, "четыре": 4,
        "пять": 5, "шесть": 6, "семь": 7, "восемь": 8, "девять": 9,
    },
}
TEENS: dict[str, dict[str, int]] = {
    "en": {
        "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
        "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    },
    "ru": {
        "десять": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13,
        "четырнадцать": 14, "пятнадцать": 15, "шестнадцать": 16, "семнадцать": 17,
        "восемнадцать": 18, "девятнадцать": 19,
    },
}
TENS: dict[str, dict[str, int]] = {
    "en": {
        "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
        "eighty": 80, "ninety": 90,
    },
    "ru": {
        "двадцать": 20, "тридцать": 30, "сорок": 40, "пятьдесят": 50, "шестьдесят": 60,
        "семьдесят": 70, "восемьдесят": 80, "девяносто": 90,
    },
}
HUNDREDS: dict[str, dict[str, int]] = {
    "en": {},
    "ru": {
        "сто": 100, "двести": 200, "триста": 300, "четыреста": 400, "пятьсот": 500,
        "шестьсот": 600, "семьсот": 700, "восемьсот": 800, "девятьсот": 900,
    },
}
FILLER_WORDS = {"en": {"and", "please", "um", "uh"}, "ru": {"и", "пожалуйста", "ну", "эээ"}}
"""Words ignored inside a spoken number."""

STATE_INTENTS: dict[str, tuple[Intent, ...]] = {
    "main_menu": ("book", "reschedule", "cancel", "operator", "callback", "repeat", "digits"),
    "change": ("reschedule", "cancel", "operator", "callback", "repeat", "digits"),
    "confirm": ("yes", "no", "operator", "callback", "repeat"),
    # outbound campaign calls (``ivr.campaign_dialog``; ``campaigns.dialog.Dialog.expects``)
    "campaign_choice": ("yes", "no", "reschedule", "operator", "opt_out"),
    "campaign_offer": ("yes", "no", "operator", "opt_out"),
    "campaign_score": ("score", "operator", "opt_out"),
}
"""Which intents each dialog state listens for (its grammar is built from their phrases).
``score`` is the campaign feedback's 1–5 (words, not ``digits``: only these five)."""
