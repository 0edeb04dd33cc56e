"""Issue 9, defect 6: a CSV from Russian-locale Excel crashed the import.

A cp1251 (or UTF-16) file gave a raw ``UnicodeDecodeError`` traceback after importing part of the
file, with no report, and the files after it were skipped. Now the encoding is detected (or given
with ``--encoding``), every bad row is reported with its line, and no file stops the others.
The files are made here, byte for byte as Excel writes them.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from crm_bridge.embedded import EmbeddedCrm
from crm_bridge.embedded_admin import CrmAdmin
from crm_bridge.importer import decode_csv, detect_encoding, import_csv

ROWS = [
    ["external_id", "full_name", "phones", "notes"],
    ["e1", "Щукина Юлия Эдуардовна", "8 (916) 555-01-01", "ёлка, «кавычки» — тире"],
    ["e2", "Пётр Жуков", "+7 916 555-01-02", "№ 5"],
]


def excel_csv(encoding: str, delimiter: str = ";", rows: list[list[str]] = ROWS) -> bytes:
    """What Excel saves: CRLF lines, a field holding the delimiter quoted; ``utf-16`` writes a
    BOM (Excel's "Unicode text")."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    text = out.getvalue()
    if encoding == "utf-16-be-bom":
        return b"\xfe\xff" + text.encode("utf-16-be")
    return text.encode(encoding)


@pytest.mark.parametrize(
    ("encoding", "delimiter", "detected"),
    [
        ("cp1251", ";", "cp1251"),  # Excel "CSV (разделители — точка с запятой)", Russian locale
        ("utf-8-sig", ";", "utf-8-sig"),  # Excel "CSV UTF-8"
        ("utf-8", ",", "utf-8"),
        ("utf-16", "\t", "utf-16"),  # Excel "Unicode text": UTF-16 LE with a BOM, TABs
        ("utf-16-be-bom", ";", "utf-16"),
    ],
)
async def test_excel_files_of_every_encoding_import_alike(
    crm_pool: asyncpg.Pool, encoding: str, delimiter: str, detected: str
) -> None:
    data = excel_csv(encoding, delimiter)
    assert detect_encoding(data) == detected
    text, used = decode_csv(data)
    report = await import_csv(CrmAdmin(crm_pool), io.StringIO(text, newline=""), encoding=used)
    assert (report.kind, report.imported, report.errors, report.stopped) == ("patients", 2, [], "")
    card = await EmbeddedCrm(crm_pool).lookup("+79165550101")
    assert card is not None and card.full_name == "Щукина Юлия Эдуардовна"
    assert card.notes == "ёлка, «кавычки» — тире"


async def test_bytes_the_encoding_cannot_read_make_their_row_bad_not_the_file(
    crm_pool: asyncpg.Pool,
) -> None:
    data = excel_csv("utf-8") + "e3;Иванов\udcff;+79165550103;\r\n".encode(
        "utf-8", "surrogateescape"
    )
    data += excel_csv("utf-8", rows=[["e4", "Орлова", "+79165550104", "ok"]])
    text, used = decode_csv(data)
    assert used == "utf-8"  # mostly UTF-8: one broken byte does not make it cp1251
    report = await import_csv(CrmAdmin(crm_pool), io.StringIO(text, newline=""), encoding=used)
    assert report.imported == 3
    assert [(e.line, e.reason) for e in report.errors] == [
        (4, "byte 0xff is not text in this file's encoding"),
    ]


def _run(dsn: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_bridge", "import-csv", "--dsn", dsn, *map(str, args)],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip


def test_the_command_reports_each_file_and_never_skips_the_rest(
    tmp_path: Path, fresh_pg_dsn: str
) -> None:
    cp1251 = tmp_path / "excel.csv"
    cp1251.write_bytes(excel_csv("cp1251") + "e5;Без телефона;;\r\n".encode("cp1251"))
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xff\xfe" + "full_name;phones\r\n".encode("utf-16-le") + b"\x41")
    later = tmp_path / "later.csv"
    later.write_bytes(excel_csv("utf-8", rows=[ROWS[0], ["e6", "Лаптева", "+79165550106", ""]]))
    proc = _run(fresh_pg_dsn, cp1251, broken, later)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    out = proc.stdout.splitlines()
    assert f"{cp1251}: patients (cp1251): 2 imported, 1 bad" in out
    assert f"{cp1251}:4: phones: at least one phone number is required" in proc.stderr
    assert f"{broken}: not imported: encoding: not utf-16 text" in proc.stderr
    assert f"{later}: patients (utf-8): 1 imported, 0 bad" in out


def test_the_encoding_can_be_named(tmp_path: Path, fresh_pg_dsn: str) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(excel_csv("cp1251"))
    proc = _run(fresh_pg_dsn, "--encoding", "cp1251", path)
    assert proc.returncode == 0, proc.stderr
    assert f"{path}: patients (cp1251): 2 imported, 0 bad" in proc.stdout
    proc = _run(fresh_pg_dsn, "--encoding", "koi8-r", path)
    assert proc.returncode == 2 and "invalid choice: 'koi8-r'" in proc.stderr
