"""The dialog of a campaign call as a pure state machine (no I/O, no clock).

Whoever holds the line (the ivr plugin over ARI, or a test) calls ``start()`` for the first
prompts, then ``feed(Input)`` per thing the patient did — a keypad digit, recognised text,
silence, an answering machine, a hang-up — and speaks each returned ``Step.say`` until
``Step.done``; ``Step.outcome`` then says what happened (mapped to CRM updates in
``campaigns.outcomes``).

Reminder / confirmation: yes (1) · no (2) · reschedule (3) · operator (0) · opt-out
«не звоните» (9). Feedback: score 1–5, then an optional comment. Recall, waitlist offer and
custom: yes (1) · no (2) · operator (0) · opt-out (9).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from campaigns.speech import say_date, say_time

InputKind = Literal["dtmf", "text", "silence", "machine", "hangup"]
MAX_REPROMPTS = 2
RESCHEDULABLE = ("reminder", "confirmation")

_INTENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # order matters: «не звоните» before «нет», «перенести» before «да»
    ("opt_out", ("не звоните", "не звонить", "больше не звон", "отпишите", "don't call",
                 "do not call", "stop calling")),
    ("reschedule", ("перенес", "перезапис", "другое время", "другой день", "reschedule",
                    "another time", "another day")),
    ("operator", ("оператор", "администратор", "соедините", "человек", "operator", "human",
                  "receptionist")),
    ("no", ("нет", "не приду", "не смогу", "не получится", "отмен", "no", "cancel", "can't")),
    ("yes", ("да", "приду", "подтвержда", "конечно", "буду", "yes", "yeah", "sure", "confirm")),
)  # fmt: skip
_KEYS = {"1": "yes", "2": "no", "3": "reschedule", "0": "operator", "9": "opt_out"}
_SCORE_WORDS = {"один": 1, "единица": 1, "единицу": 1, "два": 2, "двойка": 2, "двойку": 2,
                "три": 3, "тройка": 3, "тройку": 3, "четыре": 4, "четверка": 4, "четверку": 4,
                "пять": 5, "пятерка": 5, "пятерку": 5, "one": 1, "two": 2, "three": 3,
                "four": 4, "five": 5}  # fmt: skip
"""Score words after ``ё`` → ``е`` (nominative and «на тройку»)."""


COMMENT_DETAILS = ("recording", "duration_s", "status")
"""What a comment's ``Input.details`` may carry into the result (as ``comment_<key>``)."""


@dataclass(frozen=True)
class Input:
    kind: InputKind
    value: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    """For a comment: the WAV's ``recording`` path, its ``duration_s``, the transcription's
    ``status`` (``transcribed`` | ``nothing recognised`` | ``not transcribed: no model``)."""


@dataclass(frozen=True)
class Step:
    say: tuple[str, ...]
    done: bool = False
    outcome: str = ""
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallFacts:
    """What the call says: the clinic, the patient's appointment (local time), the language."""

    kind: str
    clinic: str
    lang: str = "ru"
    doctor: str = ""
    starts_at: datetime | None = None
    text: str = ""
    """The offer of a custom campaign (its own words)."""


def intent_of(text: str) -> str:
    """``yes|no|reschedule|operator|opt_out`` or ``""`` for recognised speech."""
    clean = " " + re.sub(r"[^\w' ]+", " ", text.lower().replace("ё", "е")) + " "
    clean = re.sub(r"\s+", " ", clean)
    for intent, phrases in _INTENTS:
        for phrase in phrases:
            needle = phrase.replace("ё", "е")
            if len(needle) <= 3:  # short words must be whole words («да» is not in «когда»)
                if f" {needle} " in clean:
                    return intent
            elif needle in clean:
                return intent
    return ""


def score_of(inp: Input) -> int:
    """1–5 from a key or a word; 0 when it is not a score."""
    if inp.kind == "dtmf":
        return int(inp.value) if inp.value in ("1", "2", "3", "4", "5") else 0
    words = re.findall(r"\w+", inp.value.lower().replace("ё", "е"))
    for w in words:
        if w.isascii() and w.isdigit() and 1 <= int(w) <= 5:
            return int(w)
        if w in _SCORE_WORDS:
            return _SCORE_WORDS[w]
    return 0


