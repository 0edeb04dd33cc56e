from pathlib import Path

import pytest

from callserver.config import load_config
from callserver.errors import ConfigError
from callserver.plugins import load_plugins


def test_defaults_file_and_environment_layer_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[ami]\nport = 5039\nsecret = "s"\n[http]\napi_token = "t"\n')
    config = load_config(path, env={"CALLSERVER_AMI_PORT": "6000"})
    assert config.ami.port == 6000
    assert config.ami.secret == "s"
    assert config.http.api_token == "t"
    assert config.agi.port == 4573


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ('[ami]\nport = "x"\n', {}, "ami.port"),
        ("[ami]\nprot = 1\n", {}, "ami.prot"),
        ("", {"CALLSERVER_AGI_PORT": "seventy"}, "agi.port"),
        ('[database]\ndsn = "mysql://x"\n', {}, "database.dsn"),
        ("[http]\nport = 70000\n", {}, "http.port"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, env: dict[str, str], key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert info.value.details["key"] == key
    assert key in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    ("env", "key"),
    [
        # batch_size 0 made the call writer spin (empty batches, never sleeping) and
        # buffer_limit 0 made every CallWriter.submit raise IndexError: every call lost
        ({"CALLSERVER_DATABASE_BATCH_SIZE": "0"}, "database.batch_size"),
        ({"CALLSERVER_DATABASE_BUFFER_LIMIT": "0"}, "database.buffer_limit"),
        ({"CALLSERVER_DATABASE_FLUSH_INTERVAL": "-1"}, "database.flush_interval"),
        ({"CALLSERVER_AMI_ACTION_TIMEOUT": "0"}, "ami.action_timeout"),
        ({"CALLSERVER_AMI_PING_INTERVAL": "nan"}, "ami.ping_interval"),
        ({"CALLSERVER_AMI_RECONNECT_MIN": "-1"}, "ami.reconnect_min"),
        ({"CALLSERVER_AGI_COMMAND_TIMEOUT": "0"}, "agi.command_timeout"),
        ({"CALLSERVER_ARI_REQUEST_TIMEOUT": "inf"}, "ari.request_timeout"),
    ],
)
def test_non_positive_sizes_and_timeouts_are_refused(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env)
    assert info.value.details["key"] == key
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        # these passed validation; the ARI reader task then died silently on its first connect
        # (yarl: port out of range / invalid IPv6 URL) and asyncpg refused the DSN the same way
        ({"CALLSERVER_ARI_URL": "http://127.0.0.1:99999/ari"}, "ari.url"),
        ({"CALLSERVER_ARI_URL": "http://[::1/ari"}, "ari.url"),
        ({"CALLSERVER_ARI_URL": "http:///ari"}, "ari.url"),
        ({"CALLSERVER_DATABASE_DSN": "postgresql://postgres@127.0.0.1:99999/x"}, "database.dsn"),
        ({"CALLSERVER_REDIS_URL": "redis://127.0.0.1:70000/0"}, "redis.url"),
    ],
)
def test_urls_with_a_bad_port_or_host_are_refused(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env)
    assert info.value.details["key"] == key
    assert key in str(info.value)


def test_unix_socket_urls_stay_valid() -> None:
    config = load_config(None, env={
        "CALLSERVER_DATABASE_DSN": "postgresql:///callserver?host=/run/postgresql",
        "CALLSERVER_REDIS_URL": "unix:///run/redis/redis.sock",
    })  # fmt: skip
    assert config.redis.url.startswith("unix://")


def test_a_section_no_enabled_plugin_claims_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[amy]\nport = 1\n")
    with pytest.raises(ConfigError) as info:
        load_plugins(load_config(path, env={}))
    assert info.value.details["key"] == "amy"
    assert "unknown config section" in str(info.value)
