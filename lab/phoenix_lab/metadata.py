"""The EC2 instance metadata service, one stand-in per lab instance (IMDSv2 on loopback).

Each stand-in serves what Phoenix reads from IMDS: a session token (``PUT
/latest/api/token``), the instance id, address and zone, and the instance identity document
with its signature. Documents are pretty-printed JSON in AWS's field order, signed
RSASSA-PKCS1-v1_5 with SHA-256 over their exact bytes, as AWS signs them, but by the lab's own
key: the masters are given the lab's certificate (``phoenix.keys.identity_certificates``), so
attested enrolment runs end to end. A process points the SDK at its instance's stand-in
with ``AWS_EC2_METADATA_SERVICE_ENDPOINT``.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from phoenix_lab.emulator import REGION

# The emulator's account: documents name it, so the masters find instances in it.
ACCOUNT_ID = "123456789012"
ENDPOINT_VARIABLE = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
# Header names, not secrets.
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"  # noqa: S105
TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105


class Signer:
    """The lab's stand-in for AWS's signing key: an RSA key and a self-signed certificate
    for it. ``certificate_pem`` is what the masters are configured to trust."""

    def __init__(
        self, common_name: str = "Phoenix lab instance identity", key_size: int = 2048
    ) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(self._key, hashes.SHA256())
        )
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, document: bytes) -> str:
        """AWS's signature format: base64 of RSASSA-PKCS1-v1_5 with SHA-256."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = self._key.sign(document, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()


@functools.cache
def lab_signer() -> Signer:
    """The one signer of this process's lab: every stand-in signs with it, and every stack's
    ``phoenix:`` block trusts its certificate."""
    return Signer()


def identity_document(
    instance_id: str,
    private_ip: str = "10.0.0.10",
    pending_time: datetime.datetime | None = None,
    account_id: str = ACCOUNT_ID,
    region: str = REGION,
    zone: str | None = None,
) -> bytes:
    """A document shaped as IMDS serves one (pretty-printed, AWS's field order)."""
    pending = pending_time or datetime.datetime.now(datetime.timezone.utc)
    fields: dict[str, Any] = {
        "accountId": account_id,
        "architecture": "x86_64",
        "availabilityZone": zone or f"{region}a",
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": "ami-0123456789abcdef0",
        "instanceId": instance_id,
        "instanceType": "t3.small",
        "kernelId": None,
        "pendingTime": pending.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "privateIp": private_ip,
        "ramdiskId": None,
        "region": region,
        "version": "2017-09-30",
    }
    return json.dumps(fields, indent=2, separators=(",", " : ")).encode()


@dataclass
class InstanceMetadata:
    """What one instance's stand-in serves."""

    instance_id: str
    private_ip: str
    document: bytes
    signature: str
    zone: str = f"{REGION}a"
    tokens: set[str] = field(default_factory=set)

    def answer(self, path: str) -> str | None:
        answers = {
            "/latest/meta-data/instance-id": self.instance_id,
            "/latest/meta-data/local-ipv4": self.private_ip,
            "/latest/meta-data/placement/availability-zone": self.zone,
            "/latest/dynamic/instance-identity/document": self.document.decode(),
            "/latest/dynamic/instance-identity/signature": self.signature,
        }
        return answers.get(path)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_PUT(self) -> None:
        if self.path != "/latest/api/token" or not self.headers.get(TOKEN_TTL_HEADER):
            self._send(400, "")
            return
        token = secrets.token_urlsafe(24)
        self.server.metadata.tokens.add(token)
        # IMDS says how long the token lives; the SDK's client refuses a token without it.
        self._send(200, token, {TOKEN_TTL_HEADER: self.headers[TOKEN_TTL_HEADER]})

    def do_GET(self) -> None:
        # IMDSv2 only: a read without a session token is refused, as on the stack's instances.
        if self.headers.get(TOKEN_HEADER) not in self.server.metadata.tokens:
            self._send(401, "")
            return
        answer = self.server.metadata.answer(self.path)
        self._send(404, "") if answer is None else self._send(200, answer)

    def _send(self, status: int, body: str, headers: Mapping[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, metadata: InstanceMetadata) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.metadata = metadata


class MetadataService:
    """The stand-ins of a lab's instances, each on its own loopback port, all signing with
    one ``Signer``."""

    def __init__(self, signer: Signer | None = None) -> None:
        self.signer = signer or lab_signer()
        self._servers: dict[str, _Server] = {}
        self._lock = threading.Lock()

    def serve(
        self,
        instance_id: str,
        private_ip: str = "10.0.0.10",
        pending_time: datetime.datetime | None = None,
    ) -> str:
        """Starts (once) the stand-in of ``instance_id``, launched at ``pending_time`` (now
        by default); returns its endpoint URL."""
        with self._lock:
            server = self._servers.get(instance_id)
            if server is None:
                document = identity_document(instance_id, private_ip, pending_time)
                server = _Server(
                    InstanceMetadata(instance_id, private_ip, document, self.signer.sign(document))
                )
                threading.Thread(
                    target=server.serve_forever, name=f"imds-{instance_id}", daemon=True
                ).start()
                self._servers[instance_id] = server
            return f"http://127.0.0.1:{server.server_address[1]}"

    def env(self, instance_id: str, **kwargs: Any) -> dict[str, str]:
        """The environment that points a process at ``instance_id``'s stand-in."""
        return {ENDPOINT_VARIABLE: self.serve(instance_id, **kwargs)}

    def trust(self) -> Mapping[str, str]:
        """``phoenix.keys.identity_certificates`` for the masters: the lab's certificate."""
        return {REGION: self.signer.certificate_pem}

    def stop(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.shutdown()
            server.server_close()
