"""A TCP proxy on loopback that models a network round trip and counts the AWS calls it carries.

Each route listens on 127.0.0.1 and forwards to one local port. Every chunk of bytes is held
for half the round trip in each direction, so one request and its response cost one more
round trip, as a call to an AWS endpoint in the same region would (a model: no TLS, no
connection set-up cost, no bandwidth limit; order is kept, connections are independent).
``--rtt-ms 0`` forwards at once and still counts.

The proxy reads the HTTP requests going through to count calls by service and operation
(the service from the SigV4 credential scope, the operation from ``X-Amz-Target`` or the
query protocol's ``Action``), and the responses to count the failed ones by error code
(e.g. a DynamoDB conditional write whose condition did not hold).

It also adds up the body bytes of each operation's responses, for the benchmarks that
report what a call carries.

The benchmarks run it as a child process (:class:`LatencyProxy`), so that forwarding takes
no time from the loops being measured:

    python -m phoenix_lab.latency_proxy --rtt-ms 10 --control PORT LISTEN:TARGET ...

The control port answers one line: ``stats`` (the counts as JSON), ``reset``, ``block``
(every connection through the proxy is closed and new ones are closed as they arrive: the
network path to the service is cut), ``unblock``, ``fault {json}`` (adds a
:class:`~phoenix_lab.faults.Fault`: calls of one service refused, stalled or answered
with AWS's own error, at a rate) or ``clear`` (no more faults; stalled calls are cut).

Requests are forwarded whole (each once its last byte arrived), so that a fault can answer
one in the service's place; responses are forwarded as their bytes arrive. A connection
carries one request at a time, as the AWS SDKs use it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import re
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phoenix_lab.faults import REFUSE, STALL, Fault, error_response
from phoenix_lab.ports import free_port, is_listening
from phoenix_lab.processes import ManagedProcess, wait_for

# calls["sqs ReceiveMessage"] = n; errors["dynamodb UpdateItem"]["ConditionalCheck..."] = n
calls: collections.Counter[str] = collections.Counter()
errors: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
# response_bytes["dynamodb Query"] = body bytes of every response to that operation
response_bytes: collections.Counter[str] = collections.Counter()
# injected["dynamodb UpdateItem"]["ProvisionedThroughputExceededException"] = n (also in errors)
injected: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
# While set, nothing goes through (``block``); the writers of the connections in progress.
blocked = False
connections: set[asyncio.StreamWriter] = set()
# The faults in force, the draws that decide which calls they hit (seeded: a run can be
# repeated), and the connections held by a stall.
faults: list[Fault] = []
draw = random.Random(0)  # noqa: S311 - which calls a fault hits, not a secret
stalled: set[asyncio.StreamWriter] = set()

SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
XML_CODE = re.compile(rb"<Code>([^<]+)</Code>")


Emit = Callable[[str, dict[str, str], bytes, bytes], None]


class HttpMessages:
    """Splits one direction of an HTTP/1.1 connection into messages (head and body); calls
    ``emit(start_line, headers, body, raw)`` for each complete one, ``raw`` being the
    message's bytes as they came. Bytes are only looked at."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        # Every byte fed since the last message was emitted (its raw bytes, and what follows).
        self.fed = bytearray()
        self.buffer = bytearray()
        self.state = "head"
        self.remaining = 0
        self.start = ""
        self.headers: dict[str, str] = {}
        self.body = bytearray()

    def emit(self) -> None:
        size = len(self.fed) - len(self.buffer)
        raw = bytes(self.fed[:size])
        del self.fed[:size]
        self._emit(self.start, self.headers, bytes(self.body), raw)

    def feed(self, data: bytes) -> None:  # noqa: PLR0912, PLR0915 - one state machine
        self.fed += data
        self.buffer += data
        while self.buffer:
            if self.state == "head":
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                start, *lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
                del self.buffer[: end + 4]
                self.start, self.body = start, bytearray()
                self.headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines)
                }
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    self.state = "chunk-size"
                elif "content-length" in self.headers:
                    self.remaining = int(self.headers["content-length"])
                    self.state = "body"
                    self._done_if_empty()
                elif start.startswith("HTTP/"):  # a response delimited by the close
                    self.emit()
                    self.state = "until-close"
                else:
                    self.remaining = 0
                    self.state = "body"
                    self._done_if_empty()
            elif self.state in {"body", "chunk"}:
                taken = bytes(self.buffer[: self.remaining])
                del self.buffer[: len(taken)]
                self.body += taken
                self.remaining -= len(taken)
                if self.remaining == 0:
                    if self.state == "chunk":
                        self.state = "chunk-end"
                    else:
                        self._done_if_empty()
            elif self.state == "chunk-end":
                if len(self.buffer) < 2:
                    return
                del self.buffer[:2]
                self.state = "chunk-size"
            elif self.state in {"chunk-size", "trailer"}:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                if self.state == "trailer":
                    if not line:
                        self.emit()
                        self.state = "head"
                    continue
                size = int(line.split(b";")[0], 16)
                self.state, self.remaining = ("trailer", 0) if size == 0 else ("chunk", size)
            else:  # until-close: nothing more to find
                self.buffer.clear()
                self.fed.clear()

    def _done_if_empty(self) -> None:
        if self.remaining == 0:
            self.emit()
            self.state = "head"


