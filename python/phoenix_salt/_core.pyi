"""Type stubs of the native core, checked against the built module by mypy.stubtest."""

import os
from typing import Any, Literal, NotRequired, TypedDict, final

__all__ = [
    "AwsError",
    "ClaimError",
    "ClaimVerifier",
    "Config",
    "ConfigError",
    "ConflictError",
    "Engine",
    "FirstHighstate",
    "InternalError",
    "KeyManager",
    "MasterFollower",
    "MessageError",
    "NotFoundError",
    "PhoenixError",
    "Session",
    "SnsReceiver",
    "__version__",
    "claim_message",
    "enrolment_status",
    "install_master_key",
    "master_instance_id",
    "master_key_pair",
    "order_masters",
    "parse_message",
    "pem_fingerprint",
    "plan_key_actions",
    "read_drop_in",
    "register_booting_master",
    "salt_write_in_flight",
    "send_claim",
    "write_minion_config",
]

__version__: str

class PhoenixError(Exception): ...

class ConfigError(PhoenixError):
    key: str

class AwsError(PhoenixError):
    service: str
    operation: str
    code: str | None
    retryable: bool

class NotFoundError(PhoenixError):
    code: str | None

class ConflictError(PhoenixError): ...

class MessageError(PhoenixError):
    reason: str

class ClaimError(PhoenixError):
    reason: str

class InternalError(PhoenixError): ...

# The dead-letter queue (Session.dead_letters, Session.redrive_dead_letters). Type-only:
# the module returns plain dicts of this shape.
class _DeadLetter(TypedDict):
    message_id: str
    receive_count: int
    body: str
    # applies: the engine would apply it; ignored: delete it unapplied; refused: reject it.
    verdict: Literal["applies", "ignored", "refused"]
    # applies
    event: NotRequired[str]
    role: NotRequired[str]
    instance_id: NotRequired[str]
    group: NotRequired[str]
    time_ms: NotRequired[int]
    # ignored and refused
    reason: NotRequired[str]
    # ignored
    detail: NotRequired[str]
    # refused
    error: NotRequired[str]

class _DeadLetters(TypedDict):
    dead_letter_queue_url: str
    messages: list[_DeadLetter]

class _NotMoved(TypedDict):
    message_id: str
    error: str

class _Redrive(TypedDict):
    dead_letter_queue_url: str
    moved: list[str]
    kept: list[_DeadLetter]
    failed: list[_NotMoved]
    dry_run: bool

@final
class Config:
    @staticmethod
    def from_json(json: str) -> Config: ...
    @property
    def cluster(self) -> str: ...
    def to_json(self) -> str: ...

@final
class Session:
    def __new__(cls, config: Config) -> Session: ...
    def region(self) -> str: ...
    def create_registry_tables(self) -> list[tuple[str, bool]]: ...
    def describe_table(self, name: str) -> dict[str, object]: ...
    def list_instances(self, role: str) -> list[dict[str, Any]]: ...
    def get_instance(self, role: str, instance_id: str) -> dict[str, Any] | None: ...
    def live_masters(self) -> list[dict[str, str]]: ...
    def dead_letters(self, max: int = 100) -> _DeadLetters: ...
    def redrive_dead_letters(self, max: int = 100, dry_run: bool = False) -> _Redrive: ...

@final
class Engine:
    def __new__(cls, config: Config) -> Engine: ...
    def register_master(self) -> dict[str, Any]: ...
    def heartbeat(self) -> list[dict[str, Any]]: ...
    def poll(self, wait_seconds: int = 20) -> dict[str, Any]: ...
    def poll_claims(self, wait_seconds: int = 20) -> dict[str, Any]: ...
    def apply_body(self, body: str) -> dict[str, Any]: ...

@final
class FirstHighstate:
    def __new__(cls, config: Config) -> FirstHighstate: ...
    def master_id(self) -> str: ...
    def claim(self, minion_id: str, master: str, jid: str, mode: str) -> dict[str, Any]: ...
    def finish(self, minion_id: str, jid: str, job_return: str) -> dict[str, Any]: ...
    def fail(self, minion_id: str, jid: str, error: str) -> dict[str, Any]: ...
    def sweep(self, master: str) -> dict[str, Any]: ...
    def status(self, minion_id: str) -> dict[str, Any] | None: ...
    def pending(self) -> list[dict[str, Any]]: ...

@final
class ClaimVerifier:
    def __new__(cls, config: Config) -> ClaimVerifier: ...
    def verify(self, body: str, now_ms: int | None = None) -> dict[str, Any]: ...

@final
class SnsReceiver:
    def __new__(cls, config: Config) -> SnsReceiver: ...
    def check(self, body: str) -> dict[str, Any]: ...
    def receive(self, body: str, cert_pem: str) -> dict[str, Any]: ...
    @property
    def ca_bundle(self) -> str | None: ...

@final
class KeyManager:
    def __new__(cls, config: Config, pki_dir: str | os.PathLike[str]) -> KeyManager: ...
    def plan(self, minion_id: str | None = None) -> dict[str, Any]: ...
    def pin(
        self, minion_id: str, role: str, fingerprint: str, public_key: str, pinned_by: str
    ) -> dict[str, Any]: ...
    def record_seeded(self, minion_id: str, role: str, fingerprint: str, master: str) -> bool: ...
    def fingerprint(self, minion_id: str, state: str) -> str | None: ...
    def pre_seed(self, minion_id: str, public_key: str) -> bool: ...

@final
class MasterFollower:
    def __new__(
        cls,
        config: Config,
        minion_id: str,
        drop_in_path: str | os.PathLike[str],
        own_master: str | None = None,
    ) -> MasterFollower: ...
    def check(
        self, master: str | None, masters: list[str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]: ...
    def restart_failed(self, error: str) -> dict[str, Any]: ...
    def health(self) -> dict[str, Any]: ...
    @property
    def minion_id(self) -> str: ...
    @property
    def drop_in_path(self) -> str: ...

def install_master_key(
    pki_dir: str | os.PathLike[str], private_pem: str, public_pem: str, replace: bool
) -> str: ...
def master_key_pair(config: Config, private_pem: str, public_pem: str) -> dict[str, str]: ...
def register_booting_master(config: Config) -> dict[str, Any]: ...
def order_masters(
    minion_id: str, master_ids: list[str], own_master: str | None = None
) -> list[str]: ...
def claim_message(instance_id: str, document: bytes, signature: str, public_key: str) -> str: ...
def enrolment_status(config: Config, minion_id: str) -> dict[str, Any]: ...
def master_instance_id(config: Config) -> str: ...
def read_drop_in(drop_in_path: str | os.PathLike[str]) -> list[str] | None: ...
def parse_message(body: str) -> dict[str, Any]: ...
def pem_fingerprint(pem: str) -> str: ...
def plan_key_actions(
    registry: list[dict[str, object]],
    local: list[dict[str, object]],
    unmanaged: list[str],
    trust: str = "identity_document",
) -> list[dict[str, str]]: ...
def salt_write_in_flight(path: str | os.PathLike[str]) -> bool: ...
def send_claim(
    config: Config, minion_id: str, public_key: str, imds_endpoint: str | None = None
) -> dict[str, Any]: ...
def write_minion_config(
    config: Config,
    minion_id: str,
    drop_in_path: str | os.PathLike[str],
    own_master: str | None = None,
    starting_master_address: str | None = None,
) -> dict[str, Any]: ...
