"""``phoenix master-bootstrap``: a master picks up where the old one left off.

Run from user data before salt-master starts: the cluster's one master key pair (created
exactly once, whoever boots first), installed into this master's pki dir; the master
registered as ``launching``; then every live minion whose key the registry pinned
pre-accepted, so that a replacement master serves every minion at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Salt's default for `keysize` (the master's own key pair).
DEFAULT_KEYSIZE = 2048


def generate_key_pair(keysize: int) -> tuple[str, str]:
    """A fresh RSA pair in the PEM forms Salt writes itself (the private key in OpenSSL's
    traditional form, the public key as SubjectPublicKeyInfo): a candidate for the cluster's
    pair."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=keysize)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def check_pair(private_pem: str, public_pem: str) -> None:
    """Raises ValueError unless ``public_pem`` is the public half of ``private_pem``."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    public = serialization.load_pem_public_key(public_pem.encode())
    if private.public_key().public_numbers() != public.public_numbers():  # type: ignore[union-attr]
        raise ValueError("master.pub is not the public half of master.pem")


def bootstrap(opts: Mapping[str, Any], replace_local_key: bool = False) -> dict[str, Any]:
    """The bootstrap of one master whose Salt options are ``opts``; returns what it did."""
    from phoenix_salt import ConflictError, _core, keys
    from phoenix_salt import config as phoenix_config

    config = phoenix_config.load(opts)
    pki_dir = keys.pki_dir(opts)
    private, public = generate_key_pair(int(opts.get("keysize") or DEFAULT_KEYSIZE))
    pair = _core.master_key_pair(config, private, public)
    try:
        check_pair(pair["master.pem"], pair["master.pub"])
    except ValueError as exc:
        raise ConflictError(f"the cluster's master key pair is unusable: {exc}") from exc
    installed = _core.install_master_key(
        pki_dir, pair["master.pem"], pair["master.pub"], replace_local_key
    )
    registered = _register(config)
    manager = _core.KeyManager(config, pki_dir)
    plan = manager.plan()
    seeded = []
    for action in plan["actions"]:
        if action["action"] == "pre_seed" and manager.pre_seed(action["id"], action["public_key"]):
            seeded.append(action["id"])
    return {
        "key_pair": pair["origin"],
        "secret": config.master_key_secret,
        "installed": installed,
        "pki_dir": pki_dir,
        "pre_seeded": seeded,
        "registered": registered,
    }


def _register(config: Any) -> dict[str, Any] | None:
    """Registers this master as ``launching``. Not fatal when it fails: the master's engine
    registers it (as running) once salt-master serves, so a master whose registry write
    failed here still joins; only its own minion's key waits until then."""
    import logging

    from phoenix_salt import PhoenixError, _core

    try:
        return _core.register_booting_master(config)
    except PhoenixError as exc:
        logging.getLogger(__name__).warning(
            "phoenix: this master was not registered as launching (its engine registers it "
            "once salt-master serves): %s",
            exc,
        )
        return None
