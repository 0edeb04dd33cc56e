"""The fault harness at full size: a day of traffic (≥ 20 calls/s, ≥ 5 minutes) while AMI and
ARI are cut mid-call, PostgreSQL and Redis go down for 30 s, the REST CRM for 2 minutes,
callserver is killed with ``kill -9`` and restarted, and a burst of 20,000 calls arrives in one
minute; then every call is reconciled against pbxsim's ledger (devtools/chaos.py,
devtools/reconcile.py). Prints each problem found, then the summary.

Usage: .venv/bin/python bench/chaos.py [--rate 20] [--seconds 300] [--burst-calls 20000]
Last line: ``chaos calls=… faults=… lost=… duplicated=… stuck_open=… wrong_fields=…
crm_missing=… crm_duplicated=… rss_max_mb=…`` (budget: every count 0, RSS ≤ 300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.chaos import Fault, Plan, run_chaos
from devtools.services import ensure_services


def plan(rate: float, seconds: float, burst_calls: int) -> Plan:
    s = seconds
    faults = (
        Fault(0.10 * s, "ami", 5.0),
        Fault(0.17 * s, "ari", 5.0),
        Fault(0.25 * s, "postgres", 30.0),
        Fault(0.40 * s, "redis", 30.0),
        Fault(0.52 * s, "crm", 120.0),
        Fault(0.60 * s, "kill", 10.0),
    )
    bursts = ((0.80 * s, 60.0, burst_calls / 60.0),) if burst_calls else ()
    return Plan(rate=rate, seconds=seconds, faults=faults, bursts=bursts, drain_timeout=600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--burst-calls", type=int, default=20_000)
    args = ap.parse_args()
    svc = ensure_services()
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {line}", flush=True)

    try:
        out = asyncio.run(run_chaos(plan(args.rate, args.seconds, args.burst_calls), svc, log))
    finally:
        svc.stop()
    for line in out.report.problems():
        print(line)
    r = out.report
    print(f"CRM redeliveries of a record it already had (answered 409, harmless): "
          f"{out.crm_redelivered}")  # fmt: skip
    print(f"chaos calls={r.calls} faults={out.faults} lost={len(r.lost)} "
          f"duplicated={len(r.duplicated)} stuck_open={len(r.stuck_open)} "
          f"wrong_fields={len(r.wrong_fields)} crm_missing={len(r.crm_missing)} "
          f"crm_duplicated={len(r.crm_duplicated)} rss_max_mb={out.rss_max_mb:.0f}")


if __name__ == "__main__":
    main()
