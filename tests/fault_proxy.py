"""A fault-injecting HTTP proxy of the tests' own, between the tool and an S3 test server.

It listens on 127.0.0.1 (a free port), forwards every request unchanged (Host included, so
SigV4 signatures still verify) to the upstream server, and answers from a script of
:class:`Fault` rules, checked in order for each request:

- ``status``: answer with that HTTP status and an S3 error document (``code``, ``message``;
  ``echo_headers`` copies the request's headers into the message, as a careless server might);
- ``reset``: forward, then send the headers and half the body and reset the connection (RST);
- ``truncate``: forward, then send the headers (full Content-Length) and half the body, and
  close the connection;
- ``slow``: forward, then send the body at ``rate`` bytes a second (64 KiB at a time), as a
  slow network or a far region would;
- ``hold``: keep the request waiting until :meth:`FaultProxy.release` (a writer caught
  mid-write, for a test to kill), then forward it.

A rule matches an S3 operation (``GetObject``, ``UploadPart``, ... as :func:`operation` names
them), optionally a key substring, lets ``skip`` matching requests through first, then fires
``times`` times (``None``: forever). Every request is logged as ``(operation, key, status)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

HOST = "127.0.0.1"


@dataclass
class Fault:
    op: str  # an operation name, or "*"
    action: str = "status"  # status, reset, truncate, slow, hold
    rate: int = 1 << 20  # slow: bytes a second
    status: int = 500
    code: str = "InternalError"
    message: str = "injected by the fault proxy"
    key: str = ""  # the key must contain this
    skip: int = 0  # matching requests let through before the fault fires
    times: int | None = 1  # how many times it fires; None: forever
    echo_headers: bool = False
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def applies(self, op: str, key: str) -> bool:
        if self.op not in ("*", op) or self.key not in key:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


def operation(method: str, path: str, query: str) -> tuple[str, str]:
    """The S3 operation of a path-style request, and its key (``bucket/key``)."""
    q = parse_qs(query, keep_blank_values=True)
    parts = unquote(path).lstrip("/").split("/", 1)
    key = parts[1] if len(parts) > 1 else ""
    where = "/".join(parts)
    if method == "GET" and not key:
        return ("ListMultipartUploads" if "uploads" in q else "ListObjectsV2"), where
    if method == "HEAD":
        return ("HeadObject" if key else "HeadBucket"), where
    if method == "GET":
        return ("ListParts" if "uploadId" in q else "GetObject"), where
    if method == "POST" and "uploads" in q:
        return "CreateMultipartUpload", where
    if method == "POST" and "uploadId" in q:
        return "CompleteMultipartUpload", where
    if method == "POST" and "delete" in q:
        return "DeleteObjects", where
    if method == "PUT" and "partNumber" in q:
        return "UploadPart", where
    if method == "PUT":
        return ("PutObject" if key else "CreateBucket"), where
    if method == "DELETE" and "uploadId" in q:
        return "AbortMultipartUpload", where
    if method == "DELETE":
        return ("DeleteObject" if key else "DeleteBucket"), where
    return method, where


class FaultProxy:
    """``with FaultProxy(upstream_url) as proxy:`` then point the tool at ``proxy.endpoint_url``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or HOST, parts.port or 80)
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        self.released = threading.Event()  # what "hold" waits for
        self.holding = threading.Event()  # set when a request is held
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def handle_one(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self.server = _Server((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.endpoint_url = f"http://{HOST}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def add(self, *faults: Fault) -> FaultProxy:
        """Script these faults (fresh copies: ``self.faults`` then says which fired)."""
        with self.lock:
            for f in faults:
                fresh = dataclasses.replace(f)
                self.faults.append(fresh)
        return self

    def release(self) -> None:
        """Let held requests go on (to the upstream server)."""
        self.released.set()

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def ops(self) -> list[str]:
        return [op for op, _, _ in self.log]

    # --- one request ---------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = _read_body(h)
        parts = urlsplit(h.path)
        op, key = operation(h.command, parts.path, parts.query)
        with self.lock:
            fault = next((f for f in self.faults if f.applies(op, key)), None)
        if fault is not None and fault.action == "status":
            message = fault.message
            if fault.echo_headers:
                message += " " + " ".join(f"{k}: {v}" for k, v in h.headers.items())
            xml = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{escape(fault.code)}</Code>"
                f"<Message>{escape(message)}</Message></Error>"
            ).encode()
            self._log(op, key, fault.status)
            h.send_response(fault.status)
            h.send_header("Content-Type", "application/xml")
            h.send_header("Content-Length", str(len(xml)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(xml)
            return
        if fault is not None and fault.action == "hold":
            self.holding.set()
            self.released.wait(120)
            fault = None
        status, headers, answer = self._forward(h, body)
        self._log(op, key, status)
        h.send_response(status)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                h.send_header(name, value)
        length = next((v for n, v in headers if n.lower() == "content-length"), None)
        if h.command == "HEAD":
            h.send_header("Content-Length", length or "0")
        else:
            h.send_header("Content-Length", str(len(answer)))
        h.end_headers()
        if h.command == "HEAD":
            return
        if fault is None:
            h.wfile.write(answer)
            return
        if fault.action == "slow":
            step = 64 << 10
            for at in range(0, len(answer), step):
                h.wfile.write(answer[at : at + step])
                h.wfile.flush()
                time.sleep(step / fault.rate)
            return
        h.wfile.write(answer[: len(answer) // 2])
        h.wfile.flush()
        if fault.action == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault.action == "truncate":
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_WR)
        h.close_connection = True
        h.connection.close()

    def _log(self, op: str, key: str, status: int) -> None:
        with self.lock:
            self.log.append((op, key, status))

    def _forward(
        self, h: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            for name, value in h.headers.items():
                if name.lower() not in ("expect", "connection"):
                    conn.putheader(name, value)
            conn.endheaders(body or None)
            resp = conn.getresponse()
            answer = resp.read()
            return resp.status, resp.getheaders(), answer
        finally:
            conn.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up early (a read closed after its range) is not an error."""
        import sys

        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    """The request body as sent (chunked bodies kept chunked: they are forwarded as they are)."""
    length = h.headers.get("Content-Length")
    if length is not None:
        return h.rfile.read(int(length))
    if "chunked" not in (h.headers.get("Transfer-Encoding") or "").lower():
        return b""
    raw = bytearray()
    while True:
        line = h.rfile.readline()
        raw += line
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, then the blank line
                trailer = h.rfile.readline()
                raw += trailer
                if trailer in (b"\r\n", b"\n", b""):
                    return bytes(raw)
        raw += h.rfile.read(size + 2)


@contextlib.contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    with FaultProxy(upstream) as proxy:
        yield proxy
