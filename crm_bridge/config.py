"""``[crm]`` config section of the CRM bridge, parsed and validated by this package."""

from __future__ import annotations

from dataclasses import dataclass

from callserver.errors import ConfigError


@dataclass(frozen=True)
class CrmConfig:
    """``[crm]``: patient lookup and pushes (crm_bridge). Times in seconds."""

    backend: str = "embedded"
    """``embedded`` (PostgreSQL tables of crm_bridge) or ``rest`` (the clinic's own CRM)."""
    lookup_url_template: str = ""
    """rest: GET URL with ``{phone}`` (E.164, URL-encoded), e.g. ``https://crm/api/lookup?phone={phone}``."""
    webhook_url: str = ""
    hmac_secret: str = ""
    auth_token: str = ""
    timeout: float = 0.5
    push_timeout: float = 5.0
    retries: int = 1
    cache_ttl: float = 300.0
    negative_cache_ttl: float = 30.0
    outbox_workers: int = 1
    outbox_batch: int = 20
    outbox_poll_interval: float = 1.0
    outbox_max_attempts: int = 8
    outbox_backoff_base: float = 2.0
    outbox_backoff_max: float = 600.0
    outbox_lease: float = 60.0


def validate_crm(crm: CrmConfig) -> None:
    """Raise ConfigError naming the bad ``crm.*`` key."""
    if crm.backend not in ("embedded", "rest"):
        raise ConfigError(
            message=f"crm.backend: expected embedded|rest, got {crm.backend!r}", key="crm.backend"
        )
    if crm.backend == "rest":
        if "{phone}" not in crm.lookup_url_template:
            raise ConfigError(
                message="crm.lookup_url_template: must contain {phone}",
                key="crm.lookup_url_template",
            )
        for key, value in (("webhook_url", crm.webhook_url), ("hmac_secret", crm.hmac_secret)):
            if not value:
                raise ConfigError(
                    message=f"crm.{key}: required when crm.backend = 'rest'", key=f"crm.{key}"
                )
    for key in ("timeout", "push_timeout", "cache_ttl", "outbox_poll_interval", "outbox_lease"):
        if getattr(crm, key) <= 0:
            raise ConfigError(message=f"crm.{key}: must be > 0", key=f"crm.{key}")
    if crm.outbox_max_attempts < 1 or crm.retries < 0:
        raise ConfigError(
            message="crm.outbox_max_attempts must be >= 1, crm.retries >= 0",
            key="crm.outbox_max_attempts",
        )
