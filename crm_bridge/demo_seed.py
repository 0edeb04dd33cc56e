"""Demo data for the embedded CRM: 3 clinics, doctors, ~300 patients with Russian names.

Patients come from ``crm_bridge/data/patients.csv``, generated from pbxsim's callers
(``pbxsim/data/patients.csv``: same numbers, names and clinics) plus CRM fields (birth date, VIP,
coordinator op101..op106, balance …); regenerate it with ``python -m crm_bridge write-demo-csv``.
Appointments and treatment plans are generated around "now" from a fixed random seed, so the
demo always has upcoming visits.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_bridge.validation import PatientInput, parse_patient

if TYPE_CHECKING:
    import asyncpg

DEMO_CSV = Path(__file__).parent / "data" / "patients.csv"
CSV_COLUMNS = (
    "external_id", "full_name", "birth_date", "phones", "language", "segment", "vip",
    "coordinator", "clinic", "notes", "balance", "prepayment_required",
)  # fmt: skip
PBXSIM_CSV = Path(__file__).resolve().parent.parent / "pbxsim" / "data" / "patients.csv"
CLINICS = (  # the names and keys of pbxsim/data/clinics.csv
    ("Клиника Север", "Москва, Дмитровское ш., 12"),
    ("Клиника Центр", "Москва, ул. Тверская, 20"),
    ("Клиника Юг", "Москва, Варшавское ш., 45"),
)
CLINIC_KEYS = {"north": CLINICS[0][0], "center": CLINICS[1][0], "south": CLINICS[2][0]}
SPECIALTIES = ("терапевт", "стоматолог-терапевт", "ортодонт", "хирург", "гигиенист", "педиатр")
DOCTORS = (
    ("Смирнова Елена Павловна", 0, ("терапевт",)),
    ("Кузнецов Андрей Игоревич", 0, ("хирург",)),
    ("Волкова Ирина Сергеевна", 0, ("ортодонт",)),
    ("Морозов Дмитрий Олегович", 0, ("стоматолог-терапевт", "гигиенист")),
    ("Лебедева Анна Викторовна", 1, ("педиатр",)),
    ("Козлов Сергей Николаевич", 1, ("терапевт",)),
    ("Новикова Мария Андреевна", 1, ("стоматолог-терапевт",)),
    ("Соколов Павел Евгеньевич", 1, ("хирург", "ортодонт")),
    ("Попова Татьяна Юрьевна", 2, ("гигиенист",)),
    ("Васильев Игорь Александрович", 2, ("терапевт", "педиатр")),
    ("Фёдорова Ольга Дмитриевна", 2, ("стоматолог-терапевт",)),
)
_SURNAMES = (
    "Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Васильев", "Соколов",
    "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов",
    "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров",
    "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев", "Романов",
)  # fmt: skip
_MALE = ("Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Иван", "Михаил",
         "Николай", "Владимир", "Павел", "Артём", "Егор", "Олег")  # fmt: skip
_FEMALE = ("Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана",
           "Екатерина", "Юлия", "Дарья", "Ксения", "Полина", "Виктория")  # fmt: skip
_PATRONYMICS = ("Александров", "Дмитриев", "Сергеев", "Андреев", "Алексеев", "Иванов",
                "Михайлов", "Николаев", "Владимиров", "Павлов", "Олегов", "Викторов")  # fmt: skip
_SERVICES = ("консультация", "лечение кариеса", "профгигиена", "профосмотр", "имплантация",
             "удаление зуба", "брекеты: коррекция", "рентген")  # fmt: skip
_PLAN_ITEMS = ("лечение кариеса 36", "имплантат 46", "коронка 46", "профгигиена",
               "пломба 24", "эндодонтия 15", "брекет-система: этап 2", "отбеливание")  # fmt: skip


def _name(rng: random.Random) -> str:
    surname, patronymic = rng.choice(_SURNAMES), rng.choice(_PATRONYMICS)
    if rng.random() < 0.55:
        return f"{surname}а {rng.choice(_FEMALE)} {patronymic}на"
    return f"{surname} {rng.choice(_MALE)} {patronymic}ич"


def read_pbxsim_callers(path: Path = PBXSIM_CSV) -> list[tuple[str, str, str]]:
    """(E.164 phone, full name, clinic name) of the callers pbxsim simulates."""
    with path.open(encoding="utf-8", newline="") as fh:
        return [
            ("+" + row["phone"].lstrip("+"), row["name"], CLINIC_KEYS.get(row["clinic"], ""))
            for row in csv.DictReader(fh)
        ]


def demo_patient_rows(
    callers: list[tuple[str, str, str]] | None = None, *, count: int = 300, seed: int = 2026
) -> list[dict[str, str]]:
    """The demo patients as CSV rows, deterministic for a seed.

    ``callers`` (phone, name, clinic) — normally ``read_pbxsim_callers()`` so the simulated
    calls come from known patients; without them, ``count`` random names and numbers.
    """
    rng = random.Random(seed)
    if callers is None:
        callers = [
            (f"+79{rng.randrange(10**9):09d}", _name(rng), rng.choice(CLINICS)[0])
            for _ in range(count)
        ]
    return [_extras(rng, i, phone, name, clinic) for i, (phone, name, clinic) in enumerate(callers)]


def _extras(rng: random.Random, i: int, phone: str, name: str, clinic: str) -> dict[str, str]:
    phones = [phone] + ([f"+7495{rng.randrange(10**7):07d}"] if rng.random() < 0.12 else [])
    debt = rng.choice((0, 0, 0, 0, 0, 1500, 4800, 12000))
    return {
        "external_id": f"demo-{i + 1:04d}",
        "full_name": name,
        "birth_date": (date(1950, 1, 1) + timedelta(days=rng.randrange(60 * 365))).isoformat(),
        "phones": ";".join(phones),
        "language": "en" if rng.random() < 0.03 else "ru",
        "segment": rng.choice(("new", "regular", "regular", "implant", "ortho", "kids")),
        "vip": "yes" if rng.random() < 0.06 else "no",
        "coordinator": f"PJSIP/op{rng.randint(101, 106)}" if rng.random() < 0.3 else "",
        "clinic": clinic,
        "notes": rng.choice(("", "", "", "аллергия на лидокаин", "предпочитает утро")),
        "balance": f"{debt}.00",
        "prepayment_required": "yes" if debt >= 10000 else "no",
    }


def demo_csv_text(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def load_demo_patients(path: Path = DEMO_CSV) -> list[PatientInput]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [parse_patient(row) for row in csv.DictReader(fh)]


@dataclass(frozen=True, slots=True)
class SeedReport:
    clinics: int
    doctors: int
    patients: int
    appointments: int
    plan_items: int


async def seed_demo(conn: asyncpg.Connection, *, now: datetime | None = None) -> SeedReport:
    """Fill empty embedded-CRM tables with the demo (one transaction). Does nothing when clinics
    already exist (returns zeros). Raises asyncpg errors (a CLI/demo helper, not a request path)."""
    if await conn.fetchval("SELECT count(*) FROM crm_clinics"):
        return SeedReport(0, 0, 0, 0, 0)
    rng = random.Random(7)
    now = now or datetime.now(UTC)
    async with conn.transaction():
        clinic_ids = await _seed_clinics(conn)
        doctor_ids = await _seed_doctors(conn, clinic_ids)
        patients = load_demo_patients()
        patient_ids = []
        for p in patients:
            patient_ids.append(await _insert_demo_patient(conn, p, clinic_ids))
        appointments = _appointments(rng, patient_ids, doctor_ids, now)
        await conn.copy_records_to_table(
            "crm_appointments",
            records=appointments,
            columns=("patient_id", "doctor_id", "clinic_id", "room", "starts_at", "status",
                     "service"),
        )  # fmt: skip
        items = await _seed_plans(conn, rng, patient_ids, now)
    return SeedReport(len(clinic_ids), len(doctor_ids), len(patient_ids), len(appointments), items)


async def _seed_clinics(conn: Any) -> dict[str, int]:
    ids = {}
    for name, address in CLINICS:
        ids[name] = await conn.fetchval(
            "INSERT INTO crm_clinics (name, address) VALUES ($1, $2) RETURNING id", name, address
        )
    for s in SPECIALTIES:
        await conn.execute("INSERT INTO crm_specialties (name) VALUES ($1)", s)
    return ids


async def _seed_doctors(conn: Any, clinic_ids: dict[str, int]) -> list[tuple[int, int]]:
    """Returns (doctor id, clinic id) pairs."""
    result = []
    for full_name, clinic, specialties in DOCTORS:
        clinic_id = clinic_ids[CLINICS[clinic][0]]
        doctor_id = await conn.fetchval(
            "INSERT INTO crm_doctors (clinic_id, full_name) VALUES ($1, $2) RETURNING id",
            clinic_id, full_name,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO crm_doctor_specialties (doctor_id, specialty_id)"
            " SELECT $1, id FROM crm_specialties WHERE name = ANY($2::text[])",
            doctor_id, list(specialties),
        )  # fmt: skip
        result.append((doctor_id, clinic_id))
    return result


async def _insert_demo_patient(conn: Any, p: PatientInput, clinic_ids: dict[str, int]) -> int:
    patient_id = await conn.fetchval(
        "INSERT INTO crm_patients (external_id, full_name, birth_date, language, segment, vip,"
        " coordinator, clinic_id, notes, balance, prepayment_required)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        p.external_id, p.full_name, p.birth_date, p.language, p.segment, p.vip, p.coordinator,
        clinic_ids.get(p.clinic), p.notes, p.balance, p.prepayment_required,
    )  # fmt: skip
    await conn.executemany(
        "INSERT INTO crm_patient_phones (phone, patient_id) VALUES ($1, $2)",
        [(ph, patient_id) for ph in p.phones],
    )
    return int(patient_id)


def _appointments(
    rng: random.Random, patient_ids: list[int], doctors: list[tuple[int, int]], now: datetime
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for pid in patient_ids:
        for _ in range(rng.randint(0, 3)):  # past visits
            at = today - timedelta(days=rng.randint(1, 400), hours=-rng.randint(6, 15))
            status = rng.choice(("came", "came", "came", "no_show", "cancelled"))
            rows.append(_appt(rng, pid, doctors, at, status))
        if rng.random() < 0.45:  # an upcoming visit
            at = today + timedelta(days=rng.randint(0, 21), hours=rng.randint(6, 15))
            at = max(at, now + timedelta(hours=1))
            rows.append(_appt(rng, pid, doctors, at, rng.choice(("booked", "confirmed"))))
    return rows


def _appt(
    rng: random.Random, pid: int, doctors: list[tuple[int, int]], at: datetime, status: str
) -> tuple[Any, ...]:
    doctor_id, clinic_id = rng.choice(doctors)
    room = f"{rng.randint(1, 3)}{rng.randint(1, 12):02d}"
    return (pid, doctor_id, clinic_id, room, at, status, rng.choice(_SERVICES))


async def _seed_plans(conn: Any, rng: random.Random, patient_ids: list[int], now: datetime) -> int:
    count = 0
    for pid in patient_ids:
        if rng.random() > 0.2:
            continue
        plan_id = await conn.fetchval(
            "INSERT INTO crm_treatment_plans (patient_id, title) VALUES ($1, $2) RETURNING id",
            pid, rng.choice(("План лечения", "Имплантация", "Ортодонтия")),
        )  # fmt: skip
        for item in rng.sample(_PLAN_ITEMS, rng.randint(1, 3)):
            await conn.execute(
                "INSERT INTO crm_treatment_plan_items (plan_id, description, status, price,"
                " planned_for) VALUES ($1, $2, $3, $4, $5)",
                plan_id, item, rng.choice(("planned", "planned", "done")),
                rng.choice((3500, 8900, 45000, 62000)),
                (now + timedelta(days=rng.randint(3, 90))).date(),
            )  # fmt: skip
            count += 1
    return count
