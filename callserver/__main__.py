"""Command line: ``callserver run --config PATH`` (and ``migrate``, ``check-config``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from callserver.config import load_config
from callserver.errors import ConfigError
from callserver.logs import config_secrets, setup_logging
from callserver.plugin_api import PluginError
from callserver.plugins import load_plugins

log = logging.getLogger("callserver")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callserver", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "run the server"),
        ("migrate", "apply database migrations and exit"),
        ("check-config", "validate the configuration and exit"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="TOML config file (environment overrides it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
        plugins = load_plugins(config)  # parses and validates every plugin's section
    except (ConfigError, PluginError) as exc:
        print(f"callserver: bad configuration: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level, secrets=config_secrets(config))  # now it knows the secrets
    if args.command == "check-config":
        print("configuration OK; plugins: " + (", ".join(p.name for p in plugins) or "none"))
        return 0
    from callserver.app import migrate_only, run_server

    try:
        if args.command == "migrate":
            asyncio.run(migrate_only(config))
        else:
            asyncio.run(run_server(config))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
