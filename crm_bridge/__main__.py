"""``python -m crm_bridge``: CSV import, demo seed, demo CSV.

  import-csv --dsn DSN [--kind patients|appointments] [--encoding E] FILE…
                                     import good rows, report bad ones (encoding detected:
                                     UTF-8 ± BOM, UTF-16 with BOM, else cp1251)
  seed-demo --dsn DSN                                        migrate crm tables + demo data
  write-demo-csv [--out PATH] [--callers pbxsim/data/patients.csv]  regenerate data/patients.csv

Exit status: 0 all rows imported, 1 some rows rejected (the good ones are imported), 2 a file
could not be imported or stopped midway (each says so; the other files are still imported).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path

import asyncpg

from callserver.store.migrate import MigrationSource, apply_migrations
from crm_bridge.demo_seed import (
    DEMO_CSV,
    PBXSIM_CSV,
    demo_csv_text,
    demo_patient_rows,
    read_pbxsim_callers,
    seed_demo,
)
from crm_bridge.embedded_admin import CrmAdmin
from crm_bridge.errors import CrmError
from crm_bridge.importer import ENCODINGS, Kind, decode_csv, import_csv

MIGRATIONS = [MigrationSource("crm_bridge", Path(__file__).parent / "migrations")]


async def _migrate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await apply_migrations(conn, MIGRATIONS)
    finally:
        await conn.close()


async def _import(dsn: str, files: list[Path], kind: Kind | None, encoding: str | None) -> int:
    await _migrate(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, timeout=10)
    assert pool is not None
    status = 0
    try:
        admin = CrmAdmin(pool)
        for path in files:  # one file's failure never skips the files after it
            status = max(status, await _import_file(admin, path, kind, encoding))
    finally:
        await pool.close()
    return status


async def _import_file(admin: CrmAdmin, path: Path, kind: Kind | None, encoding: str | None) -> int:
    """Import one file, print its report; returns its exit status (0, 1 bad rows, 2 failed)."""
    try:
        text, used = decode_csv(await asyncio.to_thread(path.read_bytes), encoding)
        report = await import_csv(admin, io.StringIO(text, newline=""), kind, encoding=used)
    except (CrmError, OSError) as exc:
        print(f"{path}: not imported: {exc}", file=sys.stderr)
        return 2
    for err in report.errors:
        print(f"{path}:{err.line}: {err.reason}", file=sys.stderr)
    summary = f"{report.imported} imported, {len(report.errors)} bad"
    if report.stopped:
        print(f"{path}:{report.stopped.removeprefix('line ')}", file=sys.stderr)
        summary += f", STOPPED at {report.stopped}"
    print(f"{path}: {report.kind} ({report.encoding}): {summary}")
    return 2 if report.stopped else 1 if report.errors else 0


async def _seed(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await apply_migrations(conn, MIGRATIONS)
        r = await seed_demo(conn)
    finally:
        await conn.close()
    print(
        f"demo CRM: {r.clinics} clinics, {r.doctors} doctors, {r.patients} patients,"
        f" {r.appointments} appointments, {r.plan_items} plan items"
        if r.patients
        else "demo CRM: already seeded, nothing changed"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_bridge")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import-csv", help="import patients.csv / appointments.csv")
    imp.add_argument("--dsn", required=True)
    imp.add_argument("--kind", choices=("patients", "appointments"))
    imp.add_argument(
        "--encoding",
        choices=ENCODINGS,
        help="the files' encoding (default: detected; UTF-8 with/without BOM, UTF-16 with BOM,"
        " else cp1251 as Excel writes it in Russian locales)",
    )
    imp.add_argument("files", nargs="+", type=Path)
    seed = sub.add_parser("seed-demo", help="create the embedded CRM tables and demo data")
    seed.add_argument("--dsn", required=True)
    demo = sub.add_parser("write-demo-csv", help="regenerate the demo patients CSV")
    demo.add_argument("--out", type=Path, default=DEMO_CSV)
    demo.add_argument("--callers", type=Path, default=PBXSIM_CSV, help="pbxsim's patients.csv")
    args = parser.parse_args(argv)
    try:
        if args.command == "import-csv":
            return asyncio.run(_import(args.dsn, args.files, args.kind, args.encoding))
        if args.command == "seed-demo":
            return asyncio.run(_seed(args.dsn))
        callers = read_pbxsim_callers(args.callers) if args.callers.exists() else None
        args.out.write_text(demo_csv_text(demo_patient_rows(callers)), encoding="utf-8")
        print(f"wrote {args.out}")
        return 0
    except (CrmError, OSError, asyncpg.PostgresError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
