"""Finding, configuring, ordering and building the domain plugins (see ``plugin_api``).

Plugins are named in ``[plugins] enabled`` (default: every entry point in the group
``callserver.plugins``), either by entry point name (``routing``) or as ``module:attribute``
(``clinic_ext.plugin:plugin``) so a clinic's own package works without being installed as a
distribution. Each plugin's section is parsed with its own dataclass and validated by the plugin;
a section nobody claims is an error (a typo must not silently fall back to defaults).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from callserver.config import Config
from callserver.errors import ConfigError
from callserver.plugin_api import Contribution, Plugin, PluginDeps, PluginError, Ports
from callserver.store.migrate import MigrationSource

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "callserver.plugins"


@dataclass(frozen=True)
class LoadedPlugin:
    plugin: Plugin
    config: Any

    @property
    def name(self) -> str:
        return str(self.plugin.name)


def installed() -> dict[str, EntryPoint]:
    """Entry points of the plugin group, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _import(ref: str, available: Mapping[str, EntryPoint]) -> Plugin:
    try:
        if ref in available:
            obj = available[ref].load()
        elif ":" in ref:
            module, _, attr = ref.partition(":")
            obj = getattr(importlib.import_module(module), attr)
        else:
            raise PluginError(
                message=f"plugins.enabled: no plugin {ref!r} (installed: "
                f"{', '.join(sorted(available)) or 'none'}; or give module:attribute)",
                plugin=ref,
            )
    except PluginError:
        raise
    except (ImportError, AttributeError) as exc:
        raise PluginError(message=f"plugin {ref!r} cannot be loaded: {exc}", plugin=ref) from exc
    for attr in ("name", "build", "requires", "provides"):
        if not hasattr(obj, attr):
            raise PluginError(message=f"plugin {ref!r} has no {attr!r}", plugin=ref)
    return obj  # type: ignore[no-any-return]


def load_plugins(config: Config) -> list[LoadedPlugin]:
    """The enabled plugins with their parsed sections, in dependency order.

    Raises ConfigError (a bad or unclaimed section, naming the key) or PluginError (a plugin
    that cannot be loaded, a missing or circular port).
    """
    available = installed()
    names = sorted(available) if config.plugins.enabled is None else config.plugins.enabled
    plugins = [_import(ref, available) for ref in names]
    seen: set[str] = set()
    for plugin in plugins:
        if plugin.name in seen:
            raise PluginError(message=f"plugin {plugin.name!r} enabled twice", plugin=plugin.name)
        seen.add(str(plugin.name))
    loaded = [LoadedPlugin(p, _section(config, p)) for p in plugins]
    unclaimed = sorted(set(config.sections) - seen)
    if unclaimed:
        name = unclaimed[0]
        raise ConfigError(
            message=f"{name}: unknown config section (no enabled plugin named {name!r})", key=name
        )
    return order(loaded)


def _section(config: Config, plugin: Plugin) -> Any:
    config_type = getattr(plugin, "config_type", None)
    if config_type is None:
        if config.sections.get(str(plugin.name)):
            raise ConfigError(
                message=f"{plugin.name}: this plugin takes no settings", key=str(plugin.name)
            )
        return None
    section = config.plugin_section(str(plugin.name), config_type)
    validate = getattr(plugin, "validate", None)
    if validate is not None:
        validate(section)
    return section


def order(loaded: Sequence[LoadedPlugin]) -> list[LoadedPlugin]:
    """Providers before their consumers (stable otherwise); raises PluginError on a missing
    required port or a cycle."""
    provider: dict[str, str] = {}
    for lp in loaded:
        for port in lp.plugin.provides:
            provider[port] = lp.name
    deps: dict[str, set[str]] = {}
    for lp in loaded:
        wanted = set(lp.plugin.requires)
        for port in lp.plugin.requires:
            if port not in provider:
                raise PluginError(
                    message=f"plugin {lp.name} requires port {port!r}, which no enabled plugin "
                    "provides",
                    plugin=lp.name,
                )
        optional = set(getattr(lp.plugin, "optional", ()))
        deps[lp.name] = {provider[p] for p in wanted | optional if p in provider} - {lp.name}
    result: list[LoadedPlugin] = []
    placed: set[str] = set()
    pending = list(loaded)
    while pending:
        ready = [lp for lp in pending if deps[lp.name] <= placed]
        if not ready:
            raise PluginError(
                message="plugins require each other in a circle: "
                + ", ".join(lp.name for lp in pending),
                plugin=pending[0].name,
            )
        for lp in ready:
            result.append(lp)
            placed.add(lp.name)
            pending.remove(lp)
    return result


def migration_sources(loaded: Iterable[LoadedPlugin]) -> list[MigrationSource]:
    """Each plugin's migrations folder, in dependency order. A migration is recorded as
    ``<package>/<file>`` (``crm_bridge/0001_embedded_crm.sql``): the name of the package that
    ships it, so renaming a plugin never applies its migrations twice."""
    sources = []
    for lp in loaded:
        folder = getattr(lp.plugin, "migrations", None)
        if folder is not None:
            package = type(lp.plugin).__module__.split(".")[0]
            sources.append(MigrationSource(package, folder))
    return sources


def build_plugins(
    loaded: Sequence[LoadedPlugin], make_deps: Callable[[Ports], PluginDeps]
) -> list[tuple[LoadedPlugin, Contribution]]:
    """Build each plugin in order with its own deps (its ``Ports`` hold only the ports it
    declared). Raises PluginError when a plugin does not provide a port it promised."""
    provided: dict[str, object] = {}
    built = []
    for lp in loaded:
        allowed = (*lp.plugin.requires, *getattr(lp.plugin, "optional", ()))
        late = getattr(lp.plugin, "late", ())
        ports = Ports(lp.name, provided, allowed, late)
        contribution = lp.plugin.build(lp.config, make_deps(ports))
        for port in lp.plugin.provides:
            if port not in contribution.ports:
                raise PluginError(
                    message=f"plugin {lp.name} promised port {port!r} but did not provide it",
                    plugin=lp.name,
                )
            provided[port] = contribution.ports[port]
        built.append((lp, contribution))
        log.debug("plugin %s built", lp.name)
    return built
