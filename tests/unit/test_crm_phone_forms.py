"""The phone forms crm_bridge meets (CSV imports, caller IDs, REST input) → E.164, or a reason."""

import pytest

from callserver.core.phone import PhoneNumberError, normalize_phone, try_normalize

ACCEPTED = [
    ("+79161234567", "+79161234567"),
    ("79161234567", "+79161234567"),
    ("89161234567", "+79161234567"),
    ("9161234567", "+79161234567"),
    ("+7 (916) 123-45-67", "+79161234567"),
    ("8 (916) 123-45-67", "+79161234567"),
    ("8-916-123-45-67", "+79161234567"),
    ("7.916.123.45.67", "+79161234567"),
    ("  +7 916 1234567  ", "+79161234567"),
    ("+7\u00a0916\u00a0123\u00a045\u00a067", "+79161234567"),  # NBSP from a spreadsheet
    ("8\t916\t123 45 67", "+79161234567"),
    ("(916)1234567", "+79161234567"),
    ("007 916 123 45 67", "+79161234567"),
    ("8 (495) 123-45-67", "+74951234567"),
    ("4951234567", "+74951234567"),
    ("8 800 555-35-35", "+78005553535"),
    ("+7 727 123 4567", "+77271234567"),  # Kazakhstan shares +7
    ("+375 29 123-45-67", "+375291234567"),
    ("00375291234567", "+375291234567"),
    ("+44 20 7946 0958", "+442079460958"),
    ("+1 (212) 555-0100", "+12125550100"),
]

REJECTED = [
    ("", "empty"),
    ("   ", "empty"),
    ("anonymous", "characters"),
    ("+7 916 123 45 6", "length"),
    ("+7 916 123 45 678", "length"),
    ("8916123456789", "length"),
    ("12345", "length"),
    ("1234567890", "length"),  # 10 digits not starting like a Russian code
    ("+0123456789", "length"),
    ("916-123-45-6x", "characters"),
    ("+7 916 123-45-67 доб. 12", "characters"),
    ("+７９１６１２３４５６７", "characters"),  # fullwidth digits are not guessed
    ("+79161234567; DROP TABLE crm_patients", "characters"),
    ("+79161234567\r\nAction: Originate", "characters"),
    ("1" * 41, "length"),
    ("+7 012 345-67-89", "unassigned"),  # no +7 number starts with +70/+71/+72
    ("8 123 456-78-90", "unassigned"),
    ("72345678901", "unassigned"),
]


@pytest.mark.parametrize(("raw", "e164"), ACCEPTED)
def test_accepted_forms_normalise_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164
    assert try_normalize(raw) == e164


@pytest.mark.parametrize(("raw", "reason"), REJECTED)
def test_unreadable_forms_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(PhoneNumberError) as info:
        normalize_phone(raw)
    assert info.value.details["reason"] == reason
    assert try_normalize(raw) is None


def test_table_has_at_least_twenty_forms() -> None:
    assert len(ACCEPTED) >= 20
