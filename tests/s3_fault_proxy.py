"""A fault-injecting HTTP proxy between boto3 and a local S3 endpoint (moto).

Requests are forwarded unchanged with http.client; a request that matches a `Rule` gets that
rule's fault instead, for the rule's first `times` matches. Faults are injected on the wire,
so boto3/botocore/s3transfer run their real retry, checksum and abort code paths.
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

Fault = Literal[
    "slowdown",  # 503 SlowDown (S3's throttling answer), nothing forwarded
    "internal",  # 500 InternalError, nothing forwarded
    "denied",  # 403 AccessDenied (a key the credentials may not read), nothing forwarded
    "reset",  # the request is read, then the connection is reset (no response at all)
    "stall",  # nothing is answered for `stall_s` (past the client's read timeout), then reset
    "reset_body",  # forwarded; the status line, headers and half the body arrive, then a reset
    "stall_body",  # forwarded; headers and half the body arrive, then a stall and a reset
    "corrupt_request",  # one byte of the request body flipped before forwarding
    "corrupt_response",  # one byte of the response body flipped on the way back
    "delete_errors",  # DeleteObjects answered 200 with an InternalError for every key, nothing deleted
]

_ERROR_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
)
_CANNED = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    "denied": (403, "AccessDenied", "Access Denied"),
}
_DELETE_ERROR_XML = (
    "<Error><Key>{key}</Key><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass
class Rule:
    """Fault the first `times` requests whose method and path?query match."""

    fault: Fault
    method: str | None = None  # e.g. "PUT"; None matches any
    contains: str = ""  # substring of the request target (path and query), e.g. "partNumber=2"
    times: int = 1  # a large number makes the fault persistent
    stall_s: float = 5.0
    hits: int = 0

    def matches(self, method: str, target: str) -> bool:
        return (self.method is None or self.method == method) and self.contains in target


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    fault: Fault | None
    headers: dict[str, str]  # names in lower case


@dataclass
class _State:
    upstream: tuple[str, int]
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)


class S3FaultProxy:
    """``with S3FaultProxy(moto_url) as proxy:`` point a client at ``proxy.url``."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._state = _State(upstream=(parts.hostname or "127.0.0.1", parts.port or 80))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self._state))
        self._server.daemon_threads = True  # a stalled handler never blocks shutdown
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"

    def __enter__(self) -> S3FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._state.closing.set()  # releases stalls at once
        self._server.shutdown()
        self._server.server_close()

    def add(self, rule: Rule) -> None:
        with self._state.lock:
            self._state.rules.append(rule)

    def seen(self, method: str | None = None, contains: str = "") -> list[Seen]:
        with self._state.lock:
            return [s for s in self._state.seen if (method is None or s.method == method) and contains in s.target]

    def count(self, method: str | None = None, contains: str = "", faulted: bool | None = None) -> int:
        return sum(1 for s in self.seen(method, contains) if faulted is None or (s.fault is not None) == faulted)


def _flip_middle_byte(data: bytes) -> bytes:
    if not data:
        return data
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


def _handler_class(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the tests read `seen`, not a request log

        def _dispatch(self) -> None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                # Over plain HTTP botocore sends checksums as headers with a Content-Length;
                # a chunked body means that assumption broke: fail loudly, not subtly.
                self.send_error(501, "fault proxy: chunked request bodies are not supported")
                self.close_connection = True
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rule = self._take_rule()
            fault, stall_s = (rule.fault, rule.stall_s) if rule else (None, 0.0)
            headers = {k.lower(): v for k, v in self.headers.items()}
            with state.lock:
                state.seen.append(Seen(self.command, self.path, fault, headers))

            if fault in _CANNED:
                status, code, message = _CANNED[fault]
                xml = _ERROR_XML.format(code=code, message=message)
                self._respond(status, [("Content-Type", "application/xml")], xml.encode())
                return
            if fault == "delete_errors":
                keys = re.findall(rb"<Key>(.*?)</Key>", body)
                errors = "".join(_DELETE_ERROR_XML.format(key=k.decode()) for k in keys)
                xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult>{errors}</DeleteResult>'
                self._respond(200, [("Content-Type", "application/xml")], xml.encode())
                return
            if fault == "reset":
                self._reset()
                return
            if fault == "stall":
                state.closing.wait(stall_s)
                self._reset()
                return
            if fault == "corrupt_request":
                body = _flip_middle_byte(body)

            status, headers, payload = self._forward(body)
            if fault == "corrupt_response":
                payload = _flip_middle_byte(payload)
            if fault in ("reset_body", "stall_body"):
                self._send_head(status, headers, len(payload))
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                if fault == "stall_body":
                    state.closing.wait(stall_s)
                self._reset()
                return
            self._respond(status, headers, payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _dispatch

        def _take_rule(self) -> Rule | None:
            with state.lock:
                for rule in state.rules:
                    if rule.hits < rule.times and rule.matches(self.command, self.path):
                        rule.hits += 1
                        return rule
            return None

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(*state.upstream, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
                if self.command == "HEAD":  # HEAD announces the object's length, sends no body
                    kept.append(("Content-Length", response.getheader("Content-Length", "0")))
                return response.status, kept, payload
            finally:
                upstream.close()

        def _send_head(self, status: int, headers: list[tuple[str, str]], length: int) -> None:
            self.send_response_only(status)
            for name, value in headers:
                self.send_header(name, value)
            if not any(k.lower() == "content-length" for k, _ in headers):
                self.send_header("Content-Length", str(length))
            self.end_headers()

        def _respond(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            self._send_head(status, headers, len(payload))
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout turns close() into a TCP RST: "connection reset by peer".
            # rfile holds a reference to the socket: close it first so the close is immediate.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
            self.close_connection = True

    return Handler
