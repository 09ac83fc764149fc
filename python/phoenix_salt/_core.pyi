"""Type stubs of the native core, checked against the built module by mypy.stubtest."""

import os
from typing import Literal, NotRequired, TypeAlias, TypedDict, final

__all__ = [
    "INSTANCE_TAG_PREFIX",
    "INSTANCE_TERMINATED_TAGS",
    "RECONCILED_ACTIONS_MAX",
    "AwsError",
    "AwsSettings",
    "BeaconSettings",
    "ClaimError",
    "ClaimVerifier",
    "Config",
    "ConfigError",
    "ConflictError",
    "DropInSettings",
    "Engine",
    "FirstHighstate",
    "HighstateSettings",
    "InternalError",
    "KeyManager",
    "KeySettings",
    "MasterFollower",
    "MessageError",
    "NotFoundError",
    "PhoenixError",
    "ReplacementSettings",
    "RetrySettings",
    "Session",
    "SnsReceiver",
    "SnsSettings",
    "__version__",
    "claim_message",
    "enrolment_status",
    "install_master_key",
    "key_mismatch_event",
    "key_pinned_by_operator_event",
    "key_reconciled_event",
    "master_instance_id",
    "master_key_pair",
    "order_masters",
    "parse_message",
    "pem_fingerprint",
    "plan_key_actions",
    "push_rejected_event",
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

# Type-only shapes of the plain dicts the module returns (json.loads of serde output, or
# dicts built in src/bindings/): none of these names exists at runtime.

_Role: TypeAlias = Literal["master", "minion"]
_InstanceState: TypeAlias = Literal["launching", "running", "terminating", "terminated"]
_EventKind: TypeAlias = Literal[
    "launching", "launched", "launch_failed", "terminating", "terminated", "terminate_failed"
]
_KeyTrust: TypeAlias = Literal["identity_document", "first_key"]
_MasterType: TypeAlias = Literal["str", "failover"]
# How a message reached the queue.
_Delivery: TypeAlias = Literal["direct", "sns", "event_bridge"]
_LocalKeyState: TypeAlias = Literal["accepted", "pending", "rejected", "denied"]
_HighstateStatus: TypeAlias = Literal["running", "retrying", "succeeded", "failed"]
# How a launch lifecycle action was completed.
_LaunchResult: TypeAlias = Literal["continue", "abandon"]
_MessageOutcome: TypeAlias = Literal["done", "retry", "rejected"]
_SnsType: TypeAlias = Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
_RestartReason: TypeAlias = Literal[
    "current_master_left", "not_connected", "better_master", "master_joined", "every_master_left"
]

# The configuration.
class _IdentityCertificate(TypedDict):
    # Where it comes from: AWS's bundle, or the configured file or setting.
    name: str
    # {"region": "eu-west-1"}, or "other_regions" for AWS's certificate of every region
    # without one of its own.
    serves: dict[str, str] | Literal["other_regions"]
    subject: str
    not_after: str
    key_bits: int

# The registry.
class _TableDescription(TypedDict):
    name: str
    status: str
    # (attribute, "HASH" | "RANGE")
    key_schema: list[tuple[str, str]]
    item_count: int

class _LiveMaster(TypedDict):
    instance_id: str
    address: str

class _LifecycleAction(TypedDict):
    hook_name: str
    token: str
    group: str

class _RetireHook(TypedDict):
    hook: _LifecycleAction
    due_ms: int

class _KeyPin(TypedDict):
    fingerprint: str
    pinned_ms: int
    pinned_by: str

class _FailedState(TypedDict):
    id: str
    # The state function, like pkg.installed.
    function: str
    name: str
    comment: str

class _HighstateRecord(TypedDict):
    status: _HighstateStatus
    attempt: int
    master: str
    jid: str
    started_ms: int
    deadline_ms: int
    finished_ms: int | None
    next_attempt_ms: int | None
    states: int
    changed: int
    failed_count: int
    # The first failed states (at most 10); failed_count counts them all.
    failed_states: list[_FailedState]
    error: str | None
    rerun: bool

class _InstanceRecord(TypedDict):
    instance_id: str
    role: _Role
    state: _InstanceState
    group: str | None
    availability_zone: str | None
    address: str | None
    # Time of the event that set the current state.
    event_ms: int
    launch_ms: int | None
    heartbeat_ms: int | None
    # DynamoDB TTL, in epoch seconds.
    expires_at: int | None
    launch_hook: _LifecycleAction | None
    retire_hook: _RetireHook | None
    key: _KeyPin | None
    first_highstate: _HighstateRecord | None

# Bus events, {"tag": ..., "data": ...}: the data of each tag, then the events each call
# can return.

# phoenix/instance/<id>/launched and .../terminated
class _InstanceChanged(TypedDict):
    instance_id: str
    role: _Role
    group: str
    state: _InstanceState
    event: _EventKind
    time_ms: int
    delivery: _Delivery

# phoenix/message/rejected
class _MessageRejected(TypedDict):
    message_id: str
    receive_count: int
    reason: str
    error: str

# phoenix/message/rejected for a message SNS pushed to salt-api (push_rejected_event)
class _PushRejected(TypedDict):
    message_id: str | None
    delivery: Literal["sns_push"]
    reason: str
    error: str

# phoenix/message/ignored
class _MessageIgnored(TypedDict):
    message_id: str
    reason: str
    detail: str

# phoenix/masters/changed
class _MastersChanged(TypedDict):
    masters: list[_LiveMaster]
    previous: list[_LiveMaster]

# phoenix/instance/<id>/drained
class _MasterDrained(TypedDict):
    instance_id: str
    role: Literal["master"]
    lifecycle_hook: str
    lifecycle: Literal["continue"]

# phoenix/instance/<id>/unhealthy
class _MasterUnhealthy(TypedDict):
    instance_id: str
    role: Literal["master"]
    reported_by: str
    silent_for_s: float | None
    replace_after_s: float

# phoenix/key/pinned
class _KeyPinned(TypedDict):
    id: str
    role: _Role
    fingerprint: str
    pinned_by: str
    trust: Literal["identity_document"]
    certificate: str

# phoenix/key/pinned on an operator's word (key_pinned_by_operator_event)
class _KeyPinnedByOperator(TypedDict):
    id: str
    role: str
    fingerprint: str
    pinned_by: str
    trust: Literal["operator"]

# phoenix/key/mismatch
class _KeyMismatch(TypedDict):
    id: str
    # The Salt key list the claiming key is in (pending, rejected, ...).
    key_state: str
    fingerprint: str
    # The fingerprint the registry pinned.
    pinned: str
    # What this master did about it.
    action: str
    master: str

# phoenix/key/reconciled
class _KeyReconciled(TypedDict):
    master: str
    # The first RECONCILED_ACTIONS_MAX actions done, each as the reconcile reported it.
    actions: list[dict[str, object]]
    counts: dict[str, int]
    # How many actions done the event leaves out.
    actions_left_out: NotRequired[int]

# phoenix/key/claim_refused
class _ClaimRefused(TypedDict):
    # What the claim said (untrusted, shortened).
    id: str | None
    fingerprint: str | None
    reason: str
    error: str
    # Refusals not reported since the last event.
    suppressed: int

# phoenix/highstate/<id>/started
class _HighstateStarted(TypedDict):
    minion_id: str
    attempt: int
    attempts: int
    jid: str
    master: str
    rerun: bool

# phoenix/highstate/<id>/succeeded, .../retrying and .../failed
class _HighstateEnded(TypedDict):
    minion_id: str
    attempt: int
    jid: str
    master: str
    summary: str
    states: int
    changed: int
    failed_count: int
    failed_states: list[_FailedState]
    error: str | None
    duration_s: float
    # Seconds until the next attempt (retrying).
    next_attempt_in: float | None
    lifecycle: _LaunchResult | None

class _MessageEvent(TypedDict):
    tag: str
    data: _InstanceChanged | _MessageRejected | _MessageIgnored

class _HeartbeatEvent(TypedDict):
    tag: str
    data: _MastersChanged | _MasterDrained | _MasterUnhealthy

class _ClaimEvent(TypedDict):
    tag: str
    data: _KeyPinned | _ClaimRefused

class _HighstateStartedEvent(TypedDict):
    tag: str
    data: _HighstateStarted

class _HighstateEndedEvent(TypedDict):
    tag: str
    data: _HighstateEnded

# What Python fires of its own, built by the core (the *_event functions).
class _BusEvent(TypedDict):
    tag: str
    data: _KeyPinnedByOperator | _KeyMismatch | _KeyReconciled | _PushRejected

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

# The engine.
class _MasterIdentity(TypedDict):
    instance_id: str
    address: str
    group: str
    availability_zone: str | None

class _BootingMaster(_MasterIdentity):
    # What registering it as launching did to its row.
    registered: Literal["moved", "already_newer"]

class _Poll(TypedDict):
    received: int
    deleted: int
    # Applied but not deleted: they come back and change nothing.
    delete_failed: int
    retry: int
    # Of retry: hidden for their retry delay.
    postponed: int
    rejected: int
    # Of rejected: moved to the dead-letter queue at once.
    dead_lettered: int
    sqs_calls: int
    events: list[_MessageEvent]

class _Applied(TypedDict):
    outcome: _MessageOutcome
    events: list[_MessageEvent]

class _ClaimPoll(TypedDict):
    received: int
    # Ids whose key this poll pinned, or found pinned with the claimed key.
    pinned: list[str]
    refused: int
    retry: int
    delete_failed: int
    events: list[_ClaimEvent]

# First highstates.
class _HighstateClaim(TypedDict):
    minion_id: str
    mode: Literal["first", "retry", "rerun"]
    claimed: bool
    attempt: int | None
    jid: str
    skip: Literal["not_live", "succeeded", "failed", "running", "retry_not_due"] | None
    reason: str | None
    record: _HighstateRecord | None
    events: list[_HighstateStartedEvent]

class _HighstateFinish(TypedDict):
    minion_id: str
    jid: str
    recorded: bool
    reason: str | None
    record: _HighstateRecord | None
    lifecycle: _LaunchResult | None
    events: list[_HighstateEndedEvent]

class _HighstateSweep(TypedDict):
    retry_due: list[str]
    timed_out: list[str]
    # [instance id, "continue" | "abandon"] pairs (JSON arrays, so lists).
    completed: list[list[str]]
    heartbeats: int
    failures: int
    events: list[_HighstateEndedEvent]

# Identity claims.
class _VerifiedClaim(TypedDict):
    instance_id: str
    fingerprint: str
    # The name of the certificate that verified the signature.
    certificate: str
    launched_ms: int

class _SentClaim(TypedDict):
    instance_id: str
    fingerprint: str
    message_id: str

class _EnrolmentStatus(TypedDict):
    pinned: str | None
    # Live masters that hold the pinned key as accepted, and those that do not yet.
    seeded: list[str]
    waiting_for: list[str]

# SNS push delivery.
class _SnsChecked(TypedDict):
    type: _SnsType
    message_id: str
    topic_arn: str
    cert_url: str

class _SnsReceived(TypedDict):
    type: _SnsType
    message_id: str
    topic_arn: str
    subscribe_url: str | None
    # None for confirmations.
    outcome: _MessageOutcome | None
    events: list[_MessageEvent]

# Keys.
class _KeyAction(TypedDict):
    action: Literal["delete", "pin", "accept", "pre_seed"]
    id: str
    fingerprint: str
    # delete and pin
    state: NotRequired[_LocalKeyState]
    # delete
    reason: NotRequired[Literal["terminated", "mismatch"]]
    # delete, reason mismatch: the pinned fingerprint
    pinned: NotRequired[str]
    # pre_seed
    public_key: NotRequired[str]

class _PlannedAction(_KeyAction):
    # pin, accept and pre_seed, when the registry row was found; a pin also carries
    # public_key when the key still has the planned fingerprint.
    role: NotRequired[_Role]

class _KeyReportRow(TypedDict):
    id: str
    key_state: _LocalKeyState
    fingerprint: str
    registry_state: _InstanceState | None
    pinned: str | None
    standing: Literal["unmanaged", "unregistered", "unpinned", "pinned", "mismatch"]

class _HeldKey(TypedDict):
    id: str
    reason: str

class _KeyPlan(TypedDict):
    actions: list[_PlannedAction]
    keys: list[_KeyReportRow]
    # Denied keys that claim a live, pinned id with another key.
    mismatches: list[_KeyReportRow]
    held: list[_HeldKey]
    registry_instances: int

class _PinOutcome(TypedDict):
    outcome: Literal["pinned", "already_pinned", "pinned_other", "not_live"]
    # pinned_other: the fingerprint pinned instead
    fingerprint: NotRequired[str]

_MasterKeyPair = TypedDict(
    "_MasterKeyPair",
    {"origin": Literal["created", "existing"], "master.pem": str, "master.pub": str},
)

# Messages.
class _LifecycleMessage(TypedDict):
    type: Literal["instance", "test", "failed_launch"]
    # None only for a test message that names no group
    group: str | None
    delivery: _Delivery
    # instance
    instance_id: NotRequired[str]
    kind: NotRequired[_EventKind]
    time_ms: NotRequired[int]
    lifecycle: NotRequired[_LifecycleAction | None]
    metadata_role: NotRequired[_Role | None]
    availability_zone: NotRequired[str | None]
    # failed_launch: AWS's StatusMessage
    reason: NotRequired[str | None]

# Following the live masters.
class _FollowEvent(TypedDict):
    # Appended to the beacon's tag: salt/beacon/<minion>/master_list/<tag>.
    tag: Literal["changed", "restart", "problem"]
    # changed
    old: NotRequired[list[str] | None]
    new: NotRequired[list[str]]
    added: NotRequired[list[str]]
    removed: NotRequired[list[str]]
    restart: NotRequired[_RestartReason | None]
    restart_in: NotRequired[float | None]
    # restart
    reason: NotRequired[_RestartReason]
    master: NotRequired[str | None]
    masters: NotRequired[list[str]]
    # problem
    error: NotRequired[str]

class _RestartOrder(TypedDict):
    reason: _RestartReason
    masters: list[str]

class _RefreshHealth(TypedDict):
    reads: int
    failures: int
    # Failed reads since the last good one.
    failing_for: int
    last_error: str | None

class _Snapshot(TypedDict):
    seq: int
    masters: list[_LiveMaster]
    read_at_ms: int

class _FollowerHealth(TypedDict):
    refresh: _RefreshHealth
    snapshot: _Snapshot | None
    drop_in: str

class _MinionConfig(TypedDict):
    changed: bool
    old: list[str] | None
    masters: list[str]

@final
class Config:
    """The validated ``phoenix:`` block, every default filled in (docs/configuration.md)."""

    @staticmethod
    def from_json(json: str) -> Config:
        """Validates the block given as JSON; raises ``ConfigError`` naming the bad key."""
    def to_json(self) -> str:
        """The effective configuration as a JSON document, for showing it whole."""
    @property
    def cluster(self) -> str:
        """The cluster's name: the partition key of every registry row."""
    @property
    def region(self) -> str | None:
        """None: the SDK's chain (AWS_REGION, profile, instance metadata)."""
    @property
    def masters_table(self) -> str: ...
    @property
    def minions_table(self) -> str: ...
    @property
    def queue_url(self) -> str | None:
        """The lifecycle events queue; the engine needs it."""
    @property
    def master_key_secret(self) -> str:
        """Secrets Manager id of the masters' shared key pair."""
    @property
    def master_groups(self) -> list[str]: ...
    @property
    def minion_groups(self) -> list[str]: ...
    @property
    def pollers(self) -> int:
        """Concurrent long polls of the events queue in each master's engine."""
    @property
    def heartbeat_interval(self) -> float:
        """Seconds between two heartbeats of a master."""
    @property
    def master_stale_after(self) -> float:
        """Seconds after the last heartbeat when a master leaves the live list."""
    @property
    def serve_timeout(self) -> float:
        """Seconds salt-master has to answer the ping before each heartbeat."""
    @property
    def terminated_ttl(self) -> int:
        """Seconds a terminated instance's row is kept."""
    @property
    def master_id(self) -> str | None:
        """This master's instance id where there is no instance metadata."""
    @property
    def master_address(self) -> str | None:
        """The address minions reach this master at, where there is no instance metadata."""
    @property
    def master_drain_time(self) -> float:
        """Seconds a terminating master waits, out of the live list, before it goes."""
    @property
    def highstate_gating(self) -> bool:
        """A new minion goes InService only once its first highstate succeeded."""
    @property
    def aws(self) -> AwsSettings: ...
    @property
    def keys(self) -> KeySettings: ...
    @property
    def drop_in(self) -> DropInSettings: ...
    @property
    def beacon(self) -> BeaconSettings: ...
    @property
    def highstate(self) -> HighstateSettings: ...
    @property
    def sns(self) -> SnsSettings: ...
    @property
    def replacement(self) -> ReplacementSettings: ...
    @property
    def retry(self) -> RetrySettings: ...

@final
class AwsSettings:
    """``phoenix.aws``: timeouts and retries of every AWS client."""

    @property
    def connect_timeout(self) -> float: ...
    @property
    def attempt_timeout(self) -> float: ...
    @property
    def operation_timeout(self) -> float: ...
    @property
    def max_attempts(self) -> int: ...

@final
class KeySettings:
    """``phoenix.keys``: how the masters manage minion keys."""

    @property
    def reconcile_interval(self) -> float: ...
    @property
    def unmanaged(self) -> list[str]:
        """Exact minion ids whose keys Phoenix never touches."""
    @property
    def require_group(self) -> bool: ...
    @property
    def verify_autoscaling(self) -> bool: ...
    @property
    def enrolment_window(self) -> float: ...
    @property
    def claim_queue_url(self) -> str | None: ...
    @property
    def account_id(self) -> str | None: ...
    @property
    def trust(self) -> _KeyTrust:
        """On whose word a minion's key is pinned."""
    @property
    def identity_certificates(self) -> list[_IdentityCertificate]:
        """AWS's bundled certificates, then the configured ones."""

@final
class DropInSettings:
    """``phoenix.drop_in``: the Salt options of the minion drop-in, and where it lives."""

    @property
    def path(self) -> str | None:
        """None: ``minion.d/phoenix-masters.conf`` beside the minion's config file."""
    @property
    def master_type(self) -> _MasterType: ...
    @property
    def master_port(self) -> int: ...
    @property
    def publish_port(self) -> int | None: ...
    @property
    def master_alive_interval(self) -> int: ...
    @property
    def master_tries(self) -> int: ...
    @property
    def master_failback(self) -> bool: ...
    @property
    def master_failback_interval(self) -> int: ...
    @property
    def retry_dns(self) -> int: ...
    @property
    def auth_timeout(self) -> int: ...
    @property
    def auth_tries(self) -> int: ...
    @property
    def tcp_keepalive(self) -> bool: ...
    @property
    def tcp_keepalive_idle(self) -> int: ...
    @property
    def tcp_keepalive_cnt(self) -> int: ...
    @property
    def tcp_keepalive_intvl(self) -> int: ...

@final
class BeaconSettings:
    """``phoenix.beacon``: how a minion follows the live masters."""

    @property
    def refresh_interval(self) -> float: ...
    @property
    def restart_command(self) -> list[str] | None:
        """None: Salt's ``service.restart <restart_service>`` with ``no_block=True``."""
    @property
    def restart_service(self) -> str: ...
    @property
    def restart_jitter(self) -> float: ...
    @property
    def restart_splay(self) -> float: ...
    @property
    def min_restart_interval(self) -> float: ...

@final
class HighstateSettings:
    """``phoenix.highstate``: how the masters run every new minion's first highstate."""

    @property
    def attempts(self) -> int: ...
    @property
    def retry_delay(self) -> float: ...
    @property
    def retry_max_delay(self) -> float: ...
    @property
    def timeout(self) -> float: ...
    @property
    def check_interval(self) -> float: ...
    @property
    def lifecycle_heartbeat_interval(self) -> float: ...

@final
class SnsSettings:
    """``phoenix.sns``: SNS push delivery through salt-api's webhook."""

    @property
    def topics(self) -> list[str]: ...
    @property
    def cert_hosts(self) -> list[str]: ...
    @property
    def max_age(self) -> float: ...
    @property
    def ca_bundle(self) -> str | None: ...

@final
class ReplacementSettings:
    """``phoenix.replacement``: when the live masters report a silent peer."""

    @property
    def enabled(self) -> bool: ...
    @property
    def replace_after(self) -> float: ...
    @property
    def launch_grace(self) -> float: ...
    @property
    def max_in_flight(self) -> int: ...

@final
class RetrySettings:
    """``phoenix.retry``: when a message that failed on a passing error is tried again."""

    @property
    def first_delay(self) -> float: ...
    @property
    def max_delay(self) -> float: ...

@final
class Session:
    def __new__(cls, config: Config) -> Session: ...
    def region(self) -> str: ...
    def create_registry_tables(self) -> list[tuple[str, bool]]: ...
    def describe_table(self, name: str) -> _TableDescription: ...
    def list_instances(self, role: str) -> list[_InstanceRecord]: ...
    def get_instance(self, role: str, instance_id: str) -> _InstanceRecord | None: ...
    def live_masters(self) -> list[_LiveMaster]: ...
    def dead_letters(self, max: int = 100) -> _DeadLetters: ...
    def redrive_dead_letters(self, max: int = 100, dry_run: bool = False) -> _Redrive: ...

@final
class Engine:
    def __new__(cls, config: Config) -> Engine: ...
    def register_master(self) -> _MasterIdentity: ...
    def heartbeat(self) -> list[_HeartbeatEvent]: ...
    def poll(self, wait_seconds: int = 20) -> _Poll: ...
    def poll_claims(self, wait_seconds: int = 20) -> _ClaimPoll: ...
    def apply_body(self, body: str) -> _Applied: ...

@final
class FirstHighstate:
    def __new__(cls, config: Config) -> FirstHighstate: ...
    def master_id(self) -> str: ...
    def claim(self, minion_id: str, master: str, jid: str, mode: str) -> _HighstateClaim: ...
    def finish(self, minion_id: str, jid: str, job_return: str) -> _HighstateFinish: ...
    def fail(self, minion_id: str, jid: str, error: str) -> _HighstateFinish: ...
    def sweep(self, master: str) -> _HighstateSweep: ...
    def status(self, minion_id: str) -> _InstanceRecord | None: ...
    def pending(self) -> list[_InstanceRecord]: ...

@final
class ClaimVerifier:
    def __new__(cls, config: Config) -> ClaimVerifier: ...
    def verify(self, body: str, now_ms: int | None = None) -> _VerifiedClaim: ...

@final
class SnsReceiver:
    def __new__(cls, config: Config) -> SnsReceiver: ...
    def check(self, body: str) -> _SnsChecked: ...
    def receive(self, body: str, cert_pem: str) -> _SnsReceived: ...
    @property
    def ca_bundle(self) -> str | None: ...

@final
class KeyManager:
    def __new__(cls, config: Config, pki_dir: str | os.PathLike[str]) -> KeyManager: ...
    def plan(self, minion_id: str | None = None) -> _KeyPlan: ...
    def pin(
        self, minion_id: str, role: str, fingerprint: str, public_key: str, pinned_by: str
    ) -> _PinOutcome: ...
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
    ) -> tuple[list[_FollowEvent], _RestartOrder | None]: ...
    def restart_failed(self, error: str) -> _FollowEvent: ...
    def health(self) -> _FollowerHealth: ...
    @property
    def minion_id(self) -> str: ...
    @property
    def drop_in_path(self) -> str: ...

