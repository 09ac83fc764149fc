"""AutoScaling's lifecycle actions, as AWS keeps them, for the lab's simulated fleet.

The AWS emulator implements neither CompleteLifecycleAction nor
RecordLifecycleActionHeartbeat, so the lab serves those two calls itself, on loopback,
in AutoScaling's query protocol, and points the masters at it with the SDK's standard
per-service endpoint variable, ``AWS_ENDPOINT_URL_AUTO_SCALING``. Every other AutoScaling
call is passed on, unchanged, to the emulator (``upstream``). Each action is tracked as AWS
would: pending until completed (CONTINUE or ABANDON) or timed out; a completion of an
action that is not pending fails with AWS's ``ValidationError`` "No active Lifecycle
Action found".
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from phoenix_lab.ports import free_port

XMLNS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
# The calls the emulator lacks and this endpoint serves.
SERVED = frozenset({"CompleteLifecycleAction", "RecordLifecycleActionHeartbeat"})


@dataclass
class LifecycleAction:
    group: str
    hook_name: str
    token: str
    instance_id: str
    heartbeat_timeout: float
    started: float = field(default_factory=time.monotonic)
    status: str = "pending"  # pending, completed, abandoned, timed_out
    heartbeats: int = 0
    result: str | None = None
    # When it was completed or abandoned (time.time()), for tests that check the order.
    completed_at: float | None = None

    def refresh(self) -> None:
        if self.status == "pending" and time.monotonic() - self.started > self.heartbeat_timeout:
            self.status = "timed_out"


class LifecycleActions:
    """The lifecycle actions of the simulated groups, and the endpoint that completes them."""

    def __init__(self, host: str = "127.0.0.1", upstream: str | None = None) -> None:
        self.host = host
        self.upstream = upstream
        self.port = free_port([host])
        self._lock = threading.Lock()
        self._actions: dict[str, LifecycleAction] = {}
        # Every request received, as (action, parameters): what the engine asked AWS to do.
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_AUTO_SCALING": self.url}

    def begin(
        self, group: str, hook_name: str, instance_id: str, heartbeat_timeout: float = 3600.0
    ) -> LifecycleAction:
        """A new pending action (what AutoScaling does when a hooked instance launches or
        terminates); its token goes into the hook message."""
        action = LifecycleAction(
            group, hook_name, str(uuid.uuid4()), instance_id, heartbeat_timeout
        )
        with self._lock:
            self._actions[action.token] = action
        return action

    def get(self, token: str) -> LifecycleAction:
        with self._lock:
            action = self._actions[token]
            action.refresh()
            return action

    def _find(self, params: dict[str, str]) -> LifecycleAction | None:
        token = params.get("LifecycleActionToken")
        with self._lock:
            # By token: one lookup. By instance id (a completion without a token): a scan.
            if token:
                known = self._actions.get(token)
                pool = [known] if known is not None else []
            else:
                pool = [
                    a for a in self._actions.values() if a.instance_id == params.get("InstanceId")
                ]
            for action in pool:
                action.refresh()
            candidates = [
                a
                for a in pool
                if a.status == "pending"
                and a.group == params.get("AutoScalingGroupName")
                and a.hook_name == params.get("LifecycleHookName")
            ]
        return candidates[0] if candidates else None

    def handle(self, action_name: str, params: dict[str, str]) -> tuple[int, str]:
        self.requests.append((action_name, params))
        if action_name not in SERVED:
            return 400, _error("InvalidAction", f"{action_name} is not served here")
        action = self._find(params)
        if action is None:
            who = params.get("LifecycleActionToken") or params.get("InstanceId", "")
            return 400, _error(
                "ValidationError", f"No active Lifecycle Action found with token {who}"
            )
        with self._lock:
            if action_name == "RecordLifecycleActionHeartbeat":
                action.heartbeats += 1
                action.started = time.monotonic()
            else:
                result = params.get("LifecycleActionResult", "")
                if result not in {"CONTINUE", "ABANDON"}:
                    return 400, _error(
                        "ValidationError", f"invalid LifecycleActionResult {result!r}"
                    )
                action.result = result
                action.completed_at = time.time()
                action.status = "completed" if result == "CONTINUE" else "abandoned"
        return 200, (
            f'<{action_name}Response xmlns="{XMLNS}"><{action_name}Result/>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            f"</{action_name}Response>"
        )

    def forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Passes a call this endpoint does not serve to the emulator."""
        import urllib.error
        import urllib.request

        assert self.upstream is not None
        keep = {k: v for k, v in headers.items() if k.lower() not in {"host", "content-length"}}
        request = urllib.request.Request(  # noqa: S310 - the emulator's http URL on loopback
            self.upstream, data=body, headers=keep, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def start(self) -> None:
        actions = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version: ClassVar[str] = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                params = dict(urllib.parse.parse_qsl(raw.decode()))
                action = params.get("Action", "")
                if action not in SERVED and actions.upstream:
                    status, payload = actions.forward(raw, dict(self.headers))
                else:
                    status, text = actions.handle(action, params)
                    payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:  # quiet: the requests list keeps them
                return

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        threading.Thread(
            target=self._server.serve_forever, name="lifecycle-actions", daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _error(code: str, message: str) -> str:
    return (
        f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