def operation(headers: dict[str, str], body: bytes) -> str:
    """ "service Operation" of one request, e.g. "dynamodb UpdateItem"."""
    scope = SCOPE.search(headers.get("authorization", ""))
    service = scope.group(1) if scope else "other"
    target = headers.get("x-amz-target", "")
    if target:
        return f"{service} {target.rsplit('.', 1)[-1]}"
    action = urllib.parse.parse_qs(body.decode("latin-1")).get("Action", ["?"])[0]
    return f"{service} {action}"


def error_code(body: bytes) -> str:
    try:
        kind = json.loads(body).get("__type", "")
        return str(kind).rsplit("#", 1)[-1] or "?"
    except (ValueError, AttributeError):
        found = XML_CODE.search(body)
        return found.group(1).decode("latin-1") if found else "?"


class Outgoing:
    """One direction of a connection as it is written: the bytes given to it, in order,
    each ``delay`` seconds after it was given; an empty chunk ends the direction."""

    def __init__(self, writer: asyncio.StreamWriter, delay: float) -> None:
        self.writer = writer
        self.delay = delay
        self.chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    def send(self, data: bytes) -> None:
        self.chunks.put_nowait((time.monotonic() + self.delay, data))

    async def run(self) -> None:
        while True:
            due, data = await self.chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return
            self.writer.write(data)
            await self.writer.drain()


async def read_all(reader: asyncio.StreamReader, take: Callable[[bytes], None]) -> None:
    """Gives every chunk read to ``take``, then an empty one at the end of the stream."""
    while data := await reader.read(65536):
        take(data)
    take(b"")


def injected_answer(name: str, headers: dict[str, str]) -> str | bytes | None:
    """What a fault does with this call instead of forwarding it: ``REFUSE``, ``STALL``,
    an error response to give the client, or None (no fault hits it: it goes on)."""
    fault = next((fault for fault in faults if fault.hits(name, draw)), None)
    if fault is None:
        return None
    injected[name][fault.mode] += 1
    if fault.mode in {REFUSE, STALL}:
        return fault.mode
    errors[name][fault.mode] += 1
    return error_response(fault.service, headers, fault.mode)


class Connection:
    """One client connection and the one it opened to the service."""

    def __init__(self, client: tuple[Any, Any], server: tuple[Any, Any], delay: float) -> None:
        self.client_r, self.client_w = client
        self.server_r, self.server_w = server
        self.to_server = Outgoing(self.server_w, delay)
        self.to_client = Outgoing(self.client_w, delay)
        self.requests = HttpMessages(self.on_request)
        self.responses = HttpMessages(self.on_response)
        # The operations forwarded and not answered yet, oldest first.
        self.pending: collections.deque[str] = collections.deque()

    def on_request(self, _start: str, headers: dict[str, str], body: bytes, raw: bytes) -> None:
        name = operation(headers, body)
        calls[name] += 1
        answer = injected_answer(name, headers)
        if answer is None:
            self.pending.append(name)
            self.to_server.send(raw)
        elif answer == REFUSE:
            self.client_w.close()
            self.server_w.close()
        elif answer == STALL:
            stalled.add(self.client_w)  # unanswered until ``clear``, or the client gives up
        else:
            assert isinstance(answer, bytes)
            self.to_client.send(answer)

    def on_response(self, start: str, _headers: dict[str, str], body: bytes, _raw: bytes) -> None:
        name = self.pending.popleft() if self.pending else "other ?"
        response_bytes[name] += len(body)
        status = int(start.split()[1])
        if status >= 400:
            errors[name][error_code(body)] += 1

    def from_client(self, data: bytes) -> None:
        if data:
            self.requests.feed(data)  # forwarded whole, by on_request
        else:
            self.to_server.send(b"")

    def from_server(self, data: bytes) -> None:
        self.to_client.send(data)
        if data:
            self.responses.feed(data)

    async def run(self) -> None:
        """Until both directions ended; a connection error in one cuts the other too."""
        tasks = [
            asyncio.create_task(read_all(self.client_r, self.from_client)),
            asyncio.create_task(read_all(self.server_r, self.from_server)),
            asyncio.create_task(self.to_server.run()),
            asyncio.create_task(self.to_client.run()),
        ]
        try:
            _done, left = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in left:
                task.cancel()
            for task in tasks:
                if not task.cancelled() and task.done():
                    error = task.exception()
                    if error is not None and not isinstance(error, (ConnectionError, OSError)):
                        raise error
        finally:
            for writer in (self.client_w, self.server_w):
                writer.close()


