"""What an AWS service does when it falters, given by the lab's proxy in the service's place.

A :class:`Fault` names the calls it hits (a service as the SigV4 credential scope names it,
``dynamodb``, ``sqs``, ``autoscaling``, optionally some of its operations), how often (a
rate between 0 and 1) and what happens to a call it hits:

- ``refuse``: the connection is closed as the request arrives, unanswered (what a client
  sees of a reset connection or an endpoint that went away);
- ``stall``: the request is held and never answered until the fault is cleared (what a
  client sees of a hung endpoint: only its own timeout ends the call);
- an error code (``ProvisionedThroughputExceededException``, ``Throttling``,
  ``InternalServerError``, ``KmsThrottled``...): the service's own error answer, in the
  protocol the request came in (the JSON protocol's ``__type`` for DynamoDB and SQS, the
  query protocol's XML ``ErrorResponse`` for AutoScaling), with the HTTP status AWS gives
  it (500 for the server-side codes, 503 for ``ServiceUnavailable``, 400 otherwise). The
  SDKs classify such an answer as AWS's own: a throttling code or a 5xx is retried by their
  standard retry mode, any other code is not.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field

REFUSE = "refuse"
STALL = "stall"

# Each service's throttling error, as its API reference names it.
THROTTLING = {
    "dynamodb": "ProvisionedThroughputExceededException",
    "autoscaling": "Throttling",
    "sqs": "RequestThrottled",
}
# Each service's internal error (HTTP 500).
SERVER_ERROR = {
    "dynamodb": "InternalServerError",
    "autoscaling": "InternalFailure",
    "sqs": "InternalFailure",
}
SERVER_SIDE = {"InternalServerError": 500, "InternalFailure": 500, "ServiceUnavailable": 503}
REASONS = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}
# The query protocol's XML namespace of each service that speaks it here.
XMLNS = {"autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/"}
# The DynamoDB operations that write (the ones its write capacity throttles).
DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


@dataclass(frozen=True)
class Fault:
    """Calls to ``service`` (only ``operations`` of it, if given) meet ``mode`` at ``rate``."""

    service: str
    mode: str
    rate: float = 1.0
    operations: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"a fault's rate is between 0 and 1, not {self.rate}")
        if not self.mode:
            raise ValueError("a fault needs a mode: refuse, stall or an error code")

    def hits(self, call: str, draw: random.Random) -> bool:
        """Whether this call (``"dynamodb UpdateItem"``) meets the fault this time."""
        service, _, operation = call.partition(" ")
        if service != self.service or (self.operations and operation not in self.operations):
            return False
        return draw.random() < self.rate

    def to_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "mode": self.mode,
            "rate": self.rate,
            "operations": sorted(self.operations),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Fault:
        operations = data.get("operations") or []
        assert isinstance(operations, list)
        rate = data.get("rate", 1.0)
        assert isinstance(rate, (int, float))
        return cls(str(data["service"]), str(data["mode"]), float(rate), frozenset(operations))


def error_response(service: str, request_headers: dict[str, str], code: str) -> bytes:
    """The whole HTTP response AWS gives for ``code``, in the request's protocol."""
    status = SERVER_SIDE.get(code, 400)
    request_id = str(uuid.uuid4())
    message = f"{code} (injected by the lab's proxy)"
    content_type = request_headers.get("content-type", "")
    headers = {"x-amzn-RequestId": request_id}
    if "json" in content_type:
        body = json.dumps({"__type": f"com.amazonaws.{service}#{code}", "message": message})
        headers["Content-Type"] = content_type
        # SQS's JSON protocol also carries the query protocol's code for older clients.
        headers["x-amzn-query-error"] = f"{code};{'Receiver' if status >= 500 else 'Sender'}"
    else:
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="{XMLNS.get(service, "")}">'
            f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers["Content-Type"] = "text/xml"
    payload = body.encode()
    headers["Content-Length"] = str(len(payload))
    head = f"HTTP/1.1 {status} {REASONS[status]}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    return head.encode("latin-1") + b"\r\n" + payload
