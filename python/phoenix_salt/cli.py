"""The ``phoenix`` command: first-boot helpers, checks and development tools.

    phoenix version
    phoenix config check [-c /etc/salt/master] [--json]
    phoenix status [-c /etc/salt/master] [--json]
    phoenix tables create [-c /etc/salt/master]
    phoenix reactor-config
    phoenix master-bootstrap [-c /etc/salt/master] [--replace-local-key] [--json]
    phoenix minion-config [-c /etc/salt/minion] [--id ID] [--wait SECONDS]
                          [--starting-master ADDRESS] [--no-claim] [--json]
    phoenix claim [-c /etc/salt/minion] [--id ID] [--wait SECONDS] [--json]
    phoenix dlq list|show MESSAGE_ID|redrive [--dry-run] [-c CONFIG] [--max N] [--json]

Exit codes: 0 success, 1 a Phoenix error (the message says which setting or call),
2 wrong usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import phoenix_salt

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


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

    dlq = commands.add_parser(
        "dlq",
        help="the events queue's dead-letter queue: list, show, and send back what the "
        "engine would apply",
    )
    dlq_commands = dlq.add_subparsers(title="dlq commands", metavar="COMMAND", required=True)
    listing = dlq_commands.add_parser(
        "list", help="every message, with what the engine would make of it"
    )
    show = dlq_commands.add_parser("show", help="one message, its body whole")
    show.add_argument("message_id", help="the message's id in the dead-letter queue")
    redrive = dlq_commands.add_parser(
        "redrive",
        help="send every message the engine would not reject back to the events queue; the "
        "others stay, with their reason",
    )
    redrive.add_argument(
        "--dry-run", action="store_true", help="say what would go back, move nothing"
    )
    for command, run in ((listing, _dlq_list), (show, _dlq_show), (redrive, _dlq_redrive)):
        _add_config_path(command)
        command.add_argument(
            "--max", type=int, default=100, help="read at most this many messages (default 100)"
        )
        command.add_argument("--json", action="store_true", help="print JSON")
        command.set_defaults(run=run)

    reactor = commands.add_parser(
        "reactor-config",
        help="print the master config block that wires Phoenix's reactor files",
    )
    reactor.add_argument(
        "--sns",
        action="store_true",
        help="also wire SNS push delivery (salt/netapi/hook/phoenix/sns, see docs/sns.md)",
    )
    reactor.set_defaults(run=_reactor_config)

    bootstrap = commands.add_parser(
        "master-bootstrap",
        help="before salt-master first starts: install the cluster's shared master key pair "
        "(created once, by whichever master boots first) and pre-accept every pinned minion key",
    )
    _add_config_path(bootstrap, Path("/etc/salt/master"))
    bootstrap.add_argument(
        "--replace-local-key",
        action="store_true",
        help="replace a different master key pair already in the pki dir with the cluster's",
    )
    bootstrap.add_argument("--json", action="store_true", help="print the result as JSON")
    bootstrap.set_defaults(run=_master_bootstrap)

    minion_config = commands.add_parser(
        "minion-config",
        help="write the Phoenix drop-in (the live masters in this minion's order) before "
        "salt-minion first starts",
    )
    _add_minion_arguments(
        minion_config, "seconds to wait for a live master (default 300; 0: one try)"
    )
    minion_config.add_argument(
        "--starting-master",
        metavar="ADDRESS",
        help="this host is a master starting for the first time at ADDRESS (not in the "
        "registry yet): list it first and do not wait for another master",
    )
    minion_config.add_argument(
        "--no-claim",
        action="store_true",
        help="do not send the identity claim for the minion key (with phoenix.keys.trust: "
        "identity_document, the key is then never accepted)",
    )
    minion_config.add_argument("--json", action="store_true", help="print the result as JSON")
    minion_config.set_defaults(run=_minion_config)

    claim = commands.add_parser(
        "claim",
        help="make the minion key pair if there is none and send this instance's identity "
        "claim for it (minion-config does this at first boot)",
    )
    _add_minion_arguments(
        claim, "seconds to keep trying while AWS or the metadata service fail (default 300)"
    )
    claim.add_argument("--json", action="store_true", help="print the result as JSON")
    claim.set_defaults(run=_claim)
    return parser


def _add_minion_arguments(parser: argparse.ArgumentParser, wait_help: str) -> None:
    """The minion's config file, its id and how long to keep trying."""
    _add_config_path(parser, Path("/etc/salt/minion"))
    parser.add_argument(
        "--id", help="the minion id (default: id in the config, else the minion_id file)"
    )
    parser.add_argument("--wait", type=float, default=300.0, help=wait_help)