async def forward(target: int, delay: float, client_r: Any, client_w: Any) -> None:
    if blocked:
        client_w.close()
        return
    try:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        client_w.close()
        return
    connections.update((client_w, server_w))
    for writer in (client_w, server_w):
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await Connection((client_r, client_w), (server_r, server_w), delay).run()
    finally:
        connections.difference_update((client_w, server_w))
        stalled.discard(client_w)


async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global blocked  # noqa: PLW0603 - the proxy's one switch
    command, _, argument = (await reader.readline()).decode().strip().partition(" ")
    if command in {"block", "unblock"}:
        blocked = command == "block"
        for connection in list(connections) if blocked else []:
            connection.close()
    if command == "fault":
        faults.append(Fault.from_json(json.loads(argument)))
    if command == "clear":
        faults.clear()
        for connection in list(stalled):
            connection.close()
    if command == "reset":
        calls.clear()
        errors.clear()
        injected.clear()
        response_bytes.clear()
    stats = {
        "calls": calls,
        "errors": errors,
        "injected": injected,
        "response_bytes": response_bytes,
        "faults": [fault.to_json() for fault in faults],
    }
    writer.write(json.dumps(stats).encode() + b"\n")
    await writer.drain()
    writer.close()


async def serve(routes: list[tuple[int, int]], rtt_ms: float, control_port: int) -> None:
    delay = rtt_ms / 2000.0
    servers = [
        await asyncio.start_server(
            lambda r, w, target=target: forward(target, delay, r, w), "127.0.0.1", listen
        )
        for listen, target in routes
    ]
    servers.append(await asyncio.start_server(control, "127.0.0.1", control_port))
    await asyncio.gather(*(server.serve_forever() for server in servers))


class LatencyProxy:
    """The proxy as a child process: ``url(target_port)`` is the address to use instead of
    the target; ``counts()`` and ``reset()`` read and clear the calls counted."""

    def __init__(self, targets: list[int], rtt_ms: float, workdir: Path) -> None:
        self.rtt_ms = rtt_ms
        self.listen = {target: free_port() for target in targets}
        self.control_port = free_port()
        routes = [f"{port}:{target}" for target, port in self.listen.items()]
        control = str(self.control_port)
        self.process = ManagedProcess(
            "latency-proxy",
            [
                sys.executable,
                "-m",
                "phoenix_lab.latency_proxy",
                "--rtt-ms",
                str(rtt_ms),
                "--control",
                control,
                *routes,
            ],
            log_path=workdir / "latency-proxy.log",
        )

    def url(self, target: int) -> str:
        return f"http://127.0.0.1:{self.listen[target]}"

    def start(self) -> None:
        self.process.start()
        wait_for(
            lambda: all(
                is_listening("127.0.0.1", p) for p in [*self.listen.values(), self.control_port]
            ),
            10,
            f"the latency proxy (log {self.process.log_path})",
        )

    def _ask(self, command: str) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as conn:
            conn.sendall(command.encode() + b"\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        return dict(json.loads(data))

    def counts(self) -> dict[str, Any]:
        """{"calls": {"sqs ReceiveMessage": n, ...}, "errors": {op: {code: n}},
        "injected": {op: {mode: n}}, "response_bytes": {op: n}, "faults": [...]}"""
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    def block(self) -> None:
        """Cuts the path: open connections are closed, new ones too."""
        self._ask("block")

    def unblock(self) -> None:
        self._ask("unblock")

    def fault(self, fault: Fault) -> None:
        """From now on, the calls ``fault`` names meet it (added to those in force)."""
        self._ask("fault " + json.dumps(fault.to_json()))

    def clear(self) -> None:
        """No more faults; the calls a stall holds are cut."""
        self._ask("clear")

    def stop(self) -> None:
        self.process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, required=True)
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("routes", nargs="+", help="LISTEN:TARGET port pairs")
    args = parser.parse_args()
    routes = [(int(a), int(b)) for a, _, b in (r.partition(":") for r in args.routes)]
    asyncio.run(serve(routes, args.rtt_ms, args.control))


if __name__ == "__main__":
    main()
