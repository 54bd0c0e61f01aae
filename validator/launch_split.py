"""Launching a split: one import job per job folder of a split's ``manifest.txt``, in order,
never more than ``max_concurrent`` at once (Pinpoint allows 2 concurrent import jobs per
account), waiting for jobs to end as it goes; and ``get-import-job``.

The split already checked every record it wrote into the job folders, so no preflight runs
again here; each job's request is the template (``RoleArn``, ``RegisterEndpoints``, ...) with
the folder's ``S3Url`` and the manifest's ``Format``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from validator.errors import UsageError
from validator.launch import TERMINAL_STATUSES, _call, check_request
from validator.settings import AwsSettings

__all__ = [
    "MAX_CONCURRENT_IMPORT_JOBS",
    "failed_jobs",
    "get_import_job",
    "launch_manifest",
    "read_manifest",
]

MAX_CONCURRENT_IMPORT_JOBS = 2  # Pinpoint's quota of concurrent import jobs per account


def get_import_job(client: Any, *, ApplicationId: str, JobId: str) -> dict[str, Any]:
    """GetImportJob's answer, as ``aws pinpoint get-import-job`` prints it."""
    response = _call(client, "GetImportJob", ApplicationId=ApplicationId, JobId=JobId)
    return {"ImportJobResponse": response["ImportJobResponse"]}


def read_manifest(
    location: str, *, settings: AwsSettings | None = None, s3_client: Any = None
) -> dict[str, Any]:
    """A split's manifest: ``location`` is the split's destination (folder or ``s3://``
    prefix) or its ``manifest.txt``."""
    from validator import transport
    from validator.settings import with_client

    # A split writes manifest.txt (no reader takes it for endpoint data); manifest.json is the
    # name older splits used.
    named = location.endswith(("/manifest.txt", "/manifest.json")) or location in (
        "manifest.txt",
        "manifest.json",
    )
    name = location if named else location.rstrip("/") + "/manifest.txt"
    try:
        kind = transport.for_output(name)
        body = kind.read_bytes(name, settings=with_client(settings, s3_client))
    except FileNotFoundError:
        raise UsageError(
            f"{name}: no such manifest; give a split's --to or its manifest.txt"
        ) from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot read the manifest: {exc.strerror or exc}") from exc
    try:
        manifest = json.loads(body)
        jobs = manifest["Jobs"]
        manifest["Format"]
        assert isinstance(jobs, list) and all("Url" in j for j in jobs)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise UsageError(f"{name}: not a manifest written by pinpoint-preflight split") from None
    return dict(manifest)


def launch_manifest(
    client: Any,
    *,
    ApplicationId: str,
    manifest: Mapping[str, Any],
    ImportJobRequest: Mapping[str, Any],
    max_concurrent: int = MAX_CONCURRENT_IMPORT_JOBS,
    poll_interval: float = 5.0,
    dry_run: bool = False,
    on_progress: Callable[[dict[str, Any], float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Create an import job per job folder of ``manifest``, in order, at most
    ``max_concurrent`` running at once; poll GetImportJob every ``poll_interval`` seconds
    until every job has ended. Returns ``{"ImportJobs": [last answer per job, in order]}``
    (with ``dry_run``, ``{"ImportJobRequests": [...]}`` and nothing is sent)."""
    if max_concurrent < 1:
        raise UsageError("max_concurrent must be at least 1")
    if poll_interval < 0:
        raise UsageError("poll_interval must be 0 or more")
    template = {k: v for k, v in ImportJobRequest.items() if k != "S3Url"}
    requests = []
    for job in manifest["Jobs"]:
        url = str(job["Url"])
        if not url.startswith("s3://"):
            raise UsageError(
                f"job folder {url} is not in S3: Pinpoint imports from s3:// only (split with "
                "--to s3://bucket/prefix/)"
            )
        request = {"Format": manifest["Format"], **template, "S3Url": url}
        check_request({"ApplicationId": ApplicationId, "ImportJobRequest": request})
        requests.append(request)
    if dry_run:
        return {"ImportJobRequests": requests}
    start = clock()
    results: list[dict[str, Any] | None] = [None] * len(requests)
    running: dict[int, str] = {}  # index -> job id
    queue = list(range(len(requests)))
    while queue or running:
        while queue and len(running) < max_concurrent:
            i = queue.pop(0)
            created = _call(
                client, "CreateImportJob", ApplicationId=ApplicationId, ImportJobRequest=requests[i]
            )["ImportJobResponse"]
            results[i] = created
            running[i] = created["Id"]
            if on_progress is not None:
                on_progress(created, clock() - start)
        sleep(poll_interval)
        for i, job_id in list(running.items()):
            job = _call(client, "GetImportJob", ApplicationId=ApplicationId, JobId=job_id)[
                "ImportJobResponse"
            ]
            results[i] = job
            if on_progress is not None:
                on_progress(job, clock() - start)
            if job["JobStatus"] in TERMINAL_STATUSES:
                del running[i]
    return {"ImportJobs": [r for r in results if r is not None]}


def failed_jobs(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The jobs of :func:`launch_manifest`'s answer that Pinpoint says FAILED."""
    return [j for j in result.get("ImportJobs", []) if j.get("JobStatus") == "FAILED"]
