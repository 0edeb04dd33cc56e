"""The website form's validation: clear errors naming the field, nothing injected."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from callbacks.errors import InvalidRequest
from callbacks.webform import FormSettings, check_token, parse_form

MSK = ZoneInfo("Europe/Moscow")
S = FormSettings("", 3, 3600, 20, 600, 14, MSK)
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=MSK).timestamp()


def test_a_good_request_becomes_a_web_form_job() -> None:
    spec, ip = parse_form({
        "phone": "8 (916) 123-45-67", "name": "Анна Петрова", "comment": "после 18:00",
        "preferred_time": "2026-12-01T18:30", "source": "site",
        "utm": {"utm_source": "yandex", "utm_campaign": "implants"}, "client_ip": "203.0.113.7",
    }, NOW, S)  # fmt: skip
    assert spec.phone == "+79161234567"
    assert spec.reason == "web_form" and spec.source == "site"
    assert spec.name == "Анна Петрова"
    assert spec.utm == {"utm_source": "yandex", "utm_campaign": "implants"}
    assert spec.due_at == datetime(2026, 12, 1, 18, 30, tzinfo=MSK).timestamp()
    assert ip == "203.0.113.7"


@pytest.mark.parametrize(("body", "field"), [
    ([], ""),
    ({}, "phone"),
    ({"phone": ""}, "phone"),
    ({"phone": "call me"}, "phone"),
    ({"phone": "+7916"}, "phone"),
    ({"phone": 79161234567}, "phone"),
    ({"phone": "+79161234567", "name": 5}, "name"),
    ({"phone": "+79161234567", "name": "x" * 201}, "name"),
    ({"phone": "+79161234567", "preferred_time": "tomorrow"}, "preferred_time"),
    ({"phone": "+79161234567", "preferred_time": "2027-06-01T10:00"}, "preferred_time"),
    ({"phone": "+79161234567", "utm": {"evil": "x"}}, "utm"),
    ({"phone": "+79161234567", "utm": "utm_source=x"}, "utm"),
    ({"phone": "+79161234567", "timezone": "Mars/Olympus"}, "timezone"),
    ({"phone": "+79161234567", "client_ip": "1.2.3.4; DROP"}, "client_ip"),
])  # fmt: skip
def test_bad_input_names_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_form(body, NOW, S)
    assert info.value.details["field"] == field


def test_past_preferred_time_means_as_soon_as_possible() -> None:
    spec, _ = parse_form({"phone": "+79161234567", "preferred_time": "2026-11-30T10:00"}, NOW, S)
    assert spec.due_at == 0.0


def test_control_characters_are_escaped_in_names() -> None:
    spec, _ = parse_form({"phone": "+79161234567", "name": "Ann\r\nINJECTED: 1"}, NOW, S)
    assert "\n" not in spec.name and "\r" not in spec.name


def test_token_check() -> None:
    assert check_token("", "")
    assert check_token("Bearer s3cret", "s3cret")
    assert not check_token("Bearer nope", "s3cret")
    assert not check_token("", "s3cret")
