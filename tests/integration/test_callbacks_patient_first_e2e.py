"""Patient-first callbacks end to end: pbxsim (its own process) runs the
``[callbacks-patient-first]`` IVR — the patient presses 1 or not, per scenario — and then
``Dial(${CALLBACK_AGENT},${CALLBACK_RING})``; CallServer records each attempt's result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from tests.integration.test_callbacks_e2e import rows, stack
from tests.integration.test_end_to_end import wait_for

pytestmark = pytest.mark.integration
PATIENT_FIRST = {"CALLSERVER_CALLBACKS_DIALING": "patient_first",
                 "CALLSERVER_CALLBACKS_MAX_ATTEMPTS": "1"}  # fmt: skip


async def test_patient_first_press_1_reaches_the_operator_and_no_press_is_no_answer(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    async with stack("callbacks-patient-first", fresh_pg_dsn, redis_url, redis_prefix,
                     extra=PATIENT_FIRST):  # fmt: skip
        sql = "SELECT * FROM callback_jobs WHERE state = 'done' ORDER BY phone"
        jobs = await wait_for(
            lambda: _when(rows(fresh_pg_dsn, sql), lambda r: len(r) == 3), within=60.0
        )
    assert [(j["phone"], j["outcome"]) for j in jobs] == [
        ("+79035550101", "reached"), ("+79035550102", "max_attempts"),
        ("+79035550105", "max_attempts")]  # fmt: skip
    got = await rows(fresh_pg_dsn, "SELECT phone, operator, result, cause FROM callback_attempts "
                     "ORDER BY phone")  # fmt: skip
    assert [(r["phone"], r["operator"], r["result"], r["cause"]) for r in got] == [
        ("+79035550101", "PJSIP/op101", "answered", "ANSWER"),
        ("+79035550102", "PJSIP/op101", "no_answer", "patient did not confirm"),
        ("+79035550105", "PJSIP/op101", "busy", "reason 5"),
    ]


async def test_patient_first_operator_not_picking_up_is_operator_no_answer(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    extra = {**PATIENT_FIRST, "CALLSERVER_CALLBACKS_OPERATOR_RING_S": "4"}
    async with stack("callbacks-patient-first-nobody", fresh_pg_dsn, redis_url, redis_prefix,
                     extra=extra):  # fmt: skip
        sql = "SELECT * FROM callback_attempts WHERE state = 'done' ORDER BY started_at"
        first = (await wait_for(lambda: rows(fresh_pg_dsn, sql), within=60.0))[0]
        job = (await rows(fresh_pg_dsn, "SELECT * FROM callback_jobs"))[0]
    assert (first["phone"], first["operator"]) == ("+79035550103", "PJSIP/op101")
    assert (first["result"], first["cause"]) == ("operator_no_answer", "NOANSWER")
    # not the patient's fault: not counted, the job is retried
    assert job["attempts"] == 0 and job["outcome"] == ""


async def _when(
    fetch: Awaitable[list[asyncpg.Record]], pred: Callable[[list[asyncpg.Record]], bool]
) -> list[asyncpg.Record] | None:
    got = await fetch
    return got if pred(got) else None
