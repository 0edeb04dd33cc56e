"""Typed configuration: defaults ← TOML file ← environment, loaded once, validated.

Every key ``[section] key`` can be overridden by ``CALLSERVER_<SECTION>_<KEY>`` (upper case),
e.g. ``CALLSERVER_AMI_PORT=5039``. A bad value stops start-up with a ``ConfigError`` that names the
key (``ami.port: expected an integer, got 'x'``). Unknown sections and keys are errors too: a typo
must not silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from callserver.errors import ConfigError

ENV_PREFIX = "CALLSERVER_"
T = TypeVar("T")


@dataclass(frozen=True)
class AmiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "callserver"
    secret: str = ""
    connect_timeout: float = 5.0
    action_timeout: float = 10.0
    ping_interval: float = 20.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    event_filter: bool = True
    """After login, ask Asterisk (``Filter`` action) not to send what callserver ignores."""


@dataclass(frozen=True)
class AriConfig:
    enabled: bool = True
    url: str = "http://127.0.0.1:8088/ari"
    username: str = "callserver"
    password: str = ""
    app: str = "callserver"
    request_timeout: float = 5.0
    reconnect_max: float = 30.0
    max_calls: int = 200
    """Calls handled in the Stasis app at once; beyond it a call goes back to the dialplan."""


@dataclass(frozen=True)
class AgiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 4573
    command_timeout: float = 2.0
    session_timeout: float = 10.0


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str = "postgresql://postgres@127.0.0.1:5432/callserver"
    batch_size: int = 500
    flush_interval: float = 0.2
    buffer_limit: int = 100_000
    cdr_dsn: str = ""
    """Where Asterisk's ``cdr`` (cdr_pgsql) and realtime ``queue_log`` tables are ("": no
    catch-up). See ``callserver.store.catchup``."""
    cdr_inbound_contexts: tuple[str, ...] = (
        "from-trunk",
        "route-inbound",
        "route-mode",
        "route-fallback",
    )
    """CDR ``dcontext`` values of inbound calls (a numeric ``dst`` there is the DID)."""
    catchup_interval: float = 60.0
    """Seconds between catch-up passes besides those after each AMI (re)connect (0: none)."""
    catchup_margin: float = 300.0
    """Seconds re-read before the watermark (late CDR rows, clock skew)."""
    catchup_lookback: float = 3600.0
    """Seconds of history the very first pass reads."""


@dataclass(frozen=True)
class RedisConfig:
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "callserver:"


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    api_token: str = ""


@dataclass(frozen=True)
class PluginsConfig:
    """``[plugins]``: which domain plugins to load (entry point names or ``module:attribute``)."""

    enabled: tuple[str, ...] | None = None
    """None (the default): every plugin installed under the ``callserver.plugins`` entry point
    group; an empty list: none."""


@dataclass(frozen=True)
class Config:
    ami: AmiConfig = field(default_factory=AmiConfig)
    ari: AriConfig = field(default_factory=AriConfig)
    agi: AgiConfig = field(default_factory=AgiConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    """Raw tables of the other sections, for the plugins that own them (``plugin_section``)."""
    env: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """The environment the config was loaded with (plugins' ``CALLSERVER_<SECTION>_<KEY>``)."""

    def plugin_section(self, name: str, cls: type[T]) -> T:
        """Parse section ``[name]`` with a plugin's dataclass ``cls`` (defaults ← file ← env).

        Raises ConfigError naming the key."""
        result: T = build_section(name, cls, self.sections.get(name, {}), self.env)
        return result


def _coerce(key: str, value: Any, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None or value == "":
            return None
        return _coerce(key, value, args[0])
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(message=f"{key}: expected true/false, got {value!r}", key=key)
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(message=f"{key}: expected an integer, got {value!r}", key=key)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(
                message=f"{key}: expected an integer, got {value!r}", key=key
            ) from None
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(message=f"{key}: expected a number, got {value!r}", key=key)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(message=f"{key}: expected a number, got {value!r}", key=key) from None
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(message=f"{key}: expected a string, got {value!r}", key=key)
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(message=f"{key}: expected a list, got {value!r}", key=key)
        (item,) = typing.get_args(kind)[:1]
        return tuple(_coerce(key, v, item) for v in value)
    return value


def build_section(name: str, cls: type[Any], raw: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """Section ``[name]`` as dataclass ``cls``: defaults ← ``raw`` ← ``CALLSERVER_NAME_KEY``.

    Raises ConfigError naming the key for an unknown key or a value of the wrong type."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(message=f"{name}.{key}: unknown key", key=f"{name}.{key}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        dotted = f"{name}.{f.name}"
        env_key = f"{ENV_PREFIX}{name}_{f.name}".upper()
        if env_key in env:
            values[f.name] = _coerce(dotted, env[env_key], hints[f.name])
        elif f.name in raw:
            values[f.name] = _coerce(dotted, raw[f.name], hints[f.name])
    return cls(**values)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the config. Raises ConfigError naming the bad key."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(message=f"config file {path} not found", key="--config") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(message=f"config file {path}: {exc}", key="--config") from exc
    sections = {f.name: f for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    for name, value in raw.items():
        if not isinstance(value, dict):
            raise ConfigError(message=f"{name}: expected a [{name}] table", key=name)
    core = {name for name in sections if name not in ("sections", "env")}
    built = {name: build_section(name, hints[name], raw.get(name, {}), env) for name in core}
    others = {name: value for name, value in raw.items() if name not in core}
    config = Config(**built, sections=others, env=dict(env))
    _validate(config)
    return config


def _validate(config: Config) -> None:
    for name, port in (
        ("ami.port", config.ami.port),
        ("agi.port", config.agi.port),
        ("http.port", config.http.port),
    ):
        if not 0 <= port <= 65535:
            raise ConfigError(message=f"{name}: {port} is not a TCP port", key=name)
    if not config.ari.url.startswith(("http://", "https://")):
        raise ConfigError(
            message=f"ari.url: expected http(s)://…, got {config.ari.url!r}", key="ari.url"
        )
    if not config.database.dsn.startswith(("postgres://", "postgresql://")):
        raise ConfigError(message="database.dsn: expected postgresql://…", key="database.dsn")
    if not config.redis.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(message="redis.url: expected redis://…", key="redis.url")
    _validate_positive(config)
    _check_url("ari.url", config.ari.url, need_host=True)
    _check_url("database.dsn", config.database.dsn, need_host=False)
    _validate_catchup(config.database)
    _check_url("redis.url", config.redis.url, need_host=False)


def _validate_catchup(db: DatabaseConfig) -> None:
    if db.cdr_dsn:
        if not db.cdr_dsn.startswith(("postgres://", "postgresql://")):
            raise ConfigError(message="database.cdr_dsn: expected postgresql://…",
                              key="database.cdr_dsn")  # fmt: skip
        _check_url("database.cdr_dsn", db.cdr_dsn, need_host=False)
    for key in ("catchup_interval", "catchup_margin", "catchup_lookback"):
        value = getattr(db, key)
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(message=f"database.{key}: must be a finite number >= 0, "
                              f"got {value!r}", key=f"database.{key}")  # fmt: skip


def _check_url(key: str, url: str, *, need_host: bool) -> None:
    """The URL parses, its port (if any) is 0..65535 and it names a host when ``need_host``
    (the clients would otherwise fail on first use, inside a background task)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError as exc:
        # never echo the URL: a DSN may carry a password
        raise ConfigError(message=f"{key}: {exc}", key=key) from None
    if need_host and not parts.hostname:
        raise ConfigError(message=f"{key}: no host in the URL", key=key)


_POSITIVE = (
    ("ami", ("connect_timeout", "action_timeout", "ping_interval", "reconnect_min",
             "reconnect_max")),
    ("ari", ("request_timeout", "reconnect_max", "max_calls")),
    ("agi", ("command_timeout", "session_timeout")),
    ("database", ("batch_size", "buffer_limit")),
)  # fmt: skip
"""Sizes and timeouts that must be finite and > 0: 0 makes the call writer spin or drop every
event, a deadline of 0 or NaN never lets a connection or an action succeed."""


def _validate_positive(config: Config) -> None:
    for section, keys in _POSITIVE:
        for key in keys:
            value = getattr(getattr(config, section), key)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(
                    message=f"{section}.{key}: must be a finite number > 0, got {value!r}",
                    key=f"{section}.{key}",
                )
    interval = config.database.flush_interval
    if not (math.isfinite(interval) and interval >= 0):
        raise ConfigError(
            message=f"database.flush_interval: must be >= 0, got {interval!r}",
            key="database.flush_interval",
        )
