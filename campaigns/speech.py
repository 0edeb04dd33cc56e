"""Dates and times said in words, as a speech synthesiser must read them (ru, en).

``say_date(d, "ru")`` → ``"в четверг, третьего декабря"``; ``say_time(t, "ru")`` →
``"в девять часов тридцать минут"``; English uses the 12-hour clock people say
(``"at nine thirty a.m."``). Pure functions.
"""

from __future__ import annotations

from datetime import date, time

_RU_UNITS = ["ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять",
             "десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать",
             "шестнадцать", "семнадцать", "восемнадцать", "девятнадцать"]  # fmt: skip
_RU_TENS = {20: "двадцать", 30: "тридцать", 40: "сорок", 50: "пятьдесят"}
_RU_ORD_GEN = ["", "первого", "второго", "третьего", "четвёртого", "пятого", "шестого",
               "седьмого", "восьмого", "девятого", "десятого", "одиннадцатого", "двенадцатого",
               "тринадцатого", "четырнадцатого", "пятнадцатого", "шестнадцатого",
               "семнадцатого", "восемнадцатого", "девятнадцатого", "двадцатого"]  # fmt: skip
_RU_MONTH_GEN = ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                 "сентября", "октября", "ноября", "декабря"]  # fmt: skip
_RU_WEEKDAY_ACC = ["в понедельник", "во вторник", "в среду", "в четверг", "в пятницу",
                   "в субботу", "в воскресенье"]  # fmt: skip
_EN_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
             "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
             "eighteen", "nineteen"]  # fmt: skip
_EN_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty"}
_EN_ORD = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth",
           12: "twelfth", 20: "twentieth", 30: "thirtieth"}  # fmt: skip
_EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"]  # fmt: skip
_EN_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def ru_number(n: int, *, feminine: bool = False) -> str:
    """0–59 in words; ``feminine`` for minutes in the accusative (одну, две: «в … одну минуту»)."""
    if n < 20:
        word = _RU_UNITS[n]
    else:
        tens, unit = divmod(n, 10)
        word = _RU_TENS[tens * 10] + (" " + _RU_UNITS[unit] if unit else "")
    if feminine:
        word = word[:-4] + "одну" if word.endswith("один") else word
        word = word[:-3] + "две" if word.endswith("два") else word
    return word


def _ru_plural(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def ru_ordinal_genitive(day: int) -> str:
    """Day of the month 1–31 as said in a date: ``третьего``, ``двадцать первого``."""
    if day <= 20:
        return _RU_ORD_GEN[day]
    tens, unit = divmod(day, 10)
    if unit == 0:
        return "тридцатого"
    return _RU_TENS[tens * 10] + " " + _RU_ORD_GEN[unit]


def en_number(n: int) -> str:
    if n < 20:
        return _EN_UNITS[n]
    tens, unit = divmod(n, 10)
    return _EN_TENS[tens * 10] + ("-" + _EN_UNITS[unit] if unit else "")


def en_ordinal(n: int) -> str:
    if n in _EN_ORD:
        return _EN_ORD[n]
    if n > 20 and n % 10:
        return _EN_TENS[n - n % 10] + "-" + en_ordinal(n % 10)
    return en_number(n) + "th"


def say_date(d: date, lang: str) -> str:
    if lang == "en":
        return (
            f"on {_EN_WEEKDAYS[d.weekday()]}, the {en_ordinal(d.day)} of {_EN_MONTHS[d.month - 1]}"
        )
    return (
        f"{_RU_WEEKDAY_ACC[d.weekday()]}, {ru_ordinal_genitive(d.day)} {_RU_MONTH_GEN[d.month - 1]}"
    )


def say_time(t: time, lang: str) -> str:
    if lang == "en":
        hour12 = t.hour % 12 or 12
        half = "a.m." if t.hour < 12 else "p.m."
        if t.minute == 0:
            special = {0: "at midnight", 12: "at noon"}
            return special.get(t.hour, f"at {en_number(hour12)} o'clock {half}")
        minute = en_number(t.minute) if t.minute >= 10 else "oh " + en_number(t.minute)
        return f"at {en_number(hour12)} {minute} {half}"
    hours = f"{ru_number(t.hour)} {_ru_plural(t.hour, 'час', 'часа', 'часов')}"
    if t.hour == 1:
        hours = "час"  # «в час дня», not «в один час»
    if t.minute == 0:
        return f"в {hours} ровно" if t.hour != 1 else "в час ровно"
    minutes = (
        f"{ru_number(t.minute, feminine=True)} {_ru_plural(t.minute, 'минуту', 'минуты', 'минут')}"
    )
    return f"в {hours} {minutes}"
