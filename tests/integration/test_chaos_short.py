"""The fault harness's short form (issue 9): a minute of traffic while AMI is cut mid-call,
PostgreSQL and Redis go down, the REST CRM refuses, and callserver is killed with ``kill -9``
and restarted; then every call is reconciled against pbxsim's ledger, and must be right."""

from __future__ import annotations

import pytest

from devtools.chaos import Fault, Plan, run_chaos
from devtools.services import Services

SHORT = Plan(
    rate=4.0,
    seconds=60.0,
    faults=(
        Fault(8.0, "ami", 3.0),
        Fault(14.0, "ari", 3.0),
        Fault(18.0, "postgres", 10.0),
        Fault(30.0, "redis", 10.0),
        Fault(36.0, "crm", 15.0),
        Fault(44.0, "kill", 5.0),
    ),
    drain_timeout=90.0,
)


@pytest.mark.timeout(300)
async def test_short_chaos_run_reconciles_to_zero(services: Services) -> None:
    log: list[str] = []
    out = await run_chaos(SHORT, services, log.append)
    report = out.report
    assert report.calls > 100, report.summary()
    assert report.ok, "\n".join([report.summary(), *report.problems(), *log])
    assert out.rss_max_mb < 300
