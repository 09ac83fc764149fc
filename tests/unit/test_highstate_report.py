"""A first highstate's signed report: what verifies, and every way a forgery does not."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import salt.serializers.msgpack
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from phoenix_salt import highstate_report

MINION = "i-0123456789abcdef0"
JID = "20261206184149546002"
STATES: dict[str, Any] = {
    "cmd_|-hello_|-echo hello_|-run": {
        "result": True,
        "changes": {"retcode": 0, "stdout": "h\u00e9llo", "raw": b"\x00\xff"},
        "duration": 12.345,
        "__run_num__": 0,
        "comment": ("a", "tuple"),
    }
}


def _key_pair(folder: Path) -> tuple[str, str]:
    """A 2048-bit RSA pair as Salt keeps minion keys: (private PEM path, public PEM path)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / "minion.pem", folder / "minion.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(private), str(public)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    root = tmp_path_factory.mktemp("keys")
    return {name: _key_pair(root / name) for name in ("minion", "other")}


def _through_salt(report: dict[str, Any]) -> Any:
    """The report as the master's bus hands it on: through Salt's msgpack and back."""
    return salt.serializers.msgpack.deserialize(salt.serializers.msgpack.serialize(report))


def test_a_signed_report_verifies_after_salts_msgpack_and_gives_the_states(keys) -> None:
    private, public = keys["minion"]
    report = highstate_report.sign(private, MINION, JID, 2, copy.deepcopy(STATES))
    data, why = highstate_report.verified(public, MINION, JID, _through_salt(report))
    assert why is None
    assert data is not None and data["retcode"] == 2
    assert data["return"]["cmd_|-hello_|-echo hello_|-run"]["duration"] == 12.345


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r.update(retcode=0), "signature is not"),
        (lambda r: r["states"][next(iter(r["states"]))].update(result=False), "signature is not"),
        (lambda r: r.pop("signature"), "no retcode or signature"),
        (lambda r: r.update(signature="not base64!"), "not base64"),
        (lambda r: r.update(format="phoenix-first-highstate/0"), "not a signed Phoenix report"),
    ],
)
def test_an_edited_report_does_not_verify(keys, change, reason: str) -> None:
    private, public = keys["minion"]
    report = _through_salt(highstate_report.sign(private, MINION, JID, 2, copy.deepcopy(STATES)))
    change(report)
    data, why = highstate_report.verified(public, MINION, JID, report)
    assert data is None and why is not None and reason in why


def test_a_report_for_another_job_or_minion_or_by_another_key_does_not_verify(keys) -> None:
    private, public = keys["minion"]
    report = _through_salt(highstate_report.sign(private, MINION, JID, 0, copy.deepcopy(STATES)))
    # Replayed for the next attempt, or claimed for another minion.
    assert highstate_report.verified(public, MINION, "20261206184149546003", report)[0] is None
    assert highstate_report.verified(public, "i-0fffffffffffffff0", JID, report)[0] is None
    # Signed by another minion's key (an accepted attacker signing for its victim).
    forged = highstate_report.sign(keys["other"][0], MINION, JID, 0, copy.deepcopy(STATES))
    data, why = highstate_report.verified(public, MINION, JID, _through_salt(forged))
    assert data is None and why is not None and "signature is not" in why


def test_a_plain_state_return_or_a_missing_key_is_refused_with_the_reason(
    keys, tmp_path: Path
) -> None:
    private, public = keys["minion"]
    data, why = highstate_report.verified(public, MINION, JID, STATES)
    assert data is None and why is not None and "phoenix-salt installed" in why
    report = highstate_report.sign(private, MINION, JID, 0, copy.deepcopy(STATES))
    data, why = highstate_report.verified(str(tmp_path / "absent"), MINION, JID, report)
    assert data is None and why == "no key is accepted for that id on this master"
