"""The ``phoenix`` command: first-boot helpers, checks and development tools.

    phoenix version
    phoenix config check [-c /etc/salt/master] [--json]
    phoenix status [-c /etc/salt/master] [--json]
    phoenix tables create [-c /etc/salt/master]
    phoenix reactor-config

Exit codes: 0 success, 1 a Phoenix error (the message says which setting or call),
2 wrong usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import phoenix_salt

EXIT_OK = 0
EXIT_FAILED = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_OK
    try:
        return int(args.run(args))
    except phoenix_salt.PhoenixError as exc:
        print(f"phoenix: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"phoenix: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("phoenix: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phoenix", description="SaltStack high availability on AWS"
    )
    parser.add_argument(
        "--version", action="version", version=f"phoenix-salt {phoenix_salt.__version__}"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    version = commands.add_parser(
        "version", help="print the versions of phoenix-salt, its core and Salt"
    )
    version.set_defaults(run=_version)

    config = commands.add_parser("config", help="the phoenix: configuration block")
    config_commands = config.add_subparsers(
        title="config commands", metavar="COMMAND", required=True
    )
    check = config_commands.add_parser(
        "check", help="validate the phoenix: block and print the effective settings"
    )
    _add_config_path(check)
    check.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    check.set_defaults(run=_config_check)

    status = commands.add_parser(
        "status", help="masters (live or stale) and minions in the registry"
    )
    _add_config_path(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")
    status.set_defaults(run=_status)

    tables = commands.add_parser(
        "tables", help="the registry tables (development: production tables come from cfn/)"
    )
    table_commands = tables.add_subparsers(
        title="tables commands", metavar="COMMAND", required=True
    )
    create = table_commands.add_parser(
        "create", help="create the masters and minions tables where missing"
    )
    _add_config_path(create)
    create.set_defaults(run=_tables_create)

    reactor = commands.add_parser(
        "reactor-config",
        help="print the master config block that wires Phoenix's reactor files",
    )
    reactor.set_defaults(run=_reactor_config)
    return parser


def _add_config_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help="Salt config file with the phoenix: block "
        "(default: /etc/salt/master, else /etc/salt/minion)",
    )


def _load_config(args: argparse.Namespace) -> Any:
    from phoenix_salt import config, saltconf

    path = args.config or saltconf.default_path()
    return config.load(saltconf.read(path))


def _reactor_config(_args: argparse.Namespace) -> int:
    import yaml

    from phoenix_salt import reactor

    print("# Phoenix reactor files: merge into the master config (e.g. master.d/phoenix.conf)")
    print(
        yaml.safe_dump(reactor.reactor_config(), default_flow_style=False, sort_keys=False), end=""
    )
    return EXIT_OK


def _version(_args: argparse.Namespace) -> int:
    from phoenix_salt import _core

    try:
        import salt.version

        salt_version = salt.version.__version__
    except ImportError:
        salt_version = "not installed"
    print(f"phoenix-salt {phoenix_salt.__version__}")
    print(f"core         {_core.__version__}")
    print(f"salt         {salt_version}")
    return EXIT_OK


def _config_check(args: argparse.Namespace) -> int:
    import yaml

    from phoenix_salt import config

    effective = {"phoenix": config.as_dict(_load_config(args))}
    if args.json:
        print(json.dumps(effective, indent=2, sort_keys=True))
    else:
        print(yaml.safe_dump(effective, default_flow_style=False, sort_keys=True), end="")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from phoenix_salt import _core
    from phoenix_salt import status as cluster

    result = cluster.cluster_status(_core.Session(_load_config(args)))
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(cluster.render(result))
    return EXIT_OK


def _tables_create(args: argparse.Namespace) -> int:
    from phoenix_salt import _core

    session = _core.Session(_load_config(args))
    for table, created in session.create_registry_tables():
        print(f"{table}: {'created' if created else 'already there'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
