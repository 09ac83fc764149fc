"""Type stubs of the native core, checked against the built module by mypy.stubtest."""

import os
from typing import Any, final

__all__ = [
    "AwsError",
    "Config",
    "ConfigError",
    "ConflictError",
    "Engine",
    "InternalError",
    "KeyManager",
    "MasterFollower",
    "MessageError",
    "NotFoundError",
    "PhoenixError",
    "Session",
    "__version__",
    "install_master_key",
    "master_key_pair",
    "order_masters",
    "parse_message",
    "pem_fingerprint",
    "plan_key_actions",
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

class InternalError(PhoenixError): ...

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

@final
class Engine:
    def __new__(cls, config: Config) -> Engine: ...
    def register_master(self) -> dict[str, Any]: ...
    def heartbeat(self) -> list[dict[str, Any]]: ...
    def poll(self, wait_seconds: int = 20) -> dict[str, Any]: ...
    def apply_body(self, body: str) -> dict[str, Any]: ...

@final
class KeyManager:
    def __new__(cls, config: Config, pki_dir: str | os.PathLike[str]) -> KeyManager: ...
    def plan(self, minion_id: str | None = None) -> dict[str, Any]: ...
    def pin(
        self, minion_id: str, role: str, fingerprint: str, public_key: str, pinned_by: str
    ) -> dict[str, Any]: ...
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
def order_masters(
    minion_id: str, master_ids: list[str], own_master: str | None = None
) -> list[str]: ...
def parse_message(body: str) -> dict[str, Any]: ...
def pem_fingerprint(pem: str) -> str: ...
def plan_key_actions(
    registry: list[dict[str, object]], local: list[dict[str, object]], unmanaged: list[str]
) -> list[dict[str, str]]: ...
def write_minion_config(
    config: Config,
    minion_id: str,
    drop_in_path: str | os.PathLike[str],
    own_master: str | None = None,
    starting_master_address: str | None = None,
) -> dict[str, Any]: ...
