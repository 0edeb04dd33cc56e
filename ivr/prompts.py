"""Prompt texts of the voice bot, Russian and English, by prompt id.

The ARI session plays ``sound:{lang}/callserver/{prompt_id}``; the sound files are synthesised
from these texts ahead of time (espeak-ng, or a studio recording a clinic drops in with the same
name) — never fetched at run time. Numbers, dates and times are said with Asterisk's Say*.
Campaign calls say sentences of their own (a visit's doctor, date and time in words): those are
synthesised locally with the same tools when first needed (``ivr.spoken``).
"""

from __future__ import annotations

PROMPTS: dict[str, dict[str, str]] = {
    "greeting": {
        "ru": "Здравствуйте! Вы позвонили в клинику. Все администраторы сейчас заняты, "
              "я голосовой помощник.",
        "en": "Hello! You have reached the clinic. All our receptionists are busy; "
              "I am the voice assistant.",
    },
    "main_menu": {
        "ru": "Скажите, что вы хотите: записаться, перенести или отменить запись, "
              "соединить с оператором или перезвонить вам. Или нажмите: один — запись, "
              "два — перенос или отмена, три — обратный звонок, ноль — оператор.",
        "en": "Say what you would like: book, reschedule or cancel an appointment, talk to an "
              "operator, or have us call you back. Or press 1 to book, 2 to reschedule or "
              "cancel, 3 for a call back, 0 for an operator.",
    },
    "main_menu_dtmf": {
        "ru": "Нажмите один — запись, два — перенос или отмена, три — обратный звонок, "
              "ноль — оператор, звёздочка — повторить.",
        "en": "Press 1 to book, 2 to reschedule or cancel, 3 for a call back, 0 for an "
              "operator, star to repeat.",
    },
    "change_menu": {
        "ru": "Перенести или отменить запись? Или нажмите один — перенести, два — отменить.",
        "en": "Reschedule or cancel? Or press 1 to reschedule, 2 to cancel.",
    },
    "change_menu_dtmf": {
        "ru": "Нажмите один, чтобы перенести запись, два — чтобы отменить.",
        "en": "Press 1 to reschedule, 2 to cancel.",
    },
    "confirm_book": {"ru": "Вы хотите записаться на приём.", "en": "You would like to book."},
    "confirm_reschedule": {"ru": "Вы хотите перенести запись.",
                           "en": "You would like to reschedule."},
    "confirm_cancel": {"ru": "Вы хотите отменить запись.", "en": "You would like to cancel."},
    "yes_no": {"ru": "Верно? Скажите да или нет, или нажмите один — да, два — нет.",
               "en": "Is that right? Say yes or no, or press 1 for yes, 2 for no."},
    "yes_no_dtmf": {"ru": "Верно? Нажмите один — да, два — нет.",
                    "en": "Is that right? Press 1 for yes, 2 for no."},
    "operator_wait": {
        "ru": "Соединим вас с первым освободившимся оператором, оставайтесь на линии. "
              "Или скажите «перезвоните», и мы вам перезвоним.",
        "en": "We will connect you to the next free operator, please stay on the line. "
              "Or say call me back and we will call you.",
    },
    "request_accepted": {"ru": "Заявка принята, администратор свяжется с вами.",
                         "en": "Your request is in; a receptionist will contact you."},
    "callback_promise": {"ru": "Мы перезвоним вам в ближайшее время.",
                         "en": "We will call you back shortly."},
    "lets_try_again": {"ru": "Хорошо, давайте ещё раз.", "en": "All right, let us try again."},
    "not_understood": {"ru": "Извините, я не поняла.", "en": "Sorry, I did not understand."},
    "no_input": {"ru": "Извините, я вас не слышу.", "en": "Sorry, I cannot hear you."},
    "goodbye": {"ru": "Спасибо за звонок, до свидания!", "en": "Thank you for calling, goodbye!"},
}


def prompt_text(prompt_id: str, lang: str) -> str:
    """The text of ``prompt_id`` in ``lang``. Raises ``KeyError`` for an unknown id or language."""
    return PROMPTS[prompt_id][lang]
