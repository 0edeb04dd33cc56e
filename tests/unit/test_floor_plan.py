"""The floor plan: the core imports no domain package; plugins are found and ordered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from callserver.config import load_config
from callserver.errors import ConfigError
from callserver.plugin_api import Contribution, PluginDeps, PluginError
from callserver.plugins import LoadedPlugin, installed, load_plugins, order

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ("routing", "crm_bridge", "callbacks", "desk", "ivr", "recognition", "dashboards",
           "campaigns", "privacy", "pbxsim", "devtools")  # fmt: skip
CORE_MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for p in (ROOT / "callserver").rglob("*.py")
    if p.name != "__main__.py"
)


def test_every_core_module_imports_no_domain_package() -> None:
    """Each core module alone, in a fresh interpreter: afterwards ``sys.modules`` holds no
    domain package (an import inside a function counts only when called, so the composition
    root's entry-point loading is not triggered here)."""
    code = (
        "import importlib, json, sys\n"
        f"mods = {CORE_MODULES!r}\n"
        f"domains = {DOMAINS!r}\n"
        "bad = {}\n"
        "for m in mods:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(m)\n"
        "    hit = sorted(n for n in sys.modules if n.split('.')[0] in domains)\n"
        "    if hit: bad[m] = hit\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    assert out.stdout.strip() == "{}", out.stdout


def test_the_shipped_plugins_are_installed_as_entry_points() -> None:
    assert {"crm", "routing", "callbacks", "dashboards"} <= set(installed())


def test_default_plugins_come_in_dependency_order() -> None:
    names = [p.name for p in load_plugins(load_config(env={}))]
    assert names.index("crm") < names.index("routing") < names.index("callbacks")


def test_enabled_list_limits_the_plugins() -> None:
    config = load_config(env={"CALLSERVER_PLUGINS_ENABLED": "crm,dashboards"})
    assert [p.name for p in load_plugins(config)] == ["crm", "dashboards"]


def test_a_plugin_requiring_a_port_nobody_provides_is_refused() -> None:
    with pytest.raises(PluginError, match="'patient_cards'"):
        order([LoadedPlugin(_P("needy", ("patient_cards",), ()), None)])


def test_an_unknown_plugin_name_is_a_clear_error() -> None:
    config = load_config(env={"CALLSERVER_PLUGINS_ENABLED": "routnig"})
    with pytest.raises(PluginError, match="no plugin 'routnig'"):
        load_plugins(config)


def test_a_plugin_section_is_validated_by_its_plugin(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[routing]\nlookup_budget_ms = 0\n')
    with pytest.raises(ConfigError) as info:
        load_plugins(load_config(path, env={}))
    assert info.value.details["key"] == "routing.lookup_budget_ms"


class _P:
    config_type = None
    migrations = None
    optional: tuple[str, ...] = ()

    def __init__(self, name: str, requires: tuple[str, ...], provides: tuple[str, ...]) -> None:
        self.name, self.requires, self.provides = name, requires, provides

    def validate(self, config: None) -> None:
        return None

    def build(self, config: None, deps: PluginDeps) -> Contribution:
        return Contribution()


def test_plugins_requiring_each_other_in_a_circle_are_refused() -> None:
    a, b = _P("a", ("y",), ("x",)), _P("b", ("x",), ("y",))
    with pytest.raises(PluginError, match="circle"):
        order([LoadedPlugin(a, None), LoadedPlugin(b, None)])


def test_plugin_migrations_keep_the_names_existing_databases_recorded() -> None:
    """A database migrated before the plugins existed holds ``crm_bridge/0001_…`` and
    ``routing/0001_…`` in schema_migrations: the same names, or they would run twice."""
    from callserver.plugins import migration_sources

    names = {s.namespace for s in migration_sources(load_plugins(load_config(env={})))}
    assert {"crm_bridge", "routing"} <= names
