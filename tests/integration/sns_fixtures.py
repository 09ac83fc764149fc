"""SNS as the tests play it: a CA and a server certificate for a local HTTPS server that
serves the signing certificate and answers subscription confirmations, a signing key and
its certificate, and messages signed the way SNS signs them."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from phoenix_lab.ports import free_port

CERT_PATH = "/SimpleNotificationService-test.pem"
CONFIRM_PATH = "/confirm"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[str, rsa.RSAPrivateKey] | None = None,
    ca: bool = False,
    dns_name: str | None = None,
) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns_name:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class FakeSns:
    """The SNS side of a test: its HTTPS endpoint on localhost, its signing key."""

    workdir: Path
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca_key, server_key, self.signing_key = _key(), _key(), _key()
        ca = _certificate("Phoenix test CA", ca_key, ca=True)
        server = _certificate(
            "localhost", server_key, issuer=("Phoenix test CA", ca_key), dns_name="localhost"
        )
        self.signing_cert = _pem(_certificate("sns.test.invalid", self.signing_key))
        self.ca_bundle = self.workdir / "ca.pem"
        self.ca_bundle.write_bytes(_pem(ca))
        (self.workdir / "server.pem").write_bytes(_pem(server))
        (self.workdir / "server.key").write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.port = free_port(["127.0.0.1"])
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    def settings(self, topic: str) -> dict[str, Any]:
        """The ``phoenix.sns`` block that trusts this endpoint, as an operator would write
        it for a private CA and a host of their own."""
        return {
            "topics": [topic],
            "cert_hosts": ["^localhost:[0-9]+$"],
            "ca_bundle": str(self.ca_bundle),
        }

    def start(self) -> None:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if self.path == CERT_PATH:
                    body = fake.signing_cert
                elif self.path.startswith(CONFIRM_PATH):
                    body = b"<ConfirmSubscriptionResponse/>"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.workdir / "server.pem", self.workdir / "server.key")
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def sign(self, message: dict[str, Any], version: str = "2") -> str:
        """``message`` with SigningCertURL, SignatureVersion and Signature as SNS adds them,
        as the JSON text SNS POSTs."""
        signed = {
            **message,
            "SignatureVersion": version,
            "SigningCertURL": self.base_url + CERT_PATH,
        }
        if signed["Type"] == "Notification":
            names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn"]
            names.append("Type")
        text = "".join(f"{name}\n{signed[name]}\n" for name in names if name in signed)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1
        signature = self.signing_key.sign(text.encode(), padding.PKCS1v15(), digest)
        signed["Signature"] = base64.b64encode(signature).decode()
        return json.dumps(signed)


def sns_time(when: datetime | None = None) -> str:
    moment = when or datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
