"""Dask distributed as the executor, on a real cluster: a ``dask scheduler`` and two ``dask
worker`` processes on 127.0.0.1 (tests/dask_cluster.py), reading local files and the S3 test
servers. Every report, ``--failures-out`` and split output must equal a local run's."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_cluster import DaskCluster, dask_cluster
from s3_servers import ACCESS_KEY, REGION, SECRET_KEY, S3Server, closed_port

import validator
from validator.cluster import ClusterExecutor, dask_executor
from validator.errors import ConfigError, UsageError
from validator.settings import AwsSettings
from validator.source import list_sources

pytestmark = pytest.mark.dask
distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
VOLATILE = ("Id", "CreationDate", "CompletionDate")


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "pp_cluster_generate", ROOT / "benchmarks" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    # The workers' own AWS configuration: the test servers' credentials, nothing from the tasks.
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with dask_cluster(tmp_path_factory.mktemp("dask"), workers=2, env=env) as running:
        yield running


@pytest.fixture
def executor(cluster: DaskCluster) -> Iterator[ClusterExecutor]:
    with dask_executor(cluster.address) as ex:
        yield ex


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated files with every defect kind the generator makes, plus broken quotes and
    quoted line breaks (CSV) and invalid lines (JSON)."""
    folder = tmp_path_factory.mktemp("cluster-data")
    out = {}
    for fmt in ("csv", "json"):
        path = folder / f"endpoints.{fmt}"
        gen.generate(path, 6000, fmt, 0.05, seed=11)
        with path.open("ab") as f:
            if fmt == "csv":
                f.write(b'x1,SMS,"+12065550100,u1\n')  # an unbalanced quote
                f.write(b'x2,SMS,"+1206555\n0101",u2\n')
            else:
                f.write(b'{"Id": "x1", "ChannelType": "SMS",\n')
                f.write(b"null\n")
        out[fmt] = path
    return out


def comparable(report: Any) -> dict[str, Any]:
    return {k: v for k, v in report.to_dict().items() if k not in VOLATILE}