def _t(lang: str, ru: str, en: str) -> str:
    return en if lang == "en" else ru


class Dialog:
    """One call's conversation. ``start`` once, then ``feed`` until a step is ``done``."""

    def __init__(self, facts: CallFacts) -> None:
        self.facts = facts
        self.state = "new"
        self.reprompts = 0
        self.score = 0

    @property
    def expects(self) -> str:
        """What the patient may answer now, for a recogniser's grammar: ``yes_no_reschedule``
        (reminder, confirmation), ``yes_no`` (recall, waitlist, custom), ``score``, ``comment``;
        ``""`` before ``start`` and after the end. Keys, «оператор» and «не звоните» always."""
        if self.state == "choice":
            return "yes_no_reschedule" if self.facts.kind in RESCHEDULABLE else "yes_no"
        return self.state if self.state in ("score", "comment") else ""

    def start(self) -> Step:
        self.state = "score" if self.facts.kind == "feedback" else "choice"
        return Step((self._intro(), self._question()))

    def feed(self, inp: Input) -> Step:
        if self.state in ("done", "new"):
            raise ValueError(f"dialog is {self.state}: start() first / no input after the end")
        if inp.kind == "hangup":
            return self._end("hung_up", ())
        if inp.kind == "machine":
            return self._end("answering_machine", ())
        if self.state == "comment":
            return self._comment(inp)
        choice = self._choice(inp)
        if choice == "opt_out":
            return self._end("opt_out", (_t(self.facts.lang,
                "Хорошо, мы больше не будем вам звонить. До свидания.",
                "All right, we will not call you again. Goodbye."),))  # fmt: skip
        if self.state == "score":
            return self._scored(inp, choice)
        return self._chosen(choice)

    # --- states -------------------------------------------------------------------------

    def _choice(self, inp: Input) -> str:
        if inp.kind == "dtmf":
            return _KEYS.get(inp.value, "")
        if inp.kind == "text":
            return intent_of(inp.value)
        return ""

    def _chosen(self, choice: str) -> Step:
        allowed = {"yes", "no", "operator"}
        if self.facts.kind in RESCHEDULABLE:
            allowed.add("reschedule")
        if choice not in allowed:
            return self._reprompt()
        outcome = _OUTCOME[self.facts.kind].get(choice, choice)
        return self._end(outcome, (_goodbye(outcome, self.facts.lang),))

    def _scored(self, inp: Input, choice: str) -> Step:
        score = score_of(inp)
        if score == 0:
            return self._reprompt() if choice != "operator" else self._end("operator", ())
        self.score, self.state, self.reprompts = score, "comment", 0
        return Step((_t(self.facts.lang,
            "Спасибо. Если хотите, оставьте комментарий после сигнала, или нажмите решётку.",
            "Thank you. Leave a comment after the tone if you wish, or press hash."),))  # fmt: skip

    def _comment(self, inp: Input) -> Step:
        comment = inp.value.strip()[:1000] if inp.kind == "text" else ""
        data = {"score": str(self.score), "comment": comment}
        if inp.kind == "text":
            data.update({f"comment_{k}": inp.details[k] for k in COMMENT_DETAILS
                         if k in inp.details})  # fmt: skip
        bye = _t(self.facts.lang, "Спасибо за отзыв! До свидания.", "Thank you! Goodbye.")
        return self._end("low_score" if self.score <= 3 else "rated", (bye,), data)

    def _reprompt(self) -> Step:
        self.reprompts += 1
        if self.reprompts > MAX_REPROMPTS:
            return self._end("no_response", (_t(self.facts.lang,
                "Не удалось вас расслышать. Мы перезвоним. До свидания.",
                "Sorry, we could not hear you. We will call back. Goodbye."),))  # fmt: skip
        sorry = _t(self.facts.lang, "Извините, не расслышали.", "Sorry, I did not catch that.")
        return Step((sorry, self._question()))

    def _end(self, outcome: str, say: tuple[str, ...], data: dict[str, str] | None = None) -> Step:
        self.state = "done"
        if self.score and data is None:
            data = {"score": str(self.score), "comment": ""}
        return Step(say, done=True, outcome=outcome, data=data or {})

    # --- words --------------------------------------------------------------------------

    def _intro(self) -> str:
        f = self.facts
        hello = _t(f.lang, f"Здравствуйте! Вас беспокоит клиника «{f.clinic}».",
                   f"Hello! This is {f.clinic} clinic calling.")  # fmt: skip
        if f.kind in ("reminder", "confirmation", "waitlist") and f.starts_at is not None:
            when = f"{say_date(f.starts_at.date(), f.lang)} {say_time(f.starts_at.time(), f.lang)}"
            if f.kind == "waitlist":
                return hello + " " + _t(f.lang,
                    f"Освободилось время у врача: {f.doctor}, {when}.",
                    f"A slot is free with {f.doctor}, {when}.")  # fmt: skip
            return hello + " " + _t(f.lang,
                f"Напоминаем о записи на приём. Врач: {f.doctor}. Приём {when}.",
                f"A reminder of your appointment with {f.doctor} {when}.")  # fmt: skip
        if f.kind == "feedback":
            return hello + " " + _t(f.lang, "Благодарим за визит!", "Thank you for your visit!")
        if f.kind == "recall":
            return hello + " " + _t(f.lang,
                "Прошло полгода с вашего визита — пора на профилактический осмотр.",
                "It has been six months since your visit: time for a check-up.")  # fmt: skip
        return hello + (" " + f.text if f.text else "")

    def _question(self) -> str:
        lang, kind = self.facts.lang, self.facts.kind
        if kind == "feedback":
            return _t(lang,
                "Оцените, пожалуйста, визит от одного до пяти: скажите или нажмите цифру.",
                "Please rate your visit from one to five: say it or press the key.")  # fmt: skip
        stop = _t(lang, "Чтобы мы больше не звонили, скажите «не звоните» или нажмите 9.",
                  "If you do not want our calls, say 'do not call' or press 9.")  # fmt: skip
        if kind in ("reminder", "confirmation"):
            return _t(lang,
                "Если придёте, скажите «да» или нажмите 1. Не сможете — «нет» или 2. "
                "Перенести — «перенести» или 3. Соединить с администратором — 0. ",
                "If you are coming, say yes or press 1. If not, say no or press 2. To reschedule "
                "press 3. For the receptionist press 0. ") + stop  # fmt: skip
        offer = {
            "recall": _t(lang, "Записать вас на осмотр?", "Shall we book you a check-up?"),
            "waitlist": _t(lang, "Записать вас на это время?", "Shall we book this slot?"),
        }
        keys = _t(lang, "Да — 1, нет — 2, администратор — 0. ", "Yes: 1, no: 2, receptionist: 0. ")
        return offer.get(kind, "") + " " + keys + stop  # fmt: skip


