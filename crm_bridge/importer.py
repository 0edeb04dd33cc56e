"""CSV import into the embedded CRM: good rows are imported, each bad row reported with its line.

Files come from Excel as often as not: ``decode_csv`` takes UTF-8 (with or without a BOM),
UTF-16 LE/BE with a BOM (Excel's "Unicode text"), and cp1251 (Excel's "CSV" in Russian locales,
no BOM), detected or named (``--encoding``); bytes the encoding cannot read make their row a bad
row, never a crash. Comma-, semicolon- (Excel in Russian locales) or tab-separated, with a header
row. The kind is detected from the header: ``full_name`` + ``phones`` → patients, ``starts_at``
→ appointments (columns in README.md). A row's failure never stops the import; when the database
goes away (CrmUnavailable/CrmTimeout) the import stops and ``ImportReport.stopped`` says at which
line (the rows before it are imported).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TextIO

from crm_bridge.errors import CrmError, CrmRejected, CrmValidationError
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
    stopped: str = ""
    """Why the import stopped before the end (``line N: …``), or empty when it read it all."""
    encoding: str = ""


ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1251")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),  # the "utf-16" codec reads the BOM and drops it
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(data: bytes) -> str:
    """The encoding of a CSV file's bytes: a BOM decides (UTF-8, UTF-16 LE/BE); else UTF-8
    when most non-ASCII bytes form valid UTF-8 (a few broken bytes become bad rows), else
    cp1251 (what Excel writes in Russian locales)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    text = data.decode("utf-8", "surrogateescape")
    broken = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    if broken == 0 or sum(1 for ch in text if ch > "\x7f") > 2 * broken:
        return "utf-8"
    return "cp1251"


def decode_csv(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """``(text, encoding)``: ``data`` decoded with ``encoding`` (one of ``ENCODINGS``) or the
    detected one. Bytes it cannot decode become U+DC80..U+DCFF (``surrogateescape``), so their
    rows are reported bad by ``import_csv``. Raises CrmValidationError (field ``encoding``) for
    an unknown encoding or text that cannot be split into characters at all (odd UTF-16)."""
    name = encoding or detect_encoding(data)
    if name not in ENCODINGS:
        raise CrmValidationError(message=f"encoding: expected one of {', '.join(ENCODINGS)},"
                                 f" got {name!r}", field="encoding")  # fmt: skip
    try:
        return data.decode(name, "surrogateescape"), name
    except UnicodeDecodeError as exc:
        raise CrmValidationError(
            message=f"encoding: not {name} text (byte {exc.start}: {exc.reason})", field="encoding"
        ) from None


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
    """The delimiter the header uses most: ``,`` (ties), ``;`` (Excel, Russian locale) or TAB
    (Excel's "Unicode text")."""
    return max((",", ";", "\t"), key=first_line.count)


def _undecodable(values: Sequence[str]) -> str:
    """Why a row holds bytes its file's encoding could not read, or ''."""
    for value in values:
        for ch in value:
            if "\udc80" <= ch <= "\udcff":
                return f"byte 0x{ord(ch) - 0xDC00:02x} is not text in this file's encoding"
    return ""


async def import_csv(
    target: ImportTarget, fh: TextIO, kind: Kind | None = None, *, encoding: str = ""
) -> ImportReport:
    """Import every good row of ``fh`` (``encoding``: what it was decoded from, for the report).
    Raises CrmValidationError for an unusable header; a database that goes away ends the import
    with ``report.stopped`` set (the rows before it are imported)."""
    first = fh.readline()
    delimiter = _dialect(first)
    header = next(csv.reader([first], delimiter=delimiter), [])
    header = [h.strip().lstrip("\ufeff").lower() for h in header]
    if (problem := _undecodable(header)) or (problem := _header_problem(header, kind)):
        raise CrmValidationError(message=f"header: {problem}", field="header")
    kind = kind or detect_kind(header)
    report = ImportReport(kind=kind, encoding=encoding)
    for start, values, problem in _rows(csv.reader(fh, delimiter=delimiter)):
        problem = problem or _undecodable(values)
        if not problem and len(values) != len(header):
            problem = f"expected {len(header)} fields, got {len(values)}"
        if problem:
            report.errors.append(RowError(start, problem))
            continue
        try:
            await _import_row(target, kind, dict(zip(header, values, strict=True)), start, report)
        except CrmError as exc:  # the database went away (or failed oddly): say where
            report.stopped = f"line {start}: {exc.message}"
            break
    return report


def _header_problem(header: list[str], kind: Kind | None) -> str:
    absent = [n for n in _REQUIRED[kind or detect_kind(header)] if n not in header]
    return f"missing {', '.join(absent)}" if absent else ""


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
