"""``[dashboards]`` config section, parsed and validated by this package."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callserver.errors import ConfigError
from dashboards.kpi import SlPolicy
from dashboards.overload import OverloadThresholds


@dataclass(frozen=True)
class DashboardsConfig:
    """``[dashboards]``: live board, overload signal, reports, staffing. Seconds unless named."""

    timezone: str = "Europe/Moscow"
    """The clinic's time zone: "today", report dates, heatmap hours, staffing hours."""
    language: str = "ru"
    """Default UI language (``ru`` or ``en``; each user can switch)."""
    sl_seconds: float = 20.0
    sl_target: float = 0.8
    short_abandon_seconds: float = 5.0
    exclude_short_abandons: bool = True
    push_interval: float = 0.5
    """How often connected boards get a fresh snapshot."""
    wrapup_seconds: float = 10.0
    """After a call an operator counts as in wrap-up this long (Asterisk ``wrapuptime``)."""
    missed_in_row_alarm: int = 3
    waiting_alarm_seconds: float = 60.0
    callback_alarm_minutes: float = 30.0
    overload_wait_seconds: float = 120.0
    overload_abandon_rate: float = 0.2
    overload_clear_ratio: float = 0.5
    """Clear thresholds = raise thresholds × this (hysteresis)."""
    overload_minutes: float = 3.0
    recover_minutes: float = 5.0
    overload_webhook_url: str = ""
    """POSTed ``{"event": "overload"|"normal", …}``; empty: board alarm only."""
    webhook_timeout: float = 3.0
    callback_window_hours: float = 24.0
    """A missed call counts as called back / reached by a later call within this window."""
    callback_due_minutes: float = 15.0
    """A callback is "on time" when made within this many minutes of the missed call."""
    booking_window_hours: float = 72.0
    """An appointment created this long after a call counts as booked by that call."""
    staffing_weeks: int = 4
    rollup_interval: float = 30.0
    """How often finished calls are rolled up for the marketer reports (their freshness)."""
    rollup_margin: float = 900.0
    """Each rollup pass re-reads calls changed this long before the previous pass started."""
    sample_interval: float = 60.0
    """How often the number of logged-in operators is recorded (staffing's "logged in")."""
    spy_timeout: float = 30.0

    def sl_policy(self) -> SlPolicy:
        return SlPolicy(self.sl_seconds, self.sl_target, self.short_abandon_seconds,
                        self.exclude_short_abandons)  # fmt: skip

    def thresholds(self) -> OverloadThresholds:
        r = self.overload_clear_ratio
        return OverloadThresholds(
            wait_raise=self.overload_wait_seconds, wait_clear=self.overload_wait_seconds * r,
            abandon_raise=self.overload_abandon_rate,
            abandon_clear=self.overload_abandon_rate * r,
            raise_after=self.overload_minutes * 60, clear_after=self.recover_minutes * 60,
        )  # fmt: skip


_POSITIVE = (
    "sl_seconds", "push_interval", "overload_wait_seconds", "overload_minutes", "recover_minutes",
    "webhook_timeout", "callback_window_hours", "callback_due_minutes", "booking_window_hours",
    "sample_interval", "spy_timeout", "waiting_alarm_seconds", "callback_alarm_minutes",
    "rollup_interval", "rollup_margin",
)


def validate_dashboards(cfg: DashboardsConfig) -> None:
    """Raise ConfigError naming the bad ``dashboards.*`` key."""
    for key in _POSITIVE:
        if getattr(cfg, key) <= 0:
            _bad(key, "must be > 0")
    for key in ("sl_target", "overload_abandon_rate", "overload_clear_ratio"):
        if not 0 < getattr(cfg, key) < 1:
            _bad(key, "must be between 0 and 1")
    for key in ("short_abandon_seconds", "wrapup_seconds"):
        if getattr(cfg, key) < 0:
            _bad(key, "must be ≥ 0")
    if not 1 <= cfg.staffing_weeks <= 52:
        _bad("staffing_weeks", "must be 1..52")
    if cfg.missed_in_row_alarm < 1:
        _bad("missed_in_row_alarm", "must be ≥ 1")
    if cfg.language not in ("ru", "en"):
        _bad("language", "must be 'ru' or 'en'")
    if cfg.overload_webhook_url and not cfg.overload_webhook_url.startswith(("http://", "https://")):
        _bad("overload_webhook_url", "must be an http(s) URL")
    try:
        ZoneInfo(cfg.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        _bad("timezone", f"unknown time zone {cfg.timezone!r}")


def _bad(key: str, why: str) -> None:
    raise ConfigError(message=f"dashboards.{key}: {why}", key=f"dashboards.{key}")
