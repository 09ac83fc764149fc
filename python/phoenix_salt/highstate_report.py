"""A first highstate's report, signed by the minion that ran it.

Salt cannot tell a master who sent a job return. An accepted minion can fire
``salt/job/<jid>/ret/<any id>`` with any data (Salt's minion event blacklist does not cover
it, and ``event.fire_master`` with a ``preload`` of ``events`` sets every field); it can
send ``_syndic_return`` with returns for any id, and on Salt 3008 a ``_return`` whose
``resource_id`` is any id: both are written into the master's job cache and fired as that
id's return. Every minion sees each job id on the publish channel. Salt's own
``minion_sign_messages`` does not help either: on 3008 the signed load holds the minion's
event ``_stamp``, which the master overwrites before firing the return event, so the event
no longer verifies.

So the first highstate runs as ``phoenix_highstate.apply`` on the minion, which runs
``state.apply`` and signs what it reports (this module's ``statement``: the minion id, the
job id, the retcode and the states) with the minion's own key. The engine takes a return
only when that signature verifies with the key accepted for the minion's id (with
``keys.trust: identity_document``, the key the registry pinned on AWS's word). A forger has
no other minion's private key; a replayed report names another job.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from typing import Any

FORMAT = "phoenix-first-highstate/1"
# One of the RSA signatures every supported Salt makes and checks (salt.crypt).
ALGORITHM = "PKCS1v15-SHA224"


def statement(minion_id: str, jid: str, retcode: int, states: Any) -> bytes:
    """The bytes the minion signs: canonical JSON, which a return's trip through Salt's
    msgpack does not change (keys sorted, ASCII, bytes and other non-JSON values by their
    ``repr``)."""
    return json.dumps(
        {"format": FORMAT, "id": minion_id, "jid": jid, "retcode": retcode, "states": states},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=repr,
    ).encode("ascii")


def sign(private_key: str, minion_id: str, jid: str, retcode: int, states: Any) -> dict[str, Any]:
    """The report of a state run, signed with the PEM private key at ``private_key``."""
    import salt.crypt

    signature = salt.crypt.sign_message(
        private_key, statement(minion_id, jid, retcode, states), algorithm=ALGORITHM
    )
    return {
        "format": FORMAT,
        "retcode": retcode,
        "states": states,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def verified(public_key: str, minion_id: str, jid: str, report: Any) -> tuple[Any, str | None]:
    """``(data, None)`` when ``report`` (a job's return) is ``minion_id``'s signed report of
    job ``jid``, checked with the PEM public key at ``public_key``; ``data`` is what the
    core reads (``{"return": states, "retcode": retcode}``). Else ``(None, why)``."""
    import salt.crypt

    signed = _signed_parts(report)
    if isinstance(signed, str):
        return None, signed
    retcode, signature = signed
    if not os.path.isfile(public_key):
        return None, "no key is accepted for that id on this master"
    try:
        message = statement(minion_id, jid, retcode, report.get("states"))
    except (TypeError, ValueError) as exc:
        return None, f"its states cannot be put in canonical form ({exc})"
    if not salt.crypt.verify_signature(public_key, message, signature, algorithm=ALGORITHM):
        return None, "its signature is not that of the key accepted for that id and job"
    return {"return": report.get("states"), "retcode": retcode}, None


def _signed_parts(report: Any) -> tuple[int, bytes] | str:
    """The report's retcode and signature, or why it is not a signed report."""
    if not isinstance(report, Mapping) or report.get("format") != FORMAT:
        return (
            "it is not a signed Phoenix report (is phoenix-salt installed on the minion, and "
            "phoenix_highstate.apply loaded?)"
        )
    retcode, encoded = report.get("retcode"), report.get("signature")
    if not isinstance(retcode, int) or not isinstance(encoded, str):
        return "its report has no retcode or signature"
    try:
        return retcode, base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "its signature is not base64"