_OUTCOME: dict[str, dict[str, str]] = {
    "reminder": {"yes": "confirmed", "no": "cancelled", "reschedule": "reschedule"},
    "confirmation": {"yes": "confirmed", "no": "cancelled", "reschedule": "reschedule"},
    "recall": {"yes": "booking_requested", "no": "declined"},
    "waitlist": {"yes": "slot_accepted", "no": "declined"},
    "custom": {"yes": "accepted", "no": "declined"},
    "feedback": {},
}


def _goodbye(outcome: str, lang: str) -> str:
    ru = {"confirmed": "Спасибо, ждём вас! До свидания.",
          "cancelled": "Запись отменена. Спасибо, что предупредили. До свидания.",
          "reschedule": "Администратор перезвонит вам, чтобы подобрать время. До свидания.",
          "operator": "Администратор перезвонит вам в ближайшее время. До свидания.",
          "booking_requested":
              "Администратор перезвонит, чтобы подобрать время. До свидания."}  # fmt: skip
    en = {"confirmed": "Thank you, see you soon! Goodbye.",
          "cancelled": "Your appointment is cancelled. Thank you for letting us know. Goodbye.",
          "reschedule": "The receptionist will call you back to find a time. Goodbye.",
          "operator": "The receptionist will call you back shortly. Goodbye.",
          "booking_requested": "The receptionist will call you back to book. Goodbye."}  # fmt: skip
    table = en if lang == "en" else ru
    return table.get(outcome, _t(lang, "Спасибо! До свидания.", "Thank you! Goodbye."))
