import pytest

from callserver.config import load_config
from callserver.errors import ConfigError
from callserver.plugins import load_plugins
from crm_bridge.config import CrmConfig
from crm_bridge.outbox import OutboxSettings
from crm_bridge.rest_adapter import RestSettings


def _crm(env: dict[str, str]) -> CrmConfig:
    """The [crm] section as the crm plugin parsed and validated it."""
    (crm,) = [p.config for p in load_plugins(load_config(env=env)) if p.name == "crm"]
    assert isinstance(crm, CrmConfig)
    return crm


def test_crm_defaults_to_the_embedded_backend() -> None:
    crm = _crm({})
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
    settings = RestSettings.from_config(_crm(env))
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
        _crm(env)
    assert info.value.details["key"] == key
