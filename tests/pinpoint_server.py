"""A loopback HTTP server that plays Amazon Pinpoint's import-job API for the launch tests.

It takes the real requests boto3 sends: it checks the SigV4 signature (service
``mobiletargeting``, the test credentials), the URI, and the body against botocore's model
of ``ImportJobRequest`` (botocore's own ParamValidator, plus the enums), and records each
request. It answers like the service: 201 and an ImportJobResponse for CreateImportJob,
REST-JSON errors (``X-Amzn-ErrorType`` header, ``{"Message", "RequestID"}`` body), and
GetImportJob through a scripted sequence of statuses. Tests queue canned answers (service
errors, HTML pages, end of support) with :meth:`PinpointServer.answer_next`.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.validate import ParamValidator

_MODEL = botocore.session.get_session().get_service_model("pinpoint")
_REQUEST_SHAPE = _MODEL.shape_for("ImportJobRequest")
_CREATE = re.compile(r"/v1/apps/([^/]+)/jobs/import")
_GET = re.compile(r"/v1/apps/([^/]+)/jobs/import/([^/]+)")
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})"
)


@dataclass
class Answer:
    """A canned HTTP answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def error(code: str, message: str, status: int | None = None) -> Answer:
    """A Pinpoint REST-JSON error; the status comes from botocore's model of ``code``."""
    if status is None:
        status = _MODEL.shape_for(code).metadata["error"]["httpStatusCode"]
    body = json.dumps({"Message": message, "RequestID": str(uuid.uuid4())}).encode()
    return Answer(
        status, body, {"Content-Type": "application/json", "X-Amzn-ErrorType": f"{code}:"}
    )


def html(status: int, text: str) -> Answer:
    """A page that is not Pinpoint's: what a gateway says for a service that is gone."""
    body = f"<html><head><title>{text}</title></head><body><h1>{text}</h1></body></html>"
    return Answer(status, body.encode(), {"Content-Type": "text/html"})


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PinpointServer:
    """Start with ``with PinpointServer(access_key=..., secret_key=...) as server:``;
    ``server.endpoint_url`` is its URL. Requests must be signed with these keys for ``region``.
    ``statuses`` is what GetImportJob answers for a job, poll after poll (the last repeats).
    """

    def __init__(
        self,
        *,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        statuses: list[str] | None = None,
    ) -> None:
        self.credentials = Credentials(access_key, secret_key)
        self.region = region
        self.requests: list[Request] = []
        self.statuses = statuses or ["CREATED", "PROCESSING", "COMPLETED"]
        self.jobs: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.crashes: list[Exception] = []
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> PinpointServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def answer_next(self, *answers: Answer) -> None:
        """The next requests get these answers, in order; then the server answers normally."""
        with self._lock:
            self._answers.extend(answers)

    # --- the service -------------------------------------------------------------------------

    def _serve(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            if self._answers:
                return self._answers.popleft()
        problem = self._signature_problem(request)
        if problem:
            return error(*problem)
        create, get = _CREATE.fullmatch(request.path), _GET.fullmatch(request.path)
        if request.method == "POST" and create:
            return self._create(create.group(1), request)
        if request.method == "GET" and get:
            return self._get(get.group(1), get.group(2))
        return error("NotFoundException", f"No route for {request.method} {request.path}")

    def _create(self, application_id: str, request: Request) -> Answer:
        try:
            body = request.json
        except ValueError:
            return error("BadRequestException", "The request body is not JSON")
        report = ParamValidator().validate(body, _REQUEST_SHAPE)
        if report.has_errors():
            return error("BadRequestException", report.generate_report())
        for name, member in _REQUEST_SHAPE.members.items():
            enum = getattr(member, "enum", None)
            if enum and name in body and body[name] not in enum:
                return error("BadRequestException", f"{name} must be one of {enum}")
        job = {
            "ApplicationId": application_id,
            "CreationDate": _now(),
            "Definition": body,
            "Id": uuid.uuid4().hex,
            "JobStatus": "CREATED",
            "Type": "IMPORT",
        }
        with self._lock:
            self.jobs[job["Id"]] = job
            self.polls[job["Id"]] = 0
        return Answer(201, json.dumps(job).encode(), {"Content-Type": "application/json"})

    def _get(self, application_id: str, job_id: str) -> Answer:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job["ApplicationId"] != application_id:
                return error("NotFoundException", "Resource not found")
            status = self.statuses[min(self.polls[job_id], len(self.statuses) - 1)]
            self.polls[job_id] += 1
        out = {
            **job,
            "JobStatus": status,
            "TotalPieces": 2,
            "CompletedPieces": 0,
            "FailedPieces": 0,
            "TotalProcessed": 0,
            "TotalFailures": 0,
        }
        if status == "COMPLETED":
            out.update(CompletedPieces=2, TotalProcessed=3, CompletionDate=_now())
        elif status == "FAILED":
            out.update(
                CompletedPieces=1,
                FailedPieces=1,
                TotalProcessed=3,
                TotalFailures=1,
                Failures=["endpoint 3: Address is not valid"],
                CompletionDate=_now(),
            )
        elif status == "PROCESSING":
            out.update(CompletedPieces=1, TotalProcessed=2)
        return Answer(200, json.dumps(out).encode(), {"Content-Type": "application/json"})

    def _signature_problem(self, request: Request) -> tuple[str, str, int] | None:
        """Why the request is not SigV4-signed for mobiletargeting with the test keys, or None."""
        headers = {name.lower(): value for name, value in request.headers.items()}
        match = _AUTH.fullmatch(headers.get("authorization", ""))
        if not match:
            return ("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
        access_key, _day, region, service, signed, signature = match.groups()
        if (service, access_key, region) != (
            "mobiletargeting",
            self.credentials.access_key,
            self.region,
        ):
            return (
                "UnrecognizedClientException",
                f"Signed for {access_key}/{region}/{service}, not the test keys",
                403,
            )
        url = f"http://{headers['host']}{request.path}"
        aws_request = AWSRequest(
            method=request.method,
            url=url,
            data=request.body,
            headers={name: headers[name] for name in signed.split(";")},
        )
        aws_request.context["timestamp"] = headers["x-amz-date"]
        auth = SigV4Auth(self.credentials, "mobiletargeting", self.region)
        canonical = auth.canonical_request(aws_request)
        expected = auth.signature(auth.string_to_sign(aws_request, canonical), aws_request)
        if expected != signature:
            return ("InvalidSignatureException", "The request signature does not match", 403)
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                try:
                    answer = server._serve(request)
                except Exception as exc:  # a bug in this server: answer, and let tests see it
                    server.crashes.append(exc)
                    answer = error("InternalServerErrorException", repr(exc))
                self.send_response(answer.status)
                headers = {
                    "x-amzn-RequestId": str(uuid.uuid4()),
                    **answer.headers,
                    "Content-Length": str(len(answer.body)),
                }
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