def _add_config_path(parser: argparse.ArgumentParser, default: Path | None = None) -> None:
    """``-c/--config``: a Salt config file with the phoenix: block. Without ``default``, the
    master's config where there is one, else the minion's."""
    where = default or "/etc/salt/master, else /etc/salt/minion"
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=default,
        help=f"Salt config file with the phoenix: block (default: {where})",
    )


def _load_config(args: argparse.Namespace) -> Any:
    from phoenix_salt import config, saltconf

    path = args.config or saltconf.default_path()
    return config.load(saltconf.read(path))


def _reactor_config(args: argparse.Namespace) -> int:
    import yaml

    from phoenix_salt import reactor

    print("# Phoenix reactor files: merge into the master config (e.g. master.d/phoenix.conf)")
    print(
        yaml.safe_dump(
            reactor.reactor_config(sns=args.sns), default_flow_style=False, sort_keys=False
        ),
        end="",
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


def _dlq_list(args: argparse.Namespace) -> int:
    from phoenix_salt import _core, dead_letters

    listing = _core.Session(_load_config(args)).dead_letters(args.max)
    print(json.dumps(listing, indent=2) if args.json else dead_letters.render_list(listing))
    return EXIT_OK


def _dlq_show(args: argparse.Namespace) -> int:
    from phoenix_salt import _core, dead_letters

    listing = _core.Session(_load_config(args)).dead_letters(args.max)
    found = [m for m in listing["messages"] if m["message_id"] == args.message_id]
    if not found:
        print(
            f"phoenix: no message {args.message_id} among the {len(listing['messages'])} read "
            f"from {listing['dead_letter_queue_url']}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(json.dumps(found[0], indent=2) if args.json else dead_letters.render_one(found[0]))
    return EXIT_OK


def _dlq_redrive(args: argparse.Namespace) -> int:
    from phoenix_salt import _core, dead_letters

    session = _core.Session(_load_config(args))
    report = session.redrive_dead_letters(args.max, args.dry_run)
    print(json.dumps(report, indent=2) if args.json else dead_letters.render_redrive(report))
    return EXIT_FAILED if report["failed"] else EXIT_OK


def _master_bootstrap(args: argparse.Namespace) -> int:
    import salt.config

    from phoenix_salt import master_key

    if not args.config.is_file():
        raise FileNotFoundError(2, "no such Salt config file", str(args.config))
    # Salt's own reading, defaults and root_dir included: the pki dir must be salt-master's.
    opts = salt.config.master_config(str(args.config))
    result = master_key.bootstrap(opts, replace_local_key=args.replace_local_key)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"master key pair: {result['key_pair']} ({result['secret']})")
    print(f"{result['pki_dir']}/master.pem: {result['installed']}")
    registered = result["registered"]
    if registered:
        print(f"registered as launching: {registered['instance_id']} ({registered['address']})")
    else:
        print("not registered yet: the engine registers this master once salt-master serves")
    print(f"pinned minion keys pre-seeded: {len(result['pre_seeded'])}")
    return EXIT_OK


# Progress lines while waiting for a live master, this many seconds apart.
WAIT_REPORT_SECONDS = 10.0
WAIT_RETRY_SECONDS = 2.0
# The longest wait, after the claim, for every live master to hold the key as accepted.
ACCEPT_WAIT = 60.0


def _minion_id(args: argparse.Namespace, opts: dict[str, Any]) -> str | None:
    if args.id:
        return str(args.id)
    if opts.get("id"):
        return str(opts["id"])
    cached = args.config.parent / "minion_id"
    if cached.is_file() and cached.read_text().strip():
        return cached.read_text().strip()
    return None


def _retrying(what: str, attempt: Callable[[], Any], wait: float) -> Any:
    """``attempt()``, tried again every few seconds while it fails for a passing reason
    (nothing found yet, AWS failing), for up to ``wait`` seconds, saying what it waits for."""
    from phoenix_salt import _core

    started = time.monotonic()
    reported = started
    while True:
        try:
            return attempt()
        except (_core.NotFoundError, _core.AwsError) as exc:
            retryable = isinstance(exc, _core.NotFoundError) or exc.retryable
            waited = time.monotonic() - started
            if not retryable or waited + WAIT_RETRY_SECONDS > wait:
                raise
            if time.monotonic() - reported >= WAIT_REPORT_SECONDS or waited == 0:
                print(
                    f"phoenix: waiting for {what} ({waited:.0f} of {wait:.0f} s): {exc}",
                    file=sys.stderr,
                )
                reported = time.monotonic()
            time.sleep(WAIT_RETRY_SECONDS)


def _missing_id(args: argparse.Namespace) -> int:
    print(
        f"phoenix: no minion id: pass --id, or set id: in {args.config} (Phoenix accepts "
        "a minion's key only when its id is its EC2 instance id)",
        file=sys.stderr,
    )
    return EXIT_USAGE


def _send_claim(args: argparse.Namespace, settings_config: Any, minion_id: str) -> dict[str, Any]:
    """Makes the key pair in salt-minion's own pki dir (Salt's reading of the config, its
    defaults included) and sends the claim, retrying while AWS or IMDS fail."""
    import salt.config

    from phoenix_salt import enrolment

    salt_opts = salt.config.minion_config(str(args.config), minion_id=minion_id)
    sent: dict[str, Any] = _retrying(
        "the instance metadata and the claim queue",
        lambda: enrolment.claim(
            settings_config, minion_id, salt_opts["pki_dir"], int(salt_opts.get("keysize", 2048))
        ),
        args.wait,
    )
    return sent


def _wait_until_accepted(
    settings_config: Any, minion_id: str, fingerprint: str, wait: float
) -> list[str]:
    """Waits (up to ``wait`` seconds) until the registry pins ``fingerprint`` for this minion
    and every live master holds it as accepted, so that salt-minion's first authentication
    is accepted everywhere at once, never pending. With no live master there is no one to
    judge the claim yet (the first master of a cluster boots its own minion): no wait. Past
    ``wait`` it goes on, saying which masters it did not see: they accept the key when the
    minion authenticates. Returns the masters that hold the key."""
    from phoenix_salt import _core

    started = time.monotonic()
    reported = started
    while True:
        try:
            status = _core.enrolment_status(settings_config, minion_id)
        except _core.AwsError as exc:
            if not exc.retryable:  # access denied, say: waiting cannot help
                print(
                    f"phoenix: not waiting for the masters to accept the key: {exc}",
                    file=sys.stderr,
                )
                return []
            status = {"pinned": None, "seeded": [], "waiting_for": [f"the registry ({exc})"]}
        if status["pinned"] not in (None, fingerprint):
            raise _core.ClaimError(
                f"the registry pins another key for {minion_id} ({status['pinned']}), not "
                f"this one ({fingerprint}): this instance's key cannot be accepted"
            )
        done = status["pinned"] == fingerprint and not status["waiting_for"]
        nobody = status["pinned"] is None and not status["seeded"] and not status["waiting_for"]
        if done or nobody:
            return list(status["seeded"])
        waited = time.monotonic() - started
        if waited + WAIT_RETRY_SECONDS / 4 > wait:
            waiting = ", ".join(status["waiting_for"]) or "the claim to be judged"
            print(
                f"phoenix: going on after {waited:.0f} s without {waiting}: the key is "
                "accepted there when salt-minion authenticates",
                file=sys.stderr,
            )
            return list(status["seeded"])
        if time.monotonic() - reported >= WAIT_REPORT_SECONDS:
            print(
                f"phoenix: waiting for every live master to accept the key "
                f"({waited:.0f} of {wait:.0f} s): not yet {', '.join(status['waiting_for'])}",
                file=sys.stderr,
            )
            reported = time.monotonic()
        time.sleep(WAIT_RETRY_SECONDS / 4)


def _claim(args: argparse.Namespace) -> int:
    from phoenix_salt import config, saltconf

    opts = saltconf.read(args.config)
    settings_config = config.load(opts)
    minion_id = _minion_id(args, opts)
    if minion_id is None:
        return _missing_id(args)
    sent = _send_claim(args, settings_config, minion_id)
    if args.json:
        print(json.dumps(sent, indent=2, sort_keys=True))
    else:
        print(f"claimed key {sent['fingerprint']} for {sent['instance_id']}")
    return EXIT_OK


def _minion_config(args: argparse.Namespace) -> int:
    from phoenix_salt import _core, config, follow, saltconf

    opts = saltconf.read(args.config)
    settings = config.load(opts)
    minion_id = _minion_id(args, opts)
    if minion_id is None:
        return _missing_id(args)
    opts.setdefault("conf_file", str(args.config))
    claimed = None
    if settings.keys.trust == "identity_document" and not args.no_claim:
        claimed = _send_claim(args, settings, minion_id)
        if not args.json:
            print(f"claimed key {claimed['fingerprint']} for {claimed['instance_id']}")
        claimed["accepted_by"] = _wait_until_accepted(
            settings, minion_id, claimed["fingerprint"], min(args.wait, ACCEPT_WAIT)
        )
    path = follow.drop_in_path(settings, opts)
    result = _retrying(
        "a live master",
        lambda: _core.write_minion_config(
            settings,
            minion_id,
            path,
            follow.own_master(settings, minion_id),
            args.starting_master,
        ),
        args.wait,
    )
    result["path"] = path
    result["minion_id"] = minion_id
    result["claim"] = claimed
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    elif result["changed"]:
        was = ", ".join(result["old"]) if result["old"] else "no file"
        print(f"{path}: masters {', '.join(result['masters'])} (was: {was})")
    else:
        print(f"{path}: unchanged, masters {', '.join(result['masters'])}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