def failures_out(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("pieces", [1, 5, 13])
def test_local_files_give_the_local_report_to_the_byte(
    executor: ClusterExecutor, data: dict[str, Path], tmp_path: Path, fmt: str, pieces: int
) -> None:
    src = str(data[fmt])
    local = validator.preflight(
        src, fmt.upper(), pieces=pieces, workers=1, failures_out=tmp_path / "local.ndjson"
    )
    remote = validator.preflight(
        src, fmt.upper(), pieces=pieces, executor=executor, failures_out=tmp_path / "dask.ndjson"
    )
    assert local.total_failures > 0 and local.total_pieces >= min(pieces, 2)
    assert comparable(remote) == comparable(local)
    assert (tmp_path / "dask.ndjson").read_bytes() == (tmp_path / "local.ndjson").read_bytes()


@pytest.mark.s3
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_s3_sources_are_read_by_the_workers_themselves(
    s3_env: S3Server, executor: ClusterExecutor, data: dict[str, Path], fmt: str
) -> None:
    client = s3_env.client()
    bucket = s3_env.make_bucket("dask")
    for name in ("a", "b/c"):
        client.upload_file(str(data[fmt]), bucket, f"audience/{name}.{fmt}")
    settings = AwsSettings(endpoint_url=s3_env.endpoint_url)
    url = f"s3://{bucket}/audience/"
    local = validator.preflight(url, fmt.upper(), pieces=6, workers=1, settings=settings)
    remote = validator.preflight(url, fmt.upper(), pieces=6, settings=settings, executor=executor)
    assert local.total_processed > 12000
    assert comparable(remote) == comparable(local)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "validator", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_the_command_runs_on_the_scheduler_it_is_given(
    cluster: DaskCluster, data: dict[str, Path]
) -> None:
    src = str(data["csv"])
    local = _cli("validate", src, "--format", "CSV", "--pieces", "4", "--workers", "1")
    remote = _cli(
        "validate", src, "--format", "CSV", "--pieces", "4", "--scheduler", cluster.address
    )
    assert (remote.returncode, local.returncode) == (1, 1), remote.stderr
    assert remote.stderr == ""
    strip = lambda out: {k: v for k, v in json.loads(out).items() if k not in VOLATILE}  # noqa: E731
    assert strip(remote.stdout) == strip(local.stdout)
    # The variable Dask itself reads does the same.
    by_env = _cli(
        "validate", src, "--format", "CSV", "--pieces", "4",
        env={"DASK_SCHEDULER_ADDRESS": cluster.address},
    )  # fmt: skip
    assert strip(by_env.stdout) == strip(local.stdout)


def test_split_on_the_cluster_writes_the_same_bytes(
    executor: ClusterExecutor, data: dict[str, Path], tmp_path: Path
) -> None:
    src = str(data["csv"])
    kwargs: dict[str, Any] = {"pieces": 5, "valid_only": True}
    local = validator.split(
        src, str(tmp_path / "local"), "CSV", rejects=str(tmp_path / "local-rejects.csv"), **kwargs
    )
    remote = validator.split(
        src,
        str(tmp_path / "dask"),
        "CSV",
        rejects=str(tmp_path / "dask-rejects.csv"),
        executor=executor,
        **kwargs,
    )
    assert local.report.total_failures > 0

    def tree(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("manifest")
        }

    assert tree(tmp_path / "dask") == tree(tmp_path / "local")
    assert len(tree(tmp_path / "local")) >= 5
    assert (tmp_path / "dask-rejects.csv").read_bytes() == (
        tmp_path / "local-rejects.csv"
    ).read_bytes()
    assert comparable(remote.report) == comparable(local.report)


def test_a_worker_killed_mid_run_changes_nothing(
    cluster: DaskCluster, executor: ClusterExecutor, data: dict[str, Path]
) -> None:
    """Dask reruns the lost pieces elsewhere (the nanny restarts the worker): same report."""
    import psutil

    src = str(data["json"])
    local = validator.preflight(src, "JSON", pieces=30, workers=1)
    victims = cluster.worker_pids()
    assert victims

    def kill_soon() -> None:
        time.sleep(0.3)
        for pid in victims[:1]:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()

    killer = threading.Thread(target=kill_soon)
    killer.start()
    remote = validator.preflight(src, "JSON", pieces=30, executor=executor)
    killer.join()
    assert comparable(remote) == comparable(local)


def test_an_unreachable_scheduler_is_one_line_and_253(data: dict[str, Path]) -> None:
    address = f"tcp://127.0.0.1:{closed_port()}"
    r = _cli("validate", str(data["csv"]), "--format", "CSV", "--scheduler", address)
    assert r.returncode == 253
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and f"cannot reach the Dask scheduler at {address}" in lines[0]
    assert "Traceback" not in r.stderr
    r = _cli(
        "validate", str(data["csv"]), "--format", "CSV", env={"DASK_SCHEDULER_ADDRESS": address}
    )
    assert r.returncode == 253 and "cannot reach the Dask scheduler" in r.stderr


def test_a_path_the_workers_cannot_open_says_to_use_s3(
    executor: ClusterExecutor, tmp_path: Path
) -> None:
    gone = tmp_path / "only-on-the-client.csv"
    gone.write_text("Id,ChannelType,Address\n1,SMS,+12065550100\n")
    listed = list_sources([str(gone)], "CSV").selected
    gone.unlink()  # listed here, absent where the workers look
    with pytest.raises(ConfigError) as info:
        executor.check_sources(listed)
    message = str(info.value)
    assert message == (
        f"a Dask worker of {executor.address} cannot open {listed[0].display} (No such file or "
        "directory): local paths must be readable by every worker; with a remote cluster give "
        "s3:// sources"
    )


def test_standard_input_cannot_go_to_a_cluster(cluster: DaskCluster) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "validator", "validate", "-", "--format", "CSV"],
        input="Id,ChannelType,Address\n1,SMS,+12065550100\n",
        capture_output=True,
        text=True,
        env={**os.environ, "DASK_SCHEDULER_ADDRESS": cluster.address},
        timeout=120,
    )
    assert r.returncode == UsageError.exit_code
    assert r.stderr == (
        "pinpoint-preflight: error: standard input cannot be read by Dask workers (it is read "
        "once, by this process): give a file or s3:// source\n"
    )


