import pytest

from callserver.config import load_config
from callserver.errors import ConfigError
from crm_bridge.outbox import OutboxSettings
from crm_bridge.rest_adapter import RestSettings


def test_crm_defaults_to_the_embedded_backend() -> None:
    crm = load_config(env={}).crm
    assert crm.backend == "embedded" and crm.timeout == 0.5
    assert OutboxSettings.from_config(crm).max_attempts == 8


def test_rest_backend_reads_from_environment() -> None:
    env = {
        "CALLSERVER_CRM_BACKEND": "rest",
        "CALLSERVER_CRM_LOOKUP_URL_TEMPLATE": "https://crm.example/lookup?phone={phone}",
        "CALLSERVER_CRM_WEBHOOK_URL": "https://crm.example/hook",
        "CALLSERVER_CRM_HMAC_SECRET": "s",
        "CALLSERVER_CRM_TIMEOUT": "0.25",
    }
    settings = RestSettings.from_config(load_config(env=env).crm)
    assert settings.timeout == 0.25 and settings.hmac_secret == "s"


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"CALLSERVER_CRM_BACKEND": "bitrix"}, "crm.backend"),
        ({"CALLSERVER_CRM_BACKEND": "rest"}, "crm.lookup_url_template"),
        (
            {
                "CALLSERVER_CRM_BACKEND": "rest",
                "CALLSERVER_CRM_LOOKUP_URL_TEMPLATE": "https://x/{phone}",
            },
            "crm.webhook_url",
        ),
        ({"CALLSERVER_CRM_TIMEOUT": "0"}, "crm.timeout"),
        ({"CALLSERVER_CRM_OUTBOX_MAX_ATTEMPTS": "0"}, "crm.outbox_max_attempts"),
    ],
)
def test_bad_crm_config_names_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert info.value.details["key"] == key