# What every phoenix/instance/<id>/<what> tag begins with.
INSTANCE_TAG_PREFIX: str
# Every phoenix/instance/<id>/terminated tag, in Salt's glob form (the reactor's wiring).
INSTANCE_TERMINATED_TAGS: str
# The most actions one phoenix/key/reconciled event lists.
RECONCILED_ACTIONS_MAX: int

def key_pinned_by_operator_event(id: str, role: str, fingerprint: str, pinned_by: str) -> _BusEvent:
    """``phoenix/key/pinned`` on an operator's word (``trust: operator``)."""

def key_mismatch_event(
    id: str, key_state: str, fingerprint: str, pinned: str, action: str, master: str
) -> _BusEvent:
    """``phoenix/key/mismatch``: a key claims an id the registry pinned to another."""

def key_reconciled_event(
    master: str, done: list[dict[str, object]], counts: dict[str, int]
) -> _BusEvent:
    """``phoenix/key/reconciled``: the first ``RECONCILED_ACTIONS_MAX`` of ``done`` and
    the counts of all. Raises TypeError for values that are not plain JSON."""

def push_rejected_event(message_id: str | None, reason: str, error: str) -> _BusEvent:
    """``phoenix/message/rejected`` for a refused SNS push (``delivery: sns_push``)."""