def test_a_pipe_cannot_go_to_a_cluster_and_is_named(cluster: DaskCluster, tmp_path: Path) -> None:
    fifo = tmp_path / "audience.csv"
    os.mkfifo(fifo)
    feeder = threading.Thread(
        target=lambda: fifo.write_text("Id,ChannelType,Address\n1,SMS,+12065550100\n")
    )
    feeder.start()
    r = _cli(
        "validate", str(fifo), "--format", "CSV", env={"DASK_SCHEDULER_ADDRESS": cluster.address}
    )
    if feeder.is_alive():  # refused before reading it: let the writer go
        with contextlib.suppress(OSError), open(fifo, "rb") as drain:
            drain.read()
    feeder.join(10)
    assert r.returncode == UsageError.exit_code
    assert r.stderr == (
        f"pinpoint-preflight: error: {fifo} (a pipe) cannot be read by Dask workers (it is read "
        "once, by this process): give a file or s3:// source\n"
    )


def test_an_empty_scheduler_option_is_a_usage_error(data: dict[str, Path]) -> None:
    r = _cli("validate", str(data["csv"]), "--format", "CSV", "--scheduler", " ")
    assert r.returncode == 252 and "scheduler must be an address" in r.stderr


def test_without_a_scheduler_nothing_imports_dask(data: dict[str, Path]) -> None:
    code = (
        "import sys; from validator.cli import run; "
        f"rc = run(['validate', {str(data['csv'])!r}, '--format', 'CSV', '--output', 'text']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"},
        timeout=120,
    )
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stderr


def test_a_local_cluster_for_a_one_machine_try(data: dict[str, Path]) -> None:
    src = str(data["json"])
    local = validator.preflight(src, "JSON", pieces=3, workers=1)
    with dask_executor("local", workers=2) as ex:
        remote = validator.preflight(src, "JSON", pieces=3, executor=ex)
    assert comparable(remote) == comparable(local)


# --- split on the cluster: the workers write the parts to S3 ---------------------------------


