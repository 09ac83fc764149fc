"""The phoenix: block: defaults, and errors that name the key."""

from __future__ import annotations

import datetime

import pytest

import phoenix_salt
from phoenix_salt import config


def test_defaults_are_filled_in() -> None:
    effective = config.as_dict(config.load({"phoenix": {"cluster": "prod"}}))
    assert effective["masters_table"] == "phoenix-prod-masters"
    assert effective["minions_table"] == "phoenix-prod-minions"
    assert effective["master_key_secret"] == "phoenix/prod/master-key"  # noqa: S105 - a secret's name
    assert effective["heartbeat_interval"] == 5.0
    assert effective["aws"]["attempt_timeout"] > 20


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
