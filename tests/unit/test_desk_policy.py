"""The desk's pure rules: card parts, statuses, outcomes, users, tokens."""

from __future__ import annotations

from datetime import date

import pytest

from desk import policy
from desk.errors import DeskInvalid

TAGS = ("booking", "price_question", "complaint", "wrong_number")
REASONS = ("too_expensive", "will_think", "no_suitable_slot")


def test_age_counts_full_years_only() -> None:
    assert policy.age(date(1970, 1, 12), date(2026, 1, 11)) == 55
    assert policy.age(date(1970, 1, 12), date(2026, 1, 12)) == 56
    assert policy.age(None, date(2026, 1, 12)) is None


def test_paid_sources_match_by_prefix_case_insensitively() -> None:
    paid = ("yandex", "2gis")
    assert policy.is_paid("Yandex-north", paid) and policy.is_paid("2gis", paid)
    assert not policy.is_paid("site-center", paid) and not policy.is_paid("", paid)


def test_routing_reason_comes_from_route_variables() -> None:
    got = policy.routing_of({"ROUTE_REASON": "sticky", "ROUTE_QUEUE": "vip", "ROUTE_AGENT": "",
                             "CAMPAIGN": "x"})  # fmt: skip
    assert got == {"reason": "sticky", "queue": "vip"}


@pytest.mark.parametrize(("value", "link"), [
    ("/var/spool/asterisk/monitor/20261201-1.wav", "/recordings/20261201-1.wav"),
    ("..\\..\\etc\\passwd", "/recordings/passwd"),
    ("../../", ""),
    ('x"><script>.wav', ""),
    ("", ""),
])  # fmt: skip
def test_recording_link_uses_only_a_safe_base_name(value: str, link: str) -> None:
    assert policy.recording_link({"MIXMONITOR_FILENAME": value}, "/recordings/{file}") == link


def test_script_placeholders_are_replaced_not_formatted() -> None:
    body = "Я {operator}, {patient}? {0} {__class__}"
    filled = policy.script_text(body, operator="Анна", patient="Пётр")
    assert filled == "Я Анна, Пётр? {0} {__class__}"


@pytest.mark.parametrize(("paused", "reason", "status"), [
    (False, "", "available"), (True, "обед", "paused"), (True, "Wrap-up", "wrapup"),
])  # fmt: skip
def test_pause_state_maps_to_desk_status(paused: bool, reason: str, status: str) -> None:
    assert policy.state_from_pause("pjsip/op101", paused, reason).status == status


def test_status_request_validation() -> None:
    assert policy.parse_status({"status": "wrapup"}) == ("wrapup", "wrap-up")
    assert policy.parse_status({"status": "paused", "reason": "обед"}) == ("paused", "обед")
    for bad in ({"status": "gone"}, {"status": "paused"}, {"status": "paused", "reason": "a\nb"},
                {"status": "paused", "reason": 5}):  # fmt: skip
        with pytest.raises(DeskInvalid):
            policy.parse_status(bad)


def test_outcome_validation_against_configured_lists() -> None:
    o = policy.parse_outcome("1.1", {"outcome": "not_booked", "reason": "too_expensive",
                                     "tags": ["price_question", "price_question"],
                                     "notes": "дорого"}, TAGS, REASONS)  # fmt: skip
    assert (o.outcome, o.reason, o.tags, o.notes) == ("not_booked", "too_expensive",
                                                     ("price_question",), "дорого")  # fmt: skip
    booked = policy.parse_outcome("1.1", {"outcome": "booked", "reason": "will_think"}, TAGS,
                                  REASONS)  # fmt: skip
    assert booked.reason == ""
    for bad in ({"outcome": "maybe"}, {"outcome": "booked", "tags": ["vip"]},
                {"outcome": "not_booked", "reason": "nope"}, {"outcome": "booked", "tags": "x"},
                {"outcome": "booked", "notes": "x" * 2001}):  # fmt: skip
        with pytest.raises(DeskInvalid):
            policy.parse_outcome("1.1", bad, TAGS, REASONS)


def test_user_validation() -> None:
    u = policy.parse_user({"login": " Anna ", "name": "Анна", "roles": ["operator"],
                           "extension": "PJSIP/op101", "queues": ["reception"],
                           "password": "12345678"}, creating=True)  # fmt: skip
    assert (u.login, u.extension, u.queues) == ("anna", "PJSIP/op101", ("reception",))
    base = {"login": "anna", "name": "Анна", "roles": ["operator"], "password": "12345678"}
    for change in ({"roles": ["root"]}, {"extension": "PJSIP/op101\r\nAction: Hangup"},
                   {"password": "short"}, {"login": "a b"}, {"queues": ["a;b"]}, {"name": ""}):
        with pytest.raises(DeskInvalid):
            policy.parse_user({**base, **change}, creating=True)
    assert policy.parse_user({**base, "password": ""}, creating=False).password == ""


def test_token_request_validation() -> None:
    parsed = policy.parse_token_request({"name": "BI", "roles": ["marketer"]})
    assert parsed == ("BI", ("marketer",))
    with pytest.raises(DeskInvalid):
        policy.parse_token_request({"name": "BI", "roles": []})
