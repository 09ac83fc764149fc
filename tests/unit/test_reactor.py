"""Phoenix's reactor files, rendered by Salt's own Jinja renderer as the reactor does."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from phoenix_salt.reactor import REACTIONS, SNS_REACTION, reactor_config, reactor_dir

ID = "i-0123456789abcdef0"


def _render(name: str, tag: str, data: dict[str, Any]) -> Any:
    import salt.config
    import salt.utils.templates

    rendered = salt.utils.templates.JINJA(
        str(reactor_dir() / name),
        to_str=True,
        data=data,
        tag=tag,
        opts=salt.config.DEFAULT_MASTER_OPTS.copy(),
        saltenv="base",
        grains={},
        pillar={},
        salt={},
    )
    assert rendered["result"], rendered
    return yaml.safe_load(rendered["data"])


def test_a_pending_key_calls_key_runner_accept_with_the_exact_id() -> None:
    assert _render("auth_pending.sls", "salt/auth", {"act": "pend", "id": ID}) == {
        "phoenix_accept_pending_key": {"runner.key_runner.accept": [{"minion_id": ID}]}
    }


@pytest.mark.parametrize("act", ["accept", "reject", "denied", None])
def test_every_other_auth_event_does_nothing(act: str | None) -> None:
    assert _render("auth_pending.sls", "salt/auth", {"act": act, "id": ID}) is None


def test_an_id_cannot_inject_yaml() -> None:
    hostile = 'x"\nevil: 1'
    rendered = _render("auth_pending.sls", "salt/auth", {"act": "pend", "id": hostile})
    assert rendered == {
        "phoenix_accept_pending_key": {"runner.key_runner.accept": [{"minion_id": hostile}]}
    }


def test_a_terminated_instance_reconciles_that_id_only() -> None:
    tag = f"phoenix/instance/{ID}/terminated"
    assert _render("instance_terminated.sls", tag, {}) == {
        "phoenix_delete_terminated_keys": {"runner.key_runner.reconcile": [{"minion_id": ID}]}
    }
    assert _render("instance_terminated.sls", f"phoenix/instance/{ID}/launched", {}) is None


def test_a_minion_start_asks_for_its_first_highstate() -> None:
    tag = f"salt/minion/{ID}/start"
    data = {"id": ID, "data": f"Minion {ID} started at Sun Nov 22 10:00:00 2026"}
    assert _render("minion_start.sls", tag, data) == {
        "phoenix_first_highstate": {"runner.highstate_runner.run": [{"minion_id": ID}]}
    }
    assert _render("minion_start.sls", tag, {}) is None


def test_the_config_block_names_installed_files() -> None:
    block = reactor_config()["reactor"]
    assert [next(iter(entry)) for entry in block] == [tag for tag, _ in REACTIONS]
    for entry in block:
        for path in next(iter(entry.values())):
            assert (reactor_dir() / path).is_file()


def test_an_sns_body_reaches_the_runner_exactly_as_posted() -> None:
    # The signed text must survive the reactor's rendering byte for byte: quotes,
    # backslashes, newlines, YAML and Jinja syntax, non-ASCII.
    body = (
        '{"Type": "Notification", "Message": "{\\"Event\\": \\"x\\"}\\n: - [a]",'
        ' "Subject": "Auto Scaling: launch for group \\"g\\" {{ 1 }} {% raw %} é",'
        ' "Signature": "a/b+c=="}\n'
    )
    rendered = _render("sns_hook.sls", "salt/netapi/hook/phoenix/sns", {"body": body})
    assert rendered == {"phoenix_sns_receive": {"runner.sns_runner.receive": [{"body": body}]}}
    assert _render("sns_hook.sls", "salt/netapi/hook/phoenix/sns", {"post": {}}) is None


def test_the_sns_hook_is_wired_only_when_asked() -> None:
    tags = [next(iter(entry)) for entry in reactor_config(sns=True)["reactor"]]
    assert tags == [tag for tag, _ in REACTIONS] + [SNS_REACTION[0]]
    assert SNS_REACTION[0] not in [next(iter(e)) for e in reactor_config()["reactor"]]
