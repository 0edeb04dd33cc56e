"""``[retention]``: bad values stop start-up naming the key; timelines never outlive records."""

from __future__ import annotations

import pytest

from callserver.config import load_config
from callserver.errors import ConfigError
from callserver.plugins import load_plugins
from privacy.config import RetentionSettings, validate_retention
from privacy.retention import _days


@pytest.mark.parametrize(("env", "key"), [
    ({"CALLSERVER_RETENTION_CALL_RECORDS_DAYS": "-1"}, "retention.call_records_days"),
    ({"CALLSERVER_RETENTION_BATCH_SIZE": "0"}, "retention.batch_size"),
    ({"CALLSERVER_RETENTION_INTERVAL_HOURS": "0"}, "retention.interval_hours"),
    ({"CALLSERVER_RETENTION_LOGS_DAYS": "soon"}, "retention.logs_days"),
])  # fmt: skip
def test_a_bad_retention_value_names_its_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_plugins(load_config(None, env=env))
    assert caught.value.details["key"] == key


def test_the_defaults_are_valid_and_zero_keeps_for_ever() -> None:
    validate_retention(RetentionSettings())
    forever = RetentionSettings(call_records_days=0, call_events_days=0)
    assert _days(forever, "call_records") == 0 and _days(forever, "call_events") == 0


def test_call_timelines_are_never_kept_longer_than_the_call_records() -> None:
    assert _days(RetentionSettings(call_records_days=30, call_events_days=365), "call_events") == 30
    assert _days(RetentionSettings(call_records_days=30, call_events_days=0), "call_events") == 30
    assert _days(RetentionSettings(call_records_days=0, call_events_days=10), "call_events") == 10
