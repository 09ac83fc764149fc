"""Benchmark: verifying identity claims in the core against a plain-Python reference.

Signs N claims with a 1024-bit key, as AWS signs identity documents (the lab's signer stands
in for AWS), then verifies every one with `phoenix_salt._core.ClaimVerifier` (what an
engine does for each claim before it touches the registry) and with the reference below,
which makes the same checks with the `cryptography` package: the message read, the document
decoded, the RSASSA-PKCS1-v1_5 SHA-256 signature verified, the instance, account, region and
launch window compared. Both must accept the good claims and refuse the tampered ones.
Prints claims per second and the ratio; no timing assertion.

    .venv/bin/python bench/keys/bench_claims.py [N]
"""

import base64
import datetime
import json
import sys
import time

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from phoenix_lab.metadata import ACCOUNT_ID, Signer, identity_document
from phoenix_salt import _core

REGION = "us-east-1"
WINDOW_S = 900


def claims(signer, count, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    bodies = []
    for number in range(count):
        instance = f"i-{number:017x}"
        document = identity_document(instance, pending_time=now)
        bodies.append(_core.claim_message(instance, document, signer.sign(document), public_key))
    return bodies


def tampered(body):
    """The same claim with one byte of the document changed."""
    message = json.loads(body)
    document = bytearray(base64.b64decode(message["document"]))
    document[document.index(b'"t3.small"') + 2] ^= 1
    message["document"] = base64.b64encode(bytes(document)).decode()
    return json.dumps(message)


class Reference:
    """The same checks in plain Python with `cryptography`."""

    def __init__(self, certificate_pem):
        self.key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()

    def verify(self, body, now_ms):
        message = json.loads(body)
        document = base64.b64decode(message["document"], validate=True)
        signature = base64.b64decode(message["signature"])
        try:
            self.key.verify(signature, document, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return None
        fields = json.loads(document)
        pending = datetime.datetime.fromisoformat(fields["pendingTime"].replace("Z", "+00:00"))
        age_ms = now_ms - int(pending.timestamp() * 1000)
        if (
            fields["instanceId"] != message["instance_id"]
            or fields["accountId"] != ACCOUNT_ID
            or fields["region"] != REGION
            or not -300_000 <= age_ms <= WINDOW_S * 1000
        ):
            return None
        return fields["instanceId"]


def per_second(count, seconds):
    return count / seconds if seconds else float("inf")


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    import salt.crypt

    _private, public_key = salt.crypt.gen_keys(2048)
    signer = Signer("bench signer", key_size=1024)
    config = _core.Config.from_json(
        json.dumps(
            {
                "cluster": "bench",
                "region": REGION,
                "keys": {
                    "account_id": ACCOUNT_ID,
                    "identity_certificates": {REGION: signer.certificate_pem},
                },
            }
        )
    )
    core = _core.ClaimVerifier(config)
    reference = Reference(signer.certificate_pem)
    good = claims(signer, count, public_key)
    bad = [tampered(body) for body in good[:50]]
    now_ms = int(time.time() * 1000)

    for body in bad:
        assert reference.verify(body, now_ms) is None
        try:
            core.verify(body, now_ms)
        except _core.ClaimError as exc:
            assert exc.reason == "bad_signature", exc.reason
        else:
            raise AssertionError("the core accepted a tampered claim")

    started = time.perf_counter()
    core_ids = [core.verify(body, now_ms)["instance_id"] for body in good]
    core_s = time.perf_counter() - started
    started = time.perf_counter()
    reference_ids = [reference.verify(body, now_ms) for body in good]
    reference_s = time.perf_counter() - started
    assert core_ids == reference_ids, "the core and the reference disagree"

    print(
        f"identity claims verified: {count} valid (1024-bit RSA, as AWS signs), 50 tampered refused"
    )
    print(f"  core (ClaimVerifier.verify):   {per_second(count, core_s):10.0f} claims/s")
    print(f"  reference (cryptography):      {per_second(count, reference_s):10.0f} claims/s")
    print(f"  ratio core/reference:          {reference_s / core_s:10.2f}x")


if __name__ == "__main__":
    main()
