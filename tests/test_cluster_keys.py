"""The job-wide key rules on a real Dask cluster (a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1, tests/dask_cluster.py): the hashed keys stay on the workers, partitioned
by hash, and the report and ``--failures-out`` are a local run's to the byte, over users whose
endpoints and Ids whose copies are spread across pieces and files."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_cluster import DaskCluster, dask_cluster

import validator
from validator import engine
from validator.cluster import dask_executor
from validator.model import PieceResult
from validator.source import list_sources

pytestmark = pytest.mark.dask
distributed = pytest.importorskip("distributed")

VOLATILE = ("Id", "CreationDate", "CompletionDate")
ROWS = 2500  # per file
USERS = 40  # ~125 endpoints each over the job: most past the 15th
PUSH = ("APNS", "GCM")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    with dask_cluster(tmp_path_factory.mktemp("dask-keys"), workers=2) as running:
        yield running


def _records(seed: int) -> tuple[list[list[dict[str, str]]], Counter[str]]:
    """Two files of records: users drawn from a few, one Id in ten a copy of an earlier one
    (of either file), a bad channel now and then (an error in the same record as the key
    rules' problems). Returns the files and the expected count of each key-rule code."""
    rng = random.Random(seed)
    files: list[list[dict[str, str]]] = []
    users: Counter[str] = Counter()
    ids: list[str] = []
    seen: set[str] = set()
    expected: Counter[str] = Counter()
    n = 0
    for _ in range(2):
        rows = []
        for _ in range(ROWS):
            user = f"user-{rng.randrange(USERS):03d}"
            channel = rng.choice(("EMAIL", "EMAIL", "SMS", *PUSH))
            address = {
                "EMAIL": f"p{n}@example.com",
                "SMS": f"+1206555{n % 10000:04d}",
            }.get(channel, f"{n:064x}")
            if n % 53 == 0:
                channel = "FAX"  # CHANNEL_TYPE: an error of the record itself
            ident = rng.choice(ids) if ids and rng.random() < 0.1 else f"ep-{n:06d}"
            users[user] += 1
            if users[user] > 15:
                expected["USER_ENDPOINTS"] += 1
            if ident in seen:
                expected["DUPLICATE_ID"] += 1
            seen.add(ident)
            ids.append(ident)
            rows.append({"Id": ident, "ChannelType": channel, "Address": address, "User": user})
            n += 1
        files.append(rows)
    return files, expected


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("keys-data")
    files, expected = _records(7)
    out: dict[str, Any] = {"expected": expected}
    for fmt in ("csv", "json"):
        paths = []
        for i, rows in enumerate(files):
            path = folder / f"part-{i}.{fmt}"
            if fmt == "csv":
                lines = ["Id,ChannelType,Address,User.UserId"]
                lines += [f"{r['Id']},{r['ChannelType']},{r['Address']},{r['User']}" for r in rows]
            else:
                lines = [
                    json.dumps(
                        {
                            "Id": r["Id"],
                            "ChannelType": r["ChannelType"],
                            "Address": r["Address"],
                            "User": {"UserId": r["User"]},
                        }
                    )
                    for r in rows
                ]
            path.write_text("\n".join(lines) + "\n")
            paths.append(str(path))
        out[fmt] = paths
    return out


def comparable(report: Any) -> dict[str, Any]:
    return {k: v for k, v in report.to_dict().items() if k not in VOLATILE}


_local: dict[tuple[str, str], tuple[dict[str, Any], bytes]] = {}


def _local_run(job: dict[str, Any], fmt: str, piece_size: str, tmp: Path) -> Any:
    """The run on one machine (this process: the fold counts every key), once per case."""
    if (fmt, piece_size) not in _local:
        out = tmp / f"local-{fmt}-{piece_size}.ndjson"
        report = validator.preflight(
            job[fmt], fmt.upper(), piece_size=piece_size, workers=1, failures_out=out
        )
        _local[fmt, piece_size] = (comparable(report), out.read_bytes())
    return _local[fmt, piece_size]


@pytest.mark.parametrize("partitions", [1, 3, 8])
@pytest.mark.parametrize("piece_size", ["16KiB", "56KiB"])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_users_and_ids_across_pieces_and_files_give_the_local_report(
    cluster: DaskCluster,
    job: dict[str, Any],
    tmp_path: Path,
    fmt: str,
    piece_size: str,
    partitions: int,
) -> None:
    local, local_out = _local_run(job, fmt, piece_size, tmp_path)
    seen: list[PieceResult] = []
    with dask_executor(cluster.address, partitions=partitions) as ex:
        remote = validator.preflight(
            job[fmt],
            fmt.upper(),
            piece_size=piece_size,
            executor=ex,
            failures_out=tmp_path / "dask.ndjson",
            progress=seen.append,
        )
    assert comparable(remote) == local
    assert (tmp_path / "dask.ndjson").read_bytes() == local_out
    # The job really spreads its keys: several pieces in each file, every key rule hit.
    assert len(seen) == remote.total_pieces >= 6
    assert {p["Source"] for p in remote.pieces} == set(job[fmt])
    expected = job["expected"]
    lines = [json.loads(x) for x in local_out.splitlines()]
    got = Counter(x["code"] for x in lines if x["code"] in expected)
    assert got == expected
    assert expected["USER_ENDPOINTS"] > 100 and expected["DUPLICATE_ID"] > 100  # past the cut
    assert remote.failures_by_code["CHANNEL_TYPE"] == 95
    # What the client heard while the pieces ran: summaries, no key.
    assert all(r.users is None and r.ids is None and not r.problems for r in seen)


def test_the_fold_gets_no_keys_only_what_they_flagged(
    cluster: DaskCluster, job: dict[str, Any]
) -> None:
    """Every result the client's fold takes comes without its PieceKeys, with its key rules'
    problems instead (``cross``); the local fold gets the keys and counts them itself."""
    listing = list_sources(job["json"], "JSON")
    folded: list[PieceResult] = []
    keep = lambda outcome, plan: folded.append(outcome.result)  # noqa: E731
    with dask_executor(cluster.address, partitions=4) as ex:
        report = engine.run(listing, definition={}, piece_size="16KiB", executor=ex, on_piece=keep)
    assert len(folded) == report.total_pieces > 10
    assert all(r.users is None and r.ids is None and r.cross is not None for r in folded)
    assert sum(len(r.cross or []) for r in folded) == sum(job["expected"].values())
    local: list[PieceResult] = []
    keep = lambda outcome, plan: local.append(outcome.result)  # noqa: E731
    engine.run(listing, definition={}, piece_size="16KiB", workers=1, on_piece=keep)
    assert len(local) == len(folded)
    assert all(r.users is not None and r.ids is not None and r.cross is None for r in local)
    assert sum(len(r.users.records) for r in local if r.users is not None) == 2 * ROWS


def test_the_lines_are_those_the_records_were_written_on(
    cluster: DaskCluster, job: dict[str, Any], tmp_path: Path
) -> None:
    """Exact lines: the 16th and later endpoints of each user and every later copy of an Id,
    counted here from the records themselves, in source order over both files."""
    files, _ = _records(7)
    want = []
    users: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    for path, rows in zip(job["csv"], files, strict=True):
        for i, r in enumerate(rows):
            users[r["User"]] += 1
            ids[r["Id"]] += 1
            line = i + 2  # after the header
            if users[r["User"]] > 15:
                severity = "warning" if r["ChannelType"] in PUSH else "error"
                want.append((path, line, "USER_ENDPOINTS", severity, users[r["User"]]))
            if ids[r["Id"]] > 1:
                want.append((path, line, "DUPLICATE_ID", "warning", ids[r["Id"]] - 1))
    with dask_executor(cluster.address, partitions=5) as ex:
        validator.preflight(
            job["csv"], "CSV", piece_size="16KiB", executor=ex, failures_out=tmp_path / "f.ndjson"
        )
    got = []
    for x in map(json.loads, (tmp_path / "f.ndjson").read_text().splitlines()):
        if x["code"] in ("USER_ENDPOINTS", "DUPLICATE_ID"):
            n = int(x["message"].split()[2 if x["code"] == "USER_ENDPOINTS" else 4])
            got.append((x["source"], x["line"], x["code"], x["severity"], n))
    assert got == want


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_many_small_files_several_to_a_task_give_the_local_report(
    cluster: DaskCluster, job: dict[str, Any], tmp_path: Path, fmt: str
) -> None:
    """Small whole files go several to a task (pack.py): a task's results are several pieces,
    each with its own runs in every partition, in source order."""
    lines = [x for path in job[fmt] for x in Path(path).read_text().splitlines(keepends=True)]
    header = lines[0] if fmt == "csv" else ""
    body = [x for x in lines if x != header]
    sources = []
    for i in range(0, len(body), 250):  # 20 files of 250 records
        path = tmp_path / "parts" / f"part-{i // 250:02d}.{fmt}"
        path.parent.mkdir(exist_ok=True)
        path.write_text(header + "".join(body[i : i + 250]))
        sources.append(str(path))
    local = validator.preflight(
        sources, fmt.upper(), workers=1, failures_out=tmp_path / "local.ndjson"
    )
    seen: list[PieceResult] = []
    with dask_executor(cluster.address, partitions=6) as ex:
        remote = validator.preflight(
            sources,
            fmt.upper(),
            executor=ex,
            failures_out=tmp_path / "dask.ndjson",
            progress=seen.append,
        )
    assert comparable(remote) == comparable(local)
    assert (tmp_path / "dask.ndjson").read_bytes() == (tmp_path / "local.ndjson").read_bytes()
    assert len(seen) == remote.total_pieces == 20
    assert Counter(
        x["code"] for x in map(json.loads, (tmp_path / "dask.ndjson").read_text().splitlines())
        if x["code"] in job["expected"]
    ) == job["expected"]  # fmt: skip


@pytest.mark.parametrize("partitions", [0, -3])
def test_partitions_below_one_are_a_usage_error_naming_the_parameter(partitions: int) -> None:
    """Refused before any connection: one line naming the library's parameter."""
    from validator.errors import UsageError

    with (
        pytest.raises(UsageError) as caught,
        dask_executor("tcp://127.0.0.1:9", partitions=partitions),
    ):
        pass
    assert str(caught.value) == f"partitions must be at least 1, not {partitions}"
