"""Rules file validation: every error names the rule; the example file loads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from routing.errors import RulesError
from routing.hours import parse_intervals
from routing.rules import load_rules, parse_rules

BASE = '[defaults]\nqueue = "reception"\n[queues.reception]\n[queues.doctors]\n'
EXAMPLE = Path(__file__).parents[2] / "routing" / "rules.example.toml"

BAD = [
    ("typo top-level", "[sticki]\n", "sticki"),
    ("missing default queue", "[queues.q]\n", "defaults.queue"),
    ("unknown default queue", '[defaults]\nqueue = "x"\n', "defaults.queue"),
    (
        "skill to unknown queue",
        '[skills.therapy]\ndigits = "1"\nqueue = "doctrs"\n',
        "skills.therapy.queue",
    ),
    (
        "skill digits not digits",
        '[skills.therapy]\ndigits = "a"\nqueue = "doctors"\n',
        "skills.therapy.digits",
    ),
    (
        "duplicate digits",
        '[skills.a]\ndigits = "1"\nqueue = "doctors"\n'
        '[skills.b]\ndigits = "1"\nqueue = "doctors"\n',
        "skills.b.digits",
    ),
    (
        "skill unknown key",
        '[skills.a]\ndigits = "1"\nqueue = "doctors"\nqeue = 1\n',
        "skills.a.qeue",
    ),
    ("bad mode", '[queues.q]\noverflow_mode = "ivr"\n', "queues.q.overflow_mode"),
    ("negative wait", "[queues.q]\noverflow_wait_s = -1\n", "queues.q.overflow_wait_s"),
    ("did not digits", '[dids.abc]\nsource = "s"\n', "dids.abc"),
    ("did unknown campaign", '[dids.7495]\ncampaign = "nope"\n', "dids.7495.campaign"),
    (
        "did campaign and source",
        '[campaigns.c]\nsource = "s"\n[dids.7495]\ncampaign = "c"\nsource = "x"\n',
        "dids.7495",
    ),
    ("did unknown clinic", '[dids.7495]\nclinic = "spb"\n', "dids.7495.clinic"),
    ("campaign without source", "[campaigns.c]\npaid = true\n", "campaigns.c.source"),
    ("paid not bool", '[campaigns.c]\nsource = "s"\npaid = "yes"\n', "campaigns.c.paid"),
    ("bad time zone", '[clinics.m]\ntimezone = "Mars/Olympus"\n', "clinics.m.timezone"),
    (
        "bad hours",
        '[clinics.m]\ntimezone = "UTC"\n[clinics.m.hours]\nmon = "9-18"\n',
        "clinics.m.hours.mon",
    ),
    (
        "hours reversed",
        '[clinics.m]\ntimezone = "UTC"\n[clinics.m.hours]\nmon = "18:00-09:00"\n',
        "clinics.m.hours.mon",
    ),
    (
        "weekday typo",
        '[clinics.m]\ntimezone = "UTC"\n[clinics.m.hours]\nmonday = "closed"\n',
        "clinics.m.hours.monday",
    ),
    (
        "bad holiday",
        '[clinics.m]\ntimezone = "UTC"\nholidays = ["2026-13-01"]\n',
        "clinics.m.holidays",
    ),
    ("sticky too long", "[sticky]\ncoordinator_seconds = 600\n", "sticky.coordinator_seconds"),
    ("sticky unknown skill", '[sticky]\nskip_skills = ["x"]\n', "sticky.skip_skills"),
    ("prepayment unknown skill", '[prepayment]\nskill = "x"\n', "prepayment.skill"),
    ("priority bool", "[priority]\nvip = true\n", "priority.vip"),
    ("queue name with newline", '[defaults]\nqueue = "a\\nb"\n', "defaults.queue"),
    ("not toml", "[[[", "<toml>"),
]


@pytest.mark.parametrize(("name", "extra", "rule"), BAD, ids=[b[0] for b in BAD])
def test_invalid_rules_name_the_rule(name: str, extra: str, rule: str) -> None:
    text = extra if "defaults" in extra and "queue" in extra else BASE + extra
    if name == "missing default queue":
        text = extra
    with pytest.raises(RulesError) as info:
        parse_rules(text)
    assert info.value.details["rule"] == rule
    if not rule.startswith("<"):
        assert rule in str(info.value)


def test_example_rules_load() -> None:
    rules = load_rules(EXAMPLE)
    assert set(rules.queues) == {"reception", "doctors"}
    assert set(rules.skills) == {"therapy", "surgery", "orthodontics", "hygiene", "billing"}
    assert rules.dids["74951234567"].source == "source-a"
    assert rules.dids["74951234567"].paid
    assert rules.dids["74957654321"].source == "source-b"
    assert rules.dids["74959990000"].source == "ari-line"
    assert rules.version.startswith("2026-11-23.1@")
    # Novosibirsk lunch break at 13:30 local (06:30 UTC) on a Monday
    nsk = rules.clinics["novosibirsk"].hours
    assert nsk.state(datetime(2026, 11, 23, 6, 30, tzinfo=UTC)) == "closed"
    assert nsk.state(datetime(2026, 11, 23, 7, 30, tzinfo=UTC)) == "open"


def test_version_changes_with_content() -> None:
    a = parse_rules(BASE)
    b = parse_rules(BASE + "\n# edited\n")
    assert a.version != b.version
    assert a.version.startswith("rules@")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as info:
        load_rules(tmp_path / "missing.toml")
    assert info.value.details["rule"] == "<file>"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("closed", ()),
        ("00:00-24:00", ((0, 1440),)),
        ("08:00-13:00, 14:00-20:00", ((480, 780), (840, 1200))),
    ],
)
def test_intervals(text: str, want: tuple[tuple[int, int], ...]) -> None:
    assert parse_intervals(text, "r") == want


def test_overlapping_intervals_rejected() -> None:
    with pytest.raises(RulesError):
        parse_intervals("08:00-13:00,12:00-14:00", "r")


def test_dst_zone_evaluated_in_local_time() -> None:
    rules = parse_rules(
        BASE + '[clinics.b]\ntimezone = "Europe/Berlin"\n[clinics.b.hours]\nsun = "09:00-10:00"\n'
    )
    hours = rules.clinics["b"].hours
    # Sunday 2026-03-29 Berlin switches to CEST (UTC+2): 09:30 local = 07:30 UTC
    assert hours.state(datetime(2026, 3, 29, 7, 30, tzinfo=UTC)) == "open"
    assert hours.state(datetime(2026, 3, 29, 8, 30, tzinfo=UTC)) == "closed"
    # a week earlier (CET, UTC+1): 09:30 local = 08:30 UTC
    assert hours.state(datetime(2026, 3, 22, 8, 30, tzinfo=UTC)) == "open"


@pytest.mark.parametrize(
    ("raw", "did"),
    [
        ("74951234567", "74951234567"),
        ("84951234567", "74951234567"),  # national trunk prefix 8
        ("4951234567", "74951234567"),  # ten national digits
        ("+7 (495) 123-45-67", "74951234567"),
        ("+442079460958", "442079460958"),
        ("100", "100"),  # an internal extension stays as it is
        ("", ""),
    ],
)
def test_did_forms_of_one_number_are_one_did(raw: str, did: str) -> None:
    """Bug: a carrier sending the DID as 8XXXXXXXXXX or ten digits missed the rules'
    ``[dids.7XXXXXXXXXX]`` entry: no campaign, no paid flag, no DID queue for that call."""
    from routing.models import did_digits

    assert did_digits(raw) == did


def test_rules_did_keys_are_normalised_and_duplicates_rejected() -> None:
    rules = parse_rules(BASE + '[dids.84951234567]\nsource = "a"\n')
    assert set(rules.dids) == {"74951234567"}
    with pytest.raises(RulesError) as info:
        parse_rules(BASE + '[dids.84951234567]\nsource = "a"\n[dids.74951234567]\nsource = "b"\n')
    assert info.value.details["rule"] == "dids.74951234567"


def test_did_override_uses_the_same_did_form_as_the_calls() -> None:
    from routing.overrides import build_override

    raw: dict[str, object] = {"scope": "did", "value": "84951234567", "minutes": 5, "mode": "bot"}
    o = build_override(parse_rules(BASE), raw, actor="t", now=datetime(2026, 1, 1, tzinfo=UTC))
    assert o.value == "74951234567"
