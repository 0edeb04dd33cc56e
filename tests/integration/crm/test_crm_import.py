"""CSV import: good rows land, each bad row is reported with its line number and reason."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from crm_bridge.embedded import EmbeddedCrm
from crm_bridge.embedded_admin import CrmAdmin
from crm_bridge.importer import import_csv

PATIENTS = """\ufeffexternal_id;full_name;birth_date;phones;vip;coordinator;balance
p1;Иванов Иван Иванович;02.03.1980;8 (916) 123-45-67, +7 495 111-22-33;да;PJSIP/op101;1 500,50
p2;;1990-01-01;+79160000002;no;;0
p3;Петрова Анна;1990-13-01;+79160000003;no;;0
p4;Сидоров Пётр;;12345;no;;0
p5;Орлова Ольга;;+79160000005;maybe;;0

p6;Козлов Игорь;;+79160000006;no;op102;0
p7;"Многострочная
Запись";;+79160000007;no;;0
p8;Лишнее Поле;;+79160000008;no;;0;extra
p9;Зайцева Мария;1975-05-05;+79160000009;no;;abc
p10;Егоров Егор;;+79160000010;yes;;250
"""

APPOINTMENTS = """external_id,patient_external_id,patient_phone,starts_at,status,room
a1,p1,,2030-01-10T09:30:00+03:00,booked,101
a2,,+79160000010,2030-01-11 10:00+03:00,confirmed,102
a3,p404,,2030-01-12T10:00:00+03:00,booked,103
a4,p1,,2030-01-12T10:00:00,booked,103
a5,p1,,2030-01-12T10:00:00+03:00,postponed,103
"""


async def test_import_reports_bad_rows_with_line_and_reason(crm_pool: asyncpg.Pool) -> None:
    admin = CrmAdmin(crm_pool)
    report = await import_csv(admin, io.StringIO(PATIENTS))
    assert report.kind == "patients" and report.imported == 2
    reasons = {e.line: e.reason for e in report.errors}
    assert sorted(reasons) == [3, 4, 5, 6, 8, 9, 11, 12]
    assert reasons[3].startswith("full_name: required")
    assert reasons[4].startswith("birth_date")
    assert reasons[5].startswith("phones: '12345'")
    assert reasons[6].startswith("vip")
    assert reasons[8].startswith("coordinator")
    assert reasons[9].startswith("full_name: line breaks")  # a quoted field across lines 9-10
    assert reasons[11] == "expected 7 fields, got 8"
    assert reasons[12].startswith("balance")
    card = await EmbeddedCrm(crm_pool).lookup("+74951112233")
    assert card is not None and card.full_name == "Иванов Иван Иванович" and card.vip
    assert str(card.balance) == "1500.50" and card.coordinator == "PJSIP/op101"
    appts = await import_csv(admin, io.StringIO(APPOINTMENTS))
    assert appts.kind == "appointments" and appts.imported == 2
    assert [(e.line, e.reason.split(":")[0]) for e in appts.errors] == [
        (4, "patient"), (5, "starts_at"), (6, "status"),
    ]  # fmt: skip
    card = await EmbeddedCrm(crm_pool).lookup("+79161234567")
    assert card is not None and card.next_appointment is not None
    assert card.next_appointment.room == "101"
    again = await import_csv(admin, io.StringIO(PATIENTS))  # re-import updates, no duplicates
    assert again.imported == 2
    async with crm_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM crm_patients") == 2
        assert await conn.fetchval("SELECT count(*) FROM crm_appointments") == 2


def test_import_csv_command(tmp_path: Path, fresh_pg_dsn: str) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(PATIENTS, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "crm_bridge", "import-csv", "--dsn", fresh_pg_dsn, str(path)],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "2 imported, 8 bad" in proc.stdout
    assert f"{path}:5: phones: '12345'" in proc.stderr