def install_master_key(
    pki_dir: str | os.PathLike[str], private_pem: str, public_pem: str, replace: bool
) -> str: ...
def master_key_pair(config: Config, private_pem: str, public_pem: str) -> _MasterKeyPair: ...
def register_booting_master(config: Config) -> _BootingMaster: ...
def order_masters(
    minion_id: str, master_ids: list[str], own_master: str | None = None
) -> list[str]: ...
def claim_message(instance_id: str, document: bytes, signature: str, public_key: str) -> str: ...
def enrolment_status(config: Config, minion_id: str) -> _EnrolmentStatus: ...
def master_instance_id(config: Config) -> str: ...
def read_drop_in(drop_in_path: str | os.PathLike[str]) -> list[str] | None: ...
def parse_message(body: str) -> _LifecycleMessage: ...
def pem_fingerprint(pem: str) -> str: ...
def plan_key_actions(
    registry: list[dict[str, object]],
    local: list[dict[str, object]],
    unmanaged: list[str],
    trust: str = "identity_document",
) -> list[_KeyAction]: ...
def salt_write_in_flight(path: str | os.PathLike[str]) -> bool: ...
def send_claim(
    config: Config, minion_id: str, public_key: str, imds_endpoint: str | None = None
) -> _SentClaim: ...
def write_minion_config(
    config: Config,
    minion_id: str,
    drop_in_path: str | os.PathLike[str],
    own_master: str | None = None,
    starting_master_address: str | None = None,
) -> _MinionConfig: ...
