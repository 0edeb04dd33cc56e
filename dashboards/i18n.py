"""Server-side labels (CSV headers, SVG charts) in Russian (default) and English.
The browser pages carry their own dictionaries (``static/i18n.js``)."""

from __future__ import annotations

LANGS = ("ru", "en")

LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "key": "Группа", "source": "Источник", "campaign": "Кампания", "did": "Номер (DID)",
        "clinic": "Клиника", "total": "Итого", "calls": "Звонки",
        "unique_callers": "Уникальные", "new_callers": "Новые", "returning_callers": "Повторные",
        "answered": "Отвечено", "missed": "Пропущено", "called_back": "Перезвонили",
        "reached": "Дозвонились", "booked": "Записались", "conversion": "Конверсия в запись",
        "came": "Пришли", "show_rate": "Доходимость", "answer_rate": "Доля отвеченных",
        "visit_known": "Визит известен", "needed": "Нужно операторов",
        "logged_in": "Было на линии", "heatmap": "Звонки по часам и дням недели",
        "missed_heatmap": "Пропущенные по часам и дням недели", "staffing": "Операторы по часам",
        "by_source": "Звонки и записи",
    },
    "en": {
        "key": "Group", "source": "Source", "campaign": "Campaign", "did": "Number (DID)",
        "clinic": "Clinic", "total": "Total", "calls": "Calls",
        "unique_callers": "Unique callers", "new_callers": "New", "returning_callers": "Returning",
        "answered": "Answered", "missed": "Missed", "called_back": "Called back",
        "reached": "Reached", "booked": "Booked", "conversion": "Booking conversion",
        "came": "Came", "show_rate": "Show rate", "answer_rate": "Answer rate",
        "visit_known": "Visit known", "needed": "Operators needed", "logged_in": "Logged in",
        "heatmap": "Calls by hour and weekday",
        "missed_heatmap": "Missed calls by hour and weekday",
        "staffing": "Operators per hour", "by_source": "Calls and bookings",
    },
}

WEEKDAYS = {"ru": ("Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"),
            "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}  # fmt: skip


def lang_of(requested: str | None, default: str) -> str:
    return requested if requested in LANGS else default


def label(lang: str, key: str) -> str:
    return LABELS.get(lang, LABELS["ru"]).get(key, key)
