"""Table-driven tests of the pure routing policy: each rule, conflicts, precedence, holidays,
time zones, sticky fallback, overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from routing.models import (
    CallerProfile,
    LiveSnapshot,
    Mode,
    Override,
    ProfileStatus,
    QueueLive,
    RouteRequest,
    Scope,
)
from routing.policy import PolicyInputs, decide, safe_default
from routing.rules import RuleSet, parse_rules

RULES = parse_rules(
    """
version = "t1"
[defaults]
queue = "reception"
language = "ru"
languages = ["ru", "en"]
clinic = "msk"
[queues.reception]
overflow_wait_s = 60
overflow_mode = "bot"
empty_mode = "bot"
[queues.doctors]
priority = 1
overflow_wait_s = 120
overflow_mode = "callback"
empty_mode = "callback"
[skills.therapy]
digits = "1"
queue = "doctors"
[skills.surgery]
digits = "2"
queue = "doctors"
priority = 2
[skills.billing]
digits = "5"
queue = "reception"
[campaigns.implants]
source = "source-a"
paid = true
[campaigns.site]
source = "site"
[dids.74951234567]
campaign = "implants"
[dids.74957654321]
source = "source-b"
queue = "doctors"
[dids.73832001122]
source = "nsk"
clinic = "nsk"
[clinics.msk]
timezone = "Europe/Moscow"
holidays = ["2027-01-01"]
after_hours_mode = "voicemail"
holiday_mode = "bot"
[clinics.msk.hours]
mon = "08:00-20:00"
tue = "08:00-20:00"
wed = "08:00-20:00"
thu = "08:00-20:00"
fri = "08:00-20:00"
sat = "10:00-16:00"
sun = "closed"
[clinics.msk.dates]
"2026-12-30" = "09:00-15:00"
[clinics.nsk]
timezone = "Asia/Novosibirsk"
after_hours_mode = "bot"
[clinics.nsk.hours]
mon = "08:00-13:00,14:00-20:00"
[priority]
vip = 10
paid = 5
known = 1
[priority.segments]
implant-plan = 3
[sticky]
coordinator_seconds = 20
last_operator_seconds = 12
skip_skills = ["billing"]
[prepayment]
skill = "billing"
"""
)

# Monday 2026-11-23 12:00 Moscow (UTC+3) = 09:00 UTC: open everywhere.
OPEN = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OP1, OP2, OP3 = "PJSIP/op101", "PJSIP/op102", "PJSIP/op103"
BUSY_LIVE = LiveSnapshot(
    {
        "reception": QueueLive(frozenset({OP1, OP2}), frozenset({OP2}), 10.0),
        "doctors": QueueLive(frozenset({OP2, OP3}), frozenset({OP3}), 30.0),
    }
)
PATIENT = CallerProfile(patient_id="p1", coordinator=OP3, last_operator=OP2)


@dataclass
class Case:
    name: str
    request: RouteRequest = field(default_factory=lambda: RouteRequest("u1", did="74957654321"))
    profile: CallerProfile | None = None
    live: LiveSnapshot | None = BUSY_LIVE
    now: datetime = OPEN
    overrides: tuple[Override, ...] = ()
    status: ProfileStatus = "unknown"
    # expectations (None = don't care)
    queue: str | None = None
    mode: Mode | None = None
    priority: int | None = None
    agent: str | None = None
    sticky: int | None = None
    language: str | None = None
    has: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()


def req(**kw: str) -> RouteRequest:
    kw.setdefault("did", "74957654321")
    return RouteRequest("u1", **kw)  # type: ignore[arg-type]


def ov(
    scope: Scope, value: str, *, minutes: int = 30, age: int = 1, at: datetime = OPEN, **kw: object
) -> Override:
    created = at - timedelta(minutes=age)
    return Override(
        id=f"o{scope}{age}",
        scope=scope,
        value=value,
        created_at=created,
        expires_at=created + timedelta(minutes=minutes),
        created_by="sup",
        **kw,  # type: ignore[arg-type]
    )


def moscow(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return (
        datetime(y, mo, d, h - 3, mi, tzinfo=UTC)
        if h >= 3
        else datetime(y, mo, d - 1, h + 21, mi, tzinfo=UTC)
    )


CASES = [
    # ---- targets
    Case("did queue", queue="doctors", mode="queue", priority=1, has=("did_queue",)),
    Case(
        "default queue", request=req(did="70000000000"), queue="reception", has=("default_queue",)
    ),
    Case(
        "ivr digits pick skill",
        request=req(ivr_digits="2"),
        queue="doctors",
        priority=3,
        has=("ivr:surgery",),
        lacks=("did_queue",),
    ),
    Case(
        "unknown ivr digits fall back",
        request=req(ivr_digits="9"),
        queue="doctors",
        has=("ivr_unknown", "did_queue"),
    ),
    Case(
        "prepayment patient to billing",
        profile=CallerProfile("p9", prepayment_required=True),
        queue="reception",
        has=("prepayment", "sticky_skipped_skill"),
    ),
    Case(
        "ivr choice beats prepayment",
        request=req(ivr_digits="1"),
        profile=CallerProfile("p9", prepayment_required=True),
        queue="doctors",
        lacks=("prepayment",),
    ),
    # ---- tracking and priority
    Case(
        "paid ad call prioritised",
        request=req(did="74951234567"),
        queue="reception",
        priority=5,
        has=("paid", "default_queue"),
    ),
    Case(
        "campaign hint beats did",
        request=req(did="74951234567", campaign_hint="site"),
        priority=0,
        lacks=("paid",),
    ),
    Case(
        "vip + paid + known + segment add up",
        request=req(did="74951234567"),
        profile=CallerProfile("p2", vip=True, segment="implant-plan"),
        priority=19,
        has=("vip", "paid", "known_patient", "segment:implant-plan"),
    ),
    Case(
        "profile without id is unknown",
        profile=CallerProfile(""),
        priority=1,
        lacks=("known_patient",),
    ),
    # ---- language
    Case("patient language", profile=CallerProfile("p3", language="en"), language="en"),
    Case(
        "unsupported patient language → channel",
        request=req(channel_language="en"),
        profile=CallerProfile("p3", language="de"),
        language="en",
    ),
    Case("default language", request=req(channel_language="fr"), language="ru"),
    # ---- sticky
    Case(
        "coordinator free → sticky 20 s",
        profile=PATIENT,
        agent=OP3,
        sticky=20,
        has=("sticky:coordinator",),
    ),
    Case(
        "coordinator busy → last operator 12 s",
        profile=CallerProfile("p1", coordinator=OP1, last_operator=OP2),
        agent=OP2,
        sticky=12,
        has=("coordinator_unavailable", "sticky:last_operator"),
    ),
    Case(
        "both unavailable → queue only",
        profile=CallerProfile("p1", coordinator=OP1, last_operator="PJSIP/op999"),
        agent="",
        sticky=0,
        has=("coordinator_unavailable", "last_operator_unavailable"),
    ),
    Case(
        "live unknown → still try coordinator",
        profile=PATIENT,
        live=None,
        agent=OP3,
        sticky=20,
        has=("live_unknown",),
    ),
    Case(
        "live unknown → a trunk dial string from the CRM is never tried",
        profile=CallerProfile("p1", coordinator="PJSIP/79990000000@trunk", last_operator=OP2),
        live=None,
        agent=OP2,
        sticky=12,
        has=("coordinator_unverified", "sticky:last_operator"),
    ),
    Case(
        "unsafe agent string ignored",
        profile=CallerProfile("p1", coordinator="PJSIP/op1\nHANGUP", last_operator=OP2),
        agent=OP2,
        sticky=12,
    ),
    Case(
        "billing skill skips sticky",
        request=req(ivr_digits="5"),
        profile=PATIENT,
        agent="",
        has=("sticky_skipped_skill",),
    ),
    # ---- hours, holidays, time zones
    Case(
        "after hours → voicemail, sticky cleared",
        profile=PATIENT,
        now=moscow(2026, 11, 23, 20, 0),
        mode="voicemail",
        agent="",
        sticky=0,
        has=("after_hours",),
    ),
    Case("open at 19:59 Moscow", now=moscow(2026, 11, 23, 19, 59), mode="queue"),
    Case("sunday closed", now=moscow(2026, 11, 22, 12), mode="voicemail"),
    Case("holiday → bot", now=moscow(2027, 1, 1, 12), mode="bot", has=("holiday",)),
    Case("short day open at 14:59", now=moscow(2026, 12, 30, 14, 59), mode="queue"),
    Case("short day closed at 15:00", now=moscow(2026, 12, 30, 15, 0), mode="voicemail"),
    Case(
        "novosibirsk lunch break (UTC+7)",
        request=req(did="73832001122"),
        now=datetime(2026, 11, 23, 6, 30, tzinfo=UTC),
        mode="bot",
        has=("after_hours",),
    ),
    Case(
        "novosibirsk open 08:30 local while Moscow is 04:30",
        request=req(did="73832001122"),
        now=datetime(2026, 11, 23, 1, 30, tzinfo=UTC),
        mode="queue",
    ),
    # ---- overflow
    Case(
        "nobody logged in → empty mode", live=LiveSnapshot({}), mode="callback", has=("no_agents",)
    ),
    Case(
        "wait above threshold → overflow",
        request=req(did="70000000000"),
        live=LiveSnapshot({"reception": QueueLive(frozenset({OP1}), frozenset(), 61.0)}),
        mode="bot",
        has=("overflow_wait",),
    ),
    Case(
        "wait at threshold stays",
        request=req(did="70000000000"),
        live=LiveSnapshot({"reception": QueueLive(frozenset({OP1}), frozenset(), 60.0)}),
        mode="queue",
    ),
    Case(
        "vip skips wait overflow",
        request=req(did="70000000000"),
        profile=CallerProfile("v", vip=True),
        live=LiveSnapshot({"reception": QueueLive(frozenset({OP1}), frozenset(), 600.0)}),
        mode="queue",
        has=("overflow_skipped_vip",),
    ),
    Case(
        "after hours beats overflow",
        live=LiveSnapshot({}),
        now=moscow(2026, 11, 23, 22),
        mode="voicemail",
        lacks=("no_agents",),
    ),
    # ---- overrides
    Case(
        "queue override → bot",
        overrides=(ov("queue", "doctors", mode="bot"),),
        mode="bot",
        has=("override:oqueue1",),
    ),
    Case(
        "override for another queue ignored",
        overrides=(ov("queue", "reception", mode="bot"),),
        mode="queue",
        lacks=("override:oqueue1",),
    ),
    Case(
        "expired override ignored",
        overrides=(ov("all", "", minutes=30, age=31, mode="voicemail"),),
        mode="queue",
    ),
    Case(
        "override beats after hours",
        now=moscow(2026, 11, 23, 22),
        overrides=(ov("all", "", mode="queue", at=moscow(2026, 11, 23, 22)),),
        mode="queue",
        has=("after_hours", "override:oall1"),
    ),
    Case(
        "did override beats newer all override",
        overrides=(
            ov("all", "", mode="bot", age=1),
            ov("did", "74957654321", mode="callback", age=5),
        ),
        mode="callback",
        has=("override:odid5",),
    ),
    Case(
        "newest of equal scope wins",
        overrides=(ov("all", "", mode="bot", age=5), ov("all", "", mode="voicemail", age=2)),
        mode="voicemail",
    ),
    Case(
        "override queue + priority",
        overrides=(ov("skill", "therapy", queue="reception", priority=7),),
        request=req(ivr_digits="1"),
        queue="reception",
        priority=7,
    ),
    Case(
        "override to an unknown queue is ignored",
        overrides=(ov("all", "", queue="nowhere"),),
        queue="doctors",
        has=("override_ignored:oall1",),
    ),
    Case(
        "override to bot clears sticky",
        profile=PATIENT,
        overrides=(ov("all", "", mode="bot"),),
        agent="",
        sticky=0,
    ),
    # bug: overflow was judged on the queue the override moved the call away from
    Case(
        "override moving an empty queue's calls to a staffed one queues them there",
        live=LiveSnapshot({"reception": BUSY_LIVE.queues["reception"]}),
        overrides=(ov("queue", "doctors", queue="reception"),),
        queue="reception",
        mode="queue",
        lacks=("no_agents",),
        has=("override:oqueue1",),
    ),
    Case(
        "override moving calls to an empty queue applies that queue's empty_mode",
        live=LiveSnapshot({"doctors": BUSY_LIVE.queues["doctors"]}),
        overrides=(ov("queue", "doctors", queue="reception"),),
        queue="reception",
        mode="bot",
        has=("no_agents", "override:oqueue1"),
    ),
    # ---- lookup status
    Case("crm timeout still routes", status="timeout", queue="doctors", has=("crm_timeout",)),
    Case("anonymous caller", status="anonymous", has=("anonymous",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_policy(case: Case) -> None:
    d = decide(
        RULES,
        PolicyInputs(case.request, case.now, case.profile, case.status, case.live, case.overrides),
    )
    for attr, got in (
        ("queue", d.queue),
        ("mode", d.mode),
        ("priority", d.priority),
        ("agent", d.preferred_agent),
        ("sticky", d.sticky_seconds),
        ("language", d.language),
    ):
        want = getattr(case, attr)
        if want is not None:
            assert got == want, f"{attr}: {got!r} != {want!r} (reasons {d.reasons})"
    for code in case.has:
        assert code in d.reasons, f"{code} missing from {d.reasons}"
    for code in case.lacks:
        assert code not in d.reasons, f"{code} unexpectedly in {d.reasons}"
    assert d.rule_version == RULES.version


def test_decision_is_deterministic() -> None:
    inputs = PolicyInputs(req(did="74951234567", ivr_digits="2"), OPEN, PATIENT, "found", BUSY_LIVE)
    assert decide(RULES, inputs) == decide(RULES, inputs)


def test_tracking_of_paid_did() -> None:
    d = decide(RULES, PolicyInputs(req(did="74951234567"), OPEN))
    assert (d.tracking.source, d.tracking.campaign, d.tracking.paid, d.tracking.clinic) == (
        "source-a", "implants", True, "msk",
    )  # fmt: skip


def test_unknown_did_keeps_hinted_source_and_campaign() -> None:
    d = decide(RULES, PolicyInputs(req(did="1", source_hint="src", campaign_hint="x"), OPEN))
    assert (d.tracking.source, d.tracking.campaign, d.tracking.paid) == ("src", "x", False)


def test_channel_variables_are_complete_and_single_line() -> None:
    inputs = PolicyInputs(req(did="74951234567", ivr_digits="2"), OPEN, PATIENT, "found", BUSY_LIVE)
    variables = dict(decide(RULES, inputs).channel_variables())
    assert variables == {
        "ROUTE_QUEUE": "doctors",
        "ROUTE_PRIORITY": "9",
        "ROUTE_AGENT": OP3,
        "ROUTE_STICKY": "20",
        "ROUTE_LANG": "ru",
        "ROUTE_MODE": "queue",
        "ROUTE_REASON": "ivr:surgery,paid,known_patient,sticky:coordinator",
        "ROUTE_CAMPAIGN": "implants",
        "ROUTE_RULES_VERSION": RULES.version,
    }


def test_safe_default() -> None:
    d = safe_default(RULES, "crash")
    assert (d.queue, d.mode, d.reasons) == ("reception", "queue", ("safe_default", "crash"))


def test_rules_without_clinics_are_always_open() -> None:
    rules: RuleSet = parse_rules('[defaults]\nqueue = "q"\n[queues.q]\n')
    at_night = datetime(2026, 1, 1, 3, tzinfo=UTC)
    d = decide(rules, PolicyInputs(RouteRequest("u"), at_night, live=LiveSnapshot({})))
    assert (d.queue, d.mode) == ("q", "bot")  # open, but nobody logged in: default empty_mode
