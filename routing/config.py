"""``[routing]`` config section, parsed and validated by this package."""

from __future__ import annotations

from dataclasses import dataclass

from callserver.errors import ConfigError


@dataclass(frozen=True)
class RoutingConfig:
    """``[routing]``: FastAGI route decisions (routing/). Budgets in ms, intervals in seconds."""

    rules_file: str = ""
    """TOML rules (see routing/README.md); empty → every call to ``default_queue``."""
    default_queue: str = "reception"
    lookup_budget_ms: float = 150.0
    live_budget_ms: float = 20.0
    reload_poll_interval: float = 1.0
    override_refresh_interval: float = 5.0


def validate_routing(cfg: RoutingConfig) -> None:
    """Raise ConfigError naming the bad ``routing.*`` key."""
    for key in ("lookup_budget_ms", "live_budget_ms", "reload_poll_interval",
                "override_refresh_interval"):  # fmt: skip
        if getattr(cfg, key) <= 0:
            raise ConfigError(message=f"routing.{key}: must be > 0", key=f"routing.{key}")
    if not cfg.default_queue:
        raise ConfigError(message="routing.default_queue: must not be empty",
                          key="routing.default_queue")  # fmt: skip
