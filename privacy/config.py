"""``[retention]``: how long each kind of personal data is kept (days; 0 keeps it for ever)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from callserver.errors import ConfigError

DAY = 86_400.0


@dataclass(frozen=True)
class RetentionSettings:
    call_records_days: int = 1095
    """Call records (``calls``, anonymised; routing decisions, CRM call records/outcomes/requests,
    operators' outcomes): three years."""
    call_events_days: int = 365
    """Call event timelines (``call_events``; never kept longer than the call record)."""
    recordings_days: int = 365
    """Files under ``recordings_dir`` (MixMonitor recordings), by modification time."""
    transcripts_days: int = 90
    """Transcripts of bot calls (a table ``ivr_transcripts`` when the voice bot keeps one)."""
    crm_cache_days: int = 1
    """Cached patient cards in Redis (the CRM bridge's ``crm:card:*`` keys): the longest
    time-to-live allowed."""
    outbox_days: int = 90
    """Delivered and dead CRM outbox rows (their payloads carry phone numbers)."""
    logs_days: int = 90
    """Files under ``log_dir`` (rotated logs); journald/docker keep their own (see README)."""
    recordings_dir: str = ""
    log_dir: str = ""
    batch_size: int = 1000
    """Rows per DELETE; the job yields between batches so calls keep flowing."""
    interval_hours: float = 24.0
    """Time between runs; the first runs once the database is ready."""


def validate_retention(config: RetentionSettings) -> None:
    """Raise ConfigError naming the key: days must be ≥ 0, batch 1..100000, interval > 0."""
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name.endswith("_days") and value < 0:
            raise ConfigError(message=f"retention.{f.name}: must be ≥ 0 (0 keeps for ever)",
                              key=f"retention.{f.name}")  # fmt: skip
    if not 1 <= config.batch_size <= 100_000:
        raise ConfigError(message="retention.batch_size: expected 1..100000",
                          key="retention.batch_size")  # fmt: skip
    if not config.interval_hours > 0:
        raise ConfigError(message="retention.interval_hours: must be > 0",
                          key="retention.interval_hours")  # fmt: skip
