"""The phoenix: block: defaults, and errors that name the key."""

from __future__ import annotations

import datetime
import inspect
import json
from typing import Any

import pytest

import phoenix_salt
from phoenix_salt import config


def test_defaults_are_filled_in() -> None:
    loaded = config.load({"phoenix": {"cluster": "prod"}})
    assert loaded.masters_table == "phoenix-prod-masters"
    assert loaded.minions_table == "phoenix-prod-minions"
    assert loaded.master_key_secret == "phoenix/prod/master-key"  # noqa: S105 - a secret's name
    assert loaded.heartbeat_interval == 5.0
    assert loaded.aws.attempt_timeout > 20
    assert loaded.keys.trust == "identity_document"
    assert loaded.drop_in.master_type == "str"
    assert loaded.drop_in.path is None
    assert loaded.beacon.restart_command is None


def _settings(cls: type) -> list[str]:
    """The names of a settings class's properties (PyO3 getters)."""
    return [name for name in dir(cls) if inspect.isgetsetdescriptor(getattr(cls, name))]


def _plain(value: Any) -> Any:
    """A Config or section as the nested dict its properties make."""
    if type(value).__module__ == "phoenix_salt._core":
        return {name: _plain(getattr(value, name)) for name in _settings(type(value))}
    return value


def test_every_setting_is_a_property_of_the_type_it_has_in_json() -> None:
    """Python reads settings as properties, never by string key: every setting of the
    effective configuration (to_json, which the `phoenix.config` runner shows) must be one,
    with the same value and, for numbers, the same kind (an int where JSON has an int)."""
    loaded = config.load(
        {
            "phoenix": {
                "cluster": "prod",
                "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
                "master_id": "i-0a00000000000a001",
                "keys": {"unmanaged": ["salt-syndic"], "trust": "first_key"},
                "beacon": {"restart_command": ["systemctl", "restart", "salt-minion"]},
                "drop_in": {"path": "/etc/salt/minion.d/p.conf", "publish_port": 4505},
            }
        }
    )
    effective = json.loads(loaded.to_json())
    assert _plain(loaded) == effective

    def kinds(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: kinds(item) for key, item in value.items()}
        if isinstance(value, list):
            return [kinds(item) for item in value]
        return type(value).__name__

    assert kinds(_plain(loaded)) == kinds(effective)
    # Every section is a class of its own, exported by the module.
    for name in ("aws", "keys", "drop_in", "beacon", "highstate", "sns", "replacement", "retry"):
        section = type(getattr(loaded, name))
        assert section.__module__ == "phoenix_salt._core"
        assert section.__name__ in phoenix_salt._core.__all__
    with pytest.raises(AttributeError):
        loaded.heartbeat_intervall  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({}, "phoenix.cluster"),
        ({"cluster": "Prod"}, "phoenix.cluster"),
        ({"cluster": "p", "heartbeat_interval": "five"}, "phoenix.heartbeat_interval"),
        ({"cluster": "p", "heartbeat_interval": 0.1}, "phoenix.heartbeat_interval"),
        ({"cluster": "p", "queue_url": "not a url"}, "phoenix.queue_url"),
        ({"cluster": "p", "region": "moon"}, "phoenix.region"),
        ({"cluster": "p", "heartbeat_intervall": 5}, "phoenix.heartbeat_intervall"),
        ({"cluster": "p", "aws": {"attempt_timeout": 10}}, "phoenix.aws.attempt_timeout"),
        ({"cluster": "p", "master_groups": "phoenix-masters"}, "phoenix.master_groups"),
        ({"cluster": "p", "terminated_ttl": datetime.date(2026, 1, 1)}, "phoenix.terminated_ttl"),
    ],
)
def test_a_bad_value_names_its_key(block: dict[str, object], key: str) -> None:
    with pytest.raises(phoenix_salt.ConfigError) as caught:
        config.load({"phoenix": block})
    assert caught.value.key == key
    assert key in str(caught.value)
    assert isinstance(caught.value, phoenix_salt.PhoenixError)


def test_a_missing_block_says_the_cluster_is_required() -> None:
    with pytest.raises(phoenix_salt.ConfigError, match=r"phoenix\.cluster"):
        config.load({})


def test_pillar_is_read_when_opts_have_no_block() -> None:
    loaded = config.load({}, pillar={"phoenix": {"cluster": "from-pillar"}})
    assert loaded.cluster == "from-pillar"


def test_opts_win_over_pillar() -> None:
    loaded = config.load(
        {"phoenix": {"cluster": "opts"}}, pillar={"phoenix": {"cluster": "pillar"}}
    )
    assert loaded.cluster == "opts"
