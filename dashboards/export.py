"""CSV exports of the reports (UTF-8 with BOM so spreadsheet programs read Cyrillic; ``;``
separated, as Russian-locale spreadsheets expect). Cells that a spreadsheet would run as a
formula (``=``, ``+``, ``-``, ``@`` …) get a leading apostrophe, except plain phone numbers."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from dashboards.i18n import label

PHONE = re.compile(r"^\+\d{6,15}$")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

MARKETER_COLUMNS = ("key", "calls", "unique_callers", "new_callers", "returning_callers",
                    "answered", "missed", "called_back", "reached", "booked", "conversion",
                    "came", "show_rate")  # fmt: skip
OPERATOR_COLUMNS = ("agent", "name", "handled", "asa", "aht", "missed", "callers", "booked",
                    "conversion", "callbacks", "callbacks_on_time", "on_time_rate")  # fmt: skip
STAFFING_COLUMNS = ("dow", "hour", "calls_per_hour", "aht", "erlangs", "needed", "logged_in",
                    "expected_sl", "short")  # fmt: skip


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_START) and not PHONE.match(text):
        return "'" + text
    return text


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]], lang: str,
           headers: dict[str, str] | None = None) -> bytes:  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([(headers or {}).get(c) or label(lang, c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def marketer_csv(report: dict[str, Any], lang: str) -> bytes:
    total = dict(report["total"], key=label(lang, "total"))
    return to_csv(MARKETER_COLUMNS, [*report["rows"], total], lang,
                  {"key": label(lang, report["by"])})  # fmt: skip