def s3_tree(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object below ``prefix`` (relative key -> bytes)."""
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]
    return {k[len(prefix) :]: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def everything_in(client: Any, bucket: str) -> tuple[list[str], list[str]]:
    """Every key in the bucket, and every pending multipart upload (key), asked directly."""
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uploads = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return sorted(keys), sorted(uploads)


def record_lines(data: bytes, header: bool) -> list[bytes]:
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    return lines[1:] if header else lines


SPLITS = [  # (format, pieces, valid only)
    ("csv", 2, True),
    ("csv", 9, False),
    ("json", 3, False),
    ("json", 11, True),
]


@pytest.mark.s3
@pytest.mark.parametrize(("fmt", "pieces", "valid_only"), SPLITS)
def test_split_to_s3_on_the_cluster_is_a_local_split_to_the_byte(
    s3_env: S3Server,
    executor: ClusterExecutor,
    data: dict[str, Path],
    fmt: str,
    pieces: int,
    valid_only: bool,
) -> None:
    client = s3_env.client()
    bucket = s3_env.make_bucket("split")
    settings = AwsSettings(endpoint_url=s3_env.endpoint_url)
    src = str(data[fmt])

    def split(where: str, **kwargs: Any) -> Any:
        rejects = {"rejects": f"s3://{bucket}/{where}-rejects/r.{fmt}"} if valid_only else {}
        return validator.split(
            src,
            f"s3://{bucket}/{where}/",
            fmt.upper(),
            pieces=pieces,
            valid_only=valid_only,
            settings=settings,
            **rejects,
            **kwargs,
        )

    local = split("local", workers=1)
    with distributed.get_task_stream(executor.client) as stream:
        remote = split("dask", executor=executor)
    ran = [t["key"].partition("-")[0] for t in stream.data]
    # the workers checked every piece and wrote its parts: the client copied nothing
    assert ran.count("write_parts") == remote.report.total_pieces
    assert local.report.total_failures > 0
    assert comparable(remote.report) == comparable(local.report)
    here, there = s3_tree(client, bucket, "local/"), s3_tree(client, bucket, "dask/")
    manifest = there.pop("manifest.txt")
    assert manifest == here.pop("manifest.txt").replace(b"/local/", b"/dask/")
    assert there == here
    assert len(there) == len(remote.manifest["Pieces"]) >= min(pieces, 2)
    rejects = s3_tree(client, bucket, "dask-rejects/")
    assert rejects == {
        k: v.replace(b"local-rejects", b"dask-rejects")
        for k, v in s3_tree(client, bucket, "local-rejects/").items()
    }
    # Every input record in exactly one output, byte for byte.
    csv = fmt == "csv"
    written = [ln for part in there.values() for ln in record_lines(part, csv)]
    if valid_only:
        written += record_lines(rejects[f"r.{fmt}"], csv)
    assert sorted(written) == sorted(record_lines(data[fmt].read_bytes(), csv))
    assert everything_in(client, bucket)[1] == []  # no upload left pending


def test_split_to_a_local_folder_on_a_cluster_is_written_by_the_client(
    executor: ClusterExecutor, data: dict[str, Path], tmp_path: Path
) -> None:
    """The workers' paths are not the client's: a local destination is the client's to write
    (the same bytes as a local split)."""
    src = str(data["json"])
    validator.split(src, str(tmp_path / "local"), "JSON", pieces=4, workers=1)
    with distributed.get_task_stream(executor.client) as stream:
        remote = validator.split(src, str(tmp_path / "dask"), "JSON", pieces=4, executor=executor)
    assert [t for t in stream.data if t["key"].startswith("write_parts")] == []

    def tree(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert {k: v.replace(b"/dask", b"/local") for k, v in tree(tmp_path / "dask").items()} == (
        tree(tmp_path / "local")
    )
    assert remote.manifest is not None and len(remote.manifest["Pieces"]) == 4


def _kill_workers_once_held(cluster: DaskCluster, proxy: Any) -> threading.Thread:
    """When the proxy holds a part's upload (a worker caught mid-write), kill every worker
    process (their nannies start new ones), then let the held request go."""
    import psutil

    def kill() -> None:
        if proxy.holding.wait(120):
            for pid in cluster.worker_pids():
                with contextlib.suppress(psutil.NoSuchProcess):
                    psutil.Process(pid).kill()
        time.sleep(0.5)
        proxy.release()

    killer = threading.Thread(target=kill)
    killer.start()
    return killer


def _split_cli(src: Path, bucket: str, proxy: Any, scheduler: str) -> list[str]:
    return [
        "split", str(src), "--to", f"s3://{bucket}/out/", "--format", "CSV", "--pieces", "9",
        "--endpoint-url", proxy.endpoint_url, "--scheduler", scheduler, "--output", "text",
    ]  # fmt: skip


@pytest.mark.s3
def test_workers_killed_mid_split_are_rerun_and_leave_no_upload_behind(
    s3_env: S3Server, cluster: DaskCluster, executor: ClusterExecutor, data: dict[str, Path]
) -> None:
    """Dask reruns the write of a killed worker elsewhere: the split is whole, the same as a
    local one, and the upload the dead worker had begun is aborted."""
    from fault_proxy import Fault, FaultProxy

    client = s3_env.client()
    bucket = s3_env.make_bucket("rerun")
    src = str(data["csv"])
    with FaultProxy(s3_env.endpoint_url) as proxy:
        settings = AwsSettings(endpoint_url=proxy.endpoint_url)
        local = validator.split(src, f"s3://{bucket}/local/", "CSV", pieces=9, settings=settings)
        proxy.add(Fault("UploadPart", action="hold", key="dask/job-0001/part-00002"))
        killer = _kill_workers_once_held(cluster, proxy)
        remote = validator.split(
            src, f"s3://{bucket}/dask/", "CSV", pieces=9, settings=settings, executor=executor
        )
        killer.join()
    assert proxy.faults[0].fired == 1
    assert comparable(remote.report) == comparable(local.report)
    here, there = s3_tree(client, bucket, "local/"), s3_tree(client, bucket, "dask/")
    assert there.pop("manifest.txt") == here.pop("manifest.txt").replace(b"/local/", b"/dask/")
    assert there == here
    assert everything_in(client, bucket)[1] == []
    executor.client.wait_for_workers(2, timeout=60)


@pytest.fixture
def fragile_cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    """A cluster that never reruns a task whose worker died (allowed-failures 0)."""
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
    }
    with dask_cluster(tmp_path / "dask", workers=2, env=env) as running:
        yield running


@pytest.mark.s3
def test_a_worker_killed_mid_split_leaves_nothing_and_exits_253(
    s3_env: S3Server,
    fragile_cluster: DaskCluster,
    data: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fault_proxy import Fault, FaultProxy

    from validator import cli

    if s3_env.name == "seaweedfs":
        pytest.skip("the clean-up is the client's doing: moto shows it")
    client = s3_env.client()
    bucket = s3_env.make_bucket("killed")
    with FaultProxy(s3_env.endpoint_url) as proxy:
        proxy.add(Fault("UploadPart", action="hold", key="out/job-0001/part-00002"))
        killer = _kill_workers_once_held(fragile_cluster, proxy)
        code = cli.run(_split_cli(data["csv"], bucket, proxy, fragile_cluster.address))
        killer.join()
    _, err = capsys.readouterr()
    assert proxy.faults[0].fired == 1
    assert code == 253, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"pinpoint-preflight: error: Dask workers of {fragile_cluster.address}")
    assert err.endswith("; the split was not written (what it had written was removed)\n")
    assert everything_in(client, bucket) == ([], [])


@pytest.mark.s3
def test_a_failing_s3_write_on_a_worker_leaves_nothing(
    s3_env: S3Server,
    cluster: DaskCluster,
    data: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fault_proxy import Fault, FaultProxy

    from validator import cli

    client = s3_env.client()
    bucket = s3_env.make_bucket("failing")
    with FaultProxy(s3_env.endpoint_url) as proxy:
        proxy.add(Fault("UploadPart", key="out/job-0001/part-00003", times=None))
        code = cli.run(_split_cli(data["csv"], bucket, proxy, cluster.address))
    _, err = capsys.readouterr()
    assert proxy.faults[0].fired
    assert code == 254, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"pinpoint-preflight: error: s3://{bucket}/out/job-0001/part-00003-")
    assert "InternalError: injected by the fault proxy" in err
    assert "; the split was not written (what it had written was removed)" in err
    assert everything_in(client, bucket) == ([], [])


@pytest.mark.s3
def test_ctrl_c_mid_split_waits_for_the_parts_in_flight_then_removes_everything(
    s3_env: S3Server, cluster: DaskCluster, data: dict[str, Path]
) -> None:
    """A part still being written when Ctrl-C comes is waited for, then removed with the rest:
    exit 130, no key, no upload."""
    import signal

    from fault_proxy import Fault, FaultProxy

    client = s3_env.client()
    bucket = s3_env.make_bucket("ctrl-c")
    with FaultProxy(s3_env.endpoint_url) as proxy:
        proxy.add(Fault("UploadPart", action="hold", key="out/job-0001/part-00002"))
        args = _split_cli(data["csv"], bucket, proxy, cluster.address)
        proc = subprocess.Popen(
            [sys.executable, "-m", "validator", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert proxy.holding.wait(120), proc.stderr
        time.sleep(3.0)  # the other pieces checked: the client waits on the held part's task
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)  # the client now waits for the held part
        proxy.release()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err == "pinpoint-preflight: error: interrupted: the partial split was removed\n"
    assert ("UploadPart", f"{bucket}/out/job-0001/part-00002-endpoints.csv", 200) in proxy.log
    assert everything_in(client, bucket) == ([], [])
