"""``[desk]`` config section of the operator desk, parsed and validated by this package."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callserver.errors import ConfigError


@dataclass(frozen=True)
class DeskConfig:
    """``[desk]``: the operator desk. Times in seconds."""

    timezone: str = "Europe/Moscow"
    """The clinic's time zone: every time in the desk is shown in it (24-hour clock)."""
    language: str = "ru"
    """Default interface language (``ru`` or ``en``); each user may switch."""
    bootstrap_admin: str = ""
    """``login:password`` of an admin created at start-up when no user exists yet (then remove
    it from the config; ``python -m desk create-admin`` does the same without a restart)."""
    session_ttl: float = 12 * 3600.0
    cookie_secure: bool = False
    """Set true behind HTTPS: the session cookie is then never sent over plain HTTP."""
    tags: tuple[str, ...] = ("booking", "price_question", "complaint", "wrong_number")
    not_booked_reasons: tuple[str, ...] = ("too_expensive", "will_think", "no_suitable_slot",
                                           "other")  # fmt: skip
    paid_sources: tuple[str, ...] = ("yandex", "google", "vk", "avito", "2gis", "prodoctorov")
    """Ad sources whose calls are paid advertising (highlighted): a source matches when it
    starts with one of these."""
    recording_url: str = "/recordings/{file}"
    """Link to a call's MixMonitor file (``{file}`` = its base name)."""
    caller_id: str = ""
    """The clinic's caller ID for click-to-call (E.164)."""
    dial_timeout: float = 30.0
    lookup_timeout: float = 0.3
    """Patient lookup budget per pop: after it the card goes out without the patient."""
    ami_timeout: float = 3.0


def validate_desk(config: DeskConfig) -> None:
    """Raise ConfigError naming the bad ``desk.*`` key."""
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(message=f"desk.timezone: unknown time zone {config.timezone!r}",
                          key="desk.timezone") from None  # fmt: skip
    if config.language not in ("ru", "en"):
        raise ConfigError(message="desk.language: expected ru or en", key="desk.language")
    if config.bootstrap_admin and ":" not in config.bootstrap_admin:
        raise ConfigError(message="desk.bootstrap_admin: expected login:password",
                          key="desk.bootstrap_admin")  # fmt: skip
    for key in ("session_ttl", "dial_timeout", "lookup_timeout", "ami_timeout"):
        if getattr(config, key) <= 0:
            raise ConfigError(message=f"desk.{key}: must be > 0", key=f"desk.{key}")
    if "{file}" not in config.recording_url:
        raise ConfigError(message="desk.recording_url: must contain {file}",
                          key="desk.recording_url")  # fmt: skip
