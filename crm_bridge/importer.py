"""CSV import into the embedded CRM: good rows are imported, each bad row reported with its line.

Files are UTF-8 (a BOM is fine), comma- or semicolon-separated (Excel in Russian locales writes
``;``), with a header row. The kind is detected from the header: ``full_name`` + ``phones`` →
patients, ``starts_at`` → appointments (columns in README.md). A row's failure never stops the
import; CrmUnavailable/CrmTimeout (the database is gone) does.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TextIO

from crm_bridge.errors import CrmRejected, CrmValidationError
from crm_bridge.validation import (
    AppointmentInput,
    PatientInput,
    parse_appointment,
    parse_patient,
)

Kind = Literal["patients", "appointments"]


class ImportTarget(Protocol):
    async def import_patient(self, p: PatientInput) -> int: ...

    async def import_appointment(self, a: AppointmentInput) -> int: ...


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class ImportReport:
    kind: str
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)


def detect_kind(header: Sequence[str]) -> Kind:
    """Raises CrmValidationError when the header fits neither kind."""
    names = set(header)
    if {"full_name", "phones"} <= names:
        return "patients"
    if "starts_at" in names:
        return "appointments"
    raise CrmValidationError(
        message="header: expected patients (full_name, phones, …) or appointments"
        " (starts_at, patient_external_id|patient_phone|patient_id, …) columns",
        field="header",
    )


def _dialect(first_line: str) -> str:
    return ";" if first_line.count(";") > first_line.count(",") else ","


async def import_csv(target: ImportTarget, fh: TextIO, kind: Kind | None = None) -> ImportReport:
    """Import every good row of ``fh``; raises CrmValidationError for an unusable header."""
    first = fh.readline()
    header = next(csv.reader([first], delimiter=_dialect(first)), [])
    header = [h.strip().lstrip("\ufeff").lower() for h in header]
    kind = kind or detect_kind(header)
    absent = [n for n in _REQUIRED[kind] if n not in header]
    if absent:
        raise CrmValidationError(message=f"header: missing {', '.join(absent)}", field="header")
    report = ImportReport(kind=kind)
    for start, values, problem in _rows(csv.reader(fh, delimiter=_dialect(first))):
        if problem:
            report.errors.append(RowError(start, problem))
        elif len(values) != len(header):
            reason = f"expected {len(header)} fields, got {len(values)}"
            report.errors.append(RowError(start, reason))
        else:
            await _import_row(target, kind, dict(zip(header, values, strict=True)), start, report)
    return report


_REQUIRED: dict[str, tuple[str, ...]] = {
    "patients": ("full_name", "phones"),
    "appointments": ("starts_at",),
}


def _rows(reader: Any) -> Iterator[tuple[int, list[str], str]]:
    """``(first line number, values, problem)`` for every non-blank row after the header."""
    end = 1
    while True:
        start = end + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num + 1
            yield start, [], f"unreadable CSV: {exc}"
            continue
        end = reader.line_num + 1
        if any(v.strip() for v in values):
            yield start, values, ""


async def _import_row(
    target: ImportTarget, kind: Kind, row: dict[str, str], line: int, report: ImportReport
) -> None:
    try:
        if kind == "patients":
            await target.import_patient(parse_patient(row))
        else:
            await target.import_appointment(parse_appointment(row))
    except (CrmValidationError, CrmRejected) as exc:
        report.errors.append(RowError(line, exc.message.replace("\n", " ")))
    else:
        report.imported += 1
