"""The callbacks plugin and desk use each other's ports (desk: our ``dialer``; we: desk's
``operator_notify``/``operator_directory``). Late ports keep that from being a cycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callbacks.config import CallbacksConfig
from callbacks.plugin import plugin as callbacks_plugin
from callbacks.ports import OperatorNotify
from callserver.plugin_api import Contribution, PluginDeps, PluginError, Ports
from callserver.plugins import LoadedPlugin, order


class DeskLike:
    name = "desk"
    config_type: type[Any] | None = None
    migrations: Path | None = None
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ("dialer",)
    provides: tuple[str, ...] = ("operator_notify", "operator_directory")

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        return Contribution()


class Notify:
    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []

    async def push(self, extension: str, frame: dict[str, Any]) -> None:
        self.frames.append((extension, frame))


def test_desk_and_callbacks_load_in_order_without_a_cycle() -> None:
    loaded = order([LoadedPlugin(DeskLike(), None),
                    LoadedPlugin(callbacks_plugin, CallbacksConfig())])  # fmt: skip
    assert [lp.name for lp in loaded] == ["callbacks", "desk"]


def test_a_late_port_resolves_once_its_provider_is_built() -> None:
    provided: dict[str, object] = {}
    ports = Ports("callbacks", provided, (), late=("operator_notify",))
    resolve = ports.late("operator_notify", OperatorNotify)
    assert resolve() is None  # desk not built yet
    notify = Notify()
    provided["operator_notify"] = notify
    assert resolve() is notify
    with pytest.raises(PluginError):
        ports.late("dialer", OperatorNotify)  # not declared late
    provided["operator_notify"] = object()
    with pytest.raises(PluginError, match="lacks push"):
        resolve()
