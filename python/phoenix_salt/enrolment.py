"""An instance's identity claim for its minion key (attested enrolment, docs/keys.md).

At first boot, before salt-minion starts, ``phoenix minion-config`` makes the minion's key
pair in Salt's pki dir (Salt's own key writer, so salt-minion finds the key it expects) and
sends a claim: the instance identity document and AWS's signature of it, read from IMDSv2,
with the public key. A master's engine verifies the claim and pins the key; every master
then accepts that key, and only that key, for the instance.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phoenix_salt._core import Config

# Salt's file names for a minion's key pair in its pki dir.
PRIVATE_KEY = "minion.pem"
PUBLIC_KEY = "minion.pub"


def minion_public_key(pki_dir: str | os.PathLike[str], keysize: int = 2048) -> str:
    """The minion's public key (PEM) in ``pki_dir``, made first (with Salt's own key writer,
    mode 0400 for the private key) when there is none. An existing pair is kept as it is."""
    import salt.crypt

    directory = Path(pki_dir)
    public = directory / PUBLIC_KEY
    if not (directory / PRIVATE_KEY).is_file():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        # Salt 3008 calls the writer write_keys; 3006 and 3007 call it gen_keys.
        writer = getattr(salt.crypt, "write_keys", None) or salt.crypt.gen_keys
        writer(str(directory), "minion", keysize)
    if not public.is_file():
        raise FileNotFoundError(
            2,
            f"{PRIVATE_KEY} exists without {PUBLIC_KEY}: remove both to make a new pair",
            str(public),
        )
    return public.read_text()


def claim(
    config: Config,
    minion_id: str,
    pki_dir: str | os.PathLike[str],
    keysize: int = 2048,
    imds_endpoint: str | None = None,
) -> dict[str, Any]:
    """Makes the key pair if needed and sends this instance's claim for it; returns
    ``{"instance_id", "fingerprint", "message_id"}``. Sending the same claim again is
    harmless: the key it pins is the same."""
    from phoenix_salt import _core

    public_key = minion_public_key(pki_dir, keysize)
    sent: dict[str, Any] = _core.send_claim(config, minion_id, public_key, imds_endpoint)
    return sent
