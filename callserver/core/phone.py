"""Phone numbers: normalisation to E.164 and masking for logs (152-FZ / GDPR).

Russian numbers arrive as ``+7XXXXXXXXXX``, ``8XXXXXXXXXX``, ``7XXXXXXXXXX``, or the ten national
digits ``9XXXXXXXXX``, with or without spaces, dashes, dots and brackets; all of them are the same
number ``+7XXXXXXXXXX``. Other countries must come with a ``+`` or the international ``00`` prefix.
A number that cannot be normalised raises ``PhoneNumberError`` with a reason: never guessed.
"""

from __future__ import annotations

import re

from callserver.errors import CallserverError, ErrorCategory

_PUNCT = re.compile(r"[\s\-\.\(\)/]+")
_ZONE7_FIRST = frozenset("3456789")
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: "\d" would pass fullwidth digits through


class PhoneNumberError(CallserverError, ValueError):
    error_id = "phone-invalid"
    category = ErrorCategory.INVALID


def normalize_phone(raw: str, *, default_country: str = "7") -> str:
    """Return ``raw`` as E.164 (``+79161234567``).

    Raises PhoneNumberError (with ``details['reason']``) for empty input, letters, a wrong length,
    or a national number of a country other than ``default_country`` ('7', Russia/Kazakhstan).
    """
    if not isinstance(raw, str):
        raise PhoneNumberError(message="phone number must be text", reason="type")
    text = raw.strip()
    if not text:
        raise PhoneNumberError(message="empty phone number", reason="empty")
    if len(text) > 40:
        raise PhoneNumberError(message="phone number too long", reason="length")
    text = _PUNCT.sub("", text)
    plus = text.startswith("+")
    if plus:
        text = text[1:]
    elif text.startswith("00"):
        plus, text = True, text[2:]
    if not _DIGITS.fullmatch(text or "x"):
        raise PhoneNumberError(
            message="phone number has characters other than digits", reason="characters"
        )
    if plus:
        if text.startswith("7"):
            if len(text) != 11:
                raise PhoneNumberError(
                    message="a +7 number has 10 digits after +7", reason="length"
                )
            _check_zone(text[1])
        elif not 8 <= len(text) <= 15 or text[0] == "0":
            raise PhoneNumberError(
                message="international number must have 8-15 digits", reason="length"
            )
        return "+" + text
    if default_country != "7":
        raise PhoneNumberError(
            message="only Russian national numbers are understood", reason="country"
        )
    if len(text) == 11 and text[0] in "78":
        _check_zone(text[1])
        return "+7" + text[1:]
    if len(text) == 10 and text[0] in "3489":
        return "+7" + text
    raise PhoneNumberError(
        message=f"cannot read a {len(text)}-digit number as Russian", reason="length"
    )


def _check_zone(first: str) -> None:
    """Zone 7 numbers start with 3-9 after the 7 (Russia 3/4/8/9, Kazakhstan 6/7); 0-2 are
    not assigned, so such input is a typo or garbage, not a number to dial back."""
    if first not in _ZONE7_FIRST:
        raise PhoneNumberError(message=f"no +7 number starts with +7{first}", reason="unassigned")


def try_normalize(raw: str | None) -> str | None:
    """``normalize_phone`` or None: for untrusted caller IDs ('anonymous', 'unknown', '')."""
    if not raw:
        return None
    try:
        return normalize_phone(raw)
    except PhoneNumberError:
        return None


def mask(number: str | None) -> str:
    """Mask a number for logs: keep the last 4 digits (``***4567``); strip line breaks."""
    if not number:
        return "<none>"
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) <= 4:
        return "***"
    return "***" + digits[-4:]
