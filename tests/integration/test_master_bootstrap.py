"""`phoenix master-bootstrap` against the emulator's Secrets Manager: one key pair per cluster,
created once however many masters boot together, installed with Salt's modes, never swapped
silently, and nothing touched when the secret cannot be read."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import yaml

from phoenix_lab.cluster import master_instance_id
from phoenix_lab.emulator import REGION, Emulator
from phoenix_lab.stack import Stack, provision
from phoenix_salt import _core

pytestmark = pytest.mark.integration

# The default name for cluster "test" (phoenix.master_key_secret): a name, no credential.
KEY_SECRET_NAME = "phoenix/test/master-key"  # noqa: S105
VERSION = "phoenix-master-key-pair-v1-00000001"


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


def _master_config(root: Path, stack: Stack, number: int | None = None) -> Path:
    """A master's config file with its own root_dir (so its own pki dir); with ``number``,
    told who it is, as off EC2 every master must be to register itself."""
    conf = root / "conf" / "master"
    conf.parent.mkdir(parents=True)
    identity = (
        {"master_id": master_instance_id(number), "master_address": f"127.0.0.{number}"}
        if number is not None
        else {}
    )
    conf.write_text(
        yaml.safe_dump(
            {"root_dir": str(root), "keysize": 2048, "phoenix": stack.phoenix_block(**identity)}
        )
    )
    return conf


def _bootstrap(conf: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "phoenix"),
            "master-bootstrap",
            "-c",
            str(conf),
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **env},
    )


def _pki(root: Path) -> Path:
    return root / "etc" / "salt" / "pki" / "master"


def _secret_client(aws: Emulator) -> object:
    return boto3.client("secretsmanager", endpoint_url=aws.url, region_name=REGION)


@pytest.mark.parametrize("secret_made_by_the_stack", [True, False])
def test_ten_masters_booting_together_share_one_key_pair(
    aws: Emulator, stack: Stack, tmp_path: Path, secret_made_by_the_stack: bool
) -> None:
    secrets = _secret_client(aws)
    if secret_made_by_the_stack:
        # As the CloudFormation data stack makes it: present, holding "{}".
        secrets.create_secret(Name=KEY_SECRET_NAME, SecretString="{}")
    roots = [tmp_path / f"m{n}" for n in range(1, 11)]
    confs = [_master_config(root, stack, n) for n, root in enumerate(roots, 1)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda conf: _bootstrap(conf, aws.env()), confs))
    for result in results:
        assert result.returncode == 0, result.stderr
    reports = [json.loads(result.stdout) for result in results]
    assert sorted(report["key_pair"] for report in reports) == ["created"] + ["existing"] * 9
    stored = json.loads(
        secrets.get_secret_value(SecretId=KEY_SECRET_NAME, VersionId=VERSION)["SecretString"]
    )
    for root, report in zip(roots, reports, strict=True):
        pki = _pki(root)
        assert report["pki_dir"] == str(pki)
        assert (pki / "master.pem").read_text() == stored["master.pem"]
        assert (pki / "master.pub").read_text() == stored["master.pub"]
        assert stat.S_IMODE((pki / "master.pem").stat().st_mode) == 0o400
    # The stack's placeholder is no longer the current value: the pair is.
    current = secrets.get_secret_value(SecretId=KEY_SECRET_NAME)["SecretString"]
    assert json.loads(current) == stored

    # Each registered itself as launching: known to the registry, in no live list yet (no
    # salt-master serves).
    ids = sorted(master_instance_id(n) for n in range(1, 11))
    assert sorted(report["registered"]["instance_id"] for report in reports) == ids
    assert {report["registered"]["registered"] for report in reports} == {"moved"}
    session = _core.Session(_core.Config.from_json(json.dumps(stack.phoenix_block())))
    rows = session.list_instances("master")
    assert sorted(row["instance_id"] for row in rows) == ids
    assert {row["state"] for row in rows} == {"launching"}
    assert session.live_masters() == []


def test_a_different_local_key_is_replaced_only_when_asked(
    aws: Emulator, stack: Stack, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert _bootstrap(_master_config(first, stack), aws.env()).returncode == 0
    conf = _master_config(second, stack)
    pki = _pki(second)
    pki.mkdir(parents=True)
    (pki / "master.pem").write_text("-----BEGIN RSA PRIVATE KEY-----\nold\n")
    result = _bootstrap(conf, aws.env())
    assert result.returncode == 1
    assert "--replace-local-key" in result.stderr
    assert (pki / "master.pem").read_text() == "-----BEGIN RSA PRIVATE KEY-----\nold\n"
    result = _bootstrap(conf, aws.env(), "--replace-local-key")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["installed"] == "replaced"
    assert (pki / "master.pem").read_text() == (_pki(first) / "master.pem").read_text()
    # Again: nothing to do.
    assert json.loads(_bootstrap(conf, aws.env()).stdout)["installed"] == "unchanged"


def test_a_secret_that_cannot_be_read_stops_the_bootstrap_and_touches_nothing(
    aws: Emulator, stack: Stack, tmp_path: Path
) -> None:
    root = tmp_path / "m"
    conf = _master_config(root, stack)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    env = {**aws.env(), "AWS_ENDPOINT_URL": nowhere}
    result = _bootstrap(conf, env)
    assert result.returncode == 1
    assert "secretsmanager GetSecretValue failed" in result.stderr
    assert not (_pki(root) / "master.pem").exists()

    # A secret holding something else than a Phoenix key pair: refused, nothing written.
    _secret_client(aws).create_secret(Name=KEY_SECRET_NAME, SecretString="{}")
    _secret_client(aws).put_secret_value(
        SecretId=KEY_SECRET_NAME, SecretString='{"password": "x"}', ClientRequestToken=VERSION
    )
    result = _bootstrap(conf, aws.env())
    assert result.returncode == 1
    assert "not a Phoenix master key pair" in result.stderr
    assert not (_pki(root) / "master.pem").exists()
