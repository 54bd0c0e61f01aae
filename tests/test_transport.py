"""transport/: the registry by URL scheme, the same functions in every module, and a new
source kind as one module plus one registry line: ``folder://`` (tests/folder_transport.py),
registered here, runs validate and split through the public API with the report and the
bytes a local run gives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import folder_transport
import pytest

import validator
from validator import transport
from validator.errors import UsageError

EXAMPLES = Path(__file__).parent.parent / "examples"
DATA = Path(__file__).parent / "data"

READING = ("list_source", "names_one", "warnings", "open_range", "display")
WRITING = (
    "prepare",
    "join",
    "exists",
    "remove",
    "open_writer",
    "claim",
    "make_folder",
    "remove_folder",
    "read_bytes",
    "holds_other_files",
    "is_folder",
    "is_stream",
    "split_name",
    "clear_partial",
)
CAPABILITIES = ("REMOTE", "READ_ONCE", "ANYWHERE", "FETCH_SMALL_WHOLE")


def test_the_registry_finds_a_transport_by_scheme() -> None:
    assert transport.for_source("s3://bucket/key.csv").NAME == "s3"
    assert transport.for_source("S3://bucket/").NAME == "s3"
    assert transport.for_source("-").NAME == "stdin"
    assert transport.for_source("data/in.csv").NAME == "local"
    assert transport.for_source("gs://bucket/x.csv").NAME == "local"  # no such transport
    assert transport.for_output("-").NAME == "local"  # standard output: a local stream


@pytest.mark.parametrize("name", ["local", "s3"])
def test_every_transport_has_the_same_functions(name: str) -> None:
    module = transport.for_source("s3://b/" if name == "s3" else "x")
    missing = [f for f in (*READING, *WRITING) if not callable(getattr(module, f, None))]
    assert missing == []
    assert [f for f in READING if not callable(getattr(transport.for_source("-"), f, None))] == []
    for kind in (module, transport.for_source("-")):
        assert [c for c in CAPABILITIES if not isinstance(getattr(kind, c, None), bool)] == []


def test_what_a_kind_can_do_is_asked_of_its_transport(tmp_path: Path) -> None:
    from validator.source import SourceFile

    assert transport.anywhere("s3://bucket/out/") and not transport.anywhere(str(tmp_path))
    stdin = SourceFile(display="-", size=-1, kind="stdin")
    pipe = SourceFile(display="in.fifo", size=-1, kind="stdin", path=str(tmp_path / "in.fifo"))
    s3_file = SourceFile(display="s3://b/k.csv", size=10, kind="s3", bucket="b", key="k.csv")
    assert [transport.describe(f) for f in (stdin, pipe, s3_file)] == [
        "standard input",
        "in.fifo (a pipe)",
        "s3://b/k.csv",
    ]
    assert [transport.read_once(f) for f in (stdin, s3_file)] == [True, False]
    assert [transport.fetch_small_whole(f) for f in (stdin, s3_file)] == [False, True]
    assert not transport.anywhere(stdin) and transport.anywhere(s3_file)


def test_clear_partial_takes_back_what_a_dead_writer_left(tmp_path: Path) -> None:
    """A writer whose process died leaves its temporary file: clear_partial removes it, and
    nothing else."""
    target = str(tmp_path / "job-0001" / "part-00001-a.csv")
    local = transport.for_output(target)
    writer = local.open_writer(target)
    writer.write(b"Id\n1\n")  # never committed nor discarded: its process "died"
    (tmp_path / "job-0001" / "other.csv").write_bytes(b"x")
    leftovers = sorted(p.name for p in (tmp_path / "job-0001").iterdir())
    assert len(leftovers) == 2 and leftovers[0].startswith(".part-00001-a.csv.partial-")
    assert local.clear_partial(str(tmp_path), [target]) == []
    assert sorted(p.name for p in (tmp_path / "job-0001").iterdir()) == ["other.csv"]


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[Path]:
    """``folder://data/`` on tmp_path/data and ``folder://out/`` on tmp_path/out."""
    for name in ("data", "out", "local-out"):
        (tmp_path / name).mkdir()
    folder_transport.ROOTS.update(data=str(tmp_path / "data"), out=str(tmp_path / "out"))
    transport.register(folder_transport)  # the one registry line
    job = {
        "in/a-endpoints.csv": (EXAMPLES / "endpoints.csv").read_bytes(),
        "in/notes.txt": b"not endpoint data\n",
        "in/sub/aws.csv": (DATA / "aws_docs_example.csv").read_bytes(),
    }
    for key, body in job.items():
        (tmp_path / "data" / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / key).write_bytes(body)
    yield tmp_path
    folder_transport.ROOTS.clear()


def comparable(report: dict[str, Any], prefix: str) -> str:
    keep = {
        k: report[k]
        for k in (
            "JobStatus",
            "TotalPieces",
            "TotalProcessed",
            "TotalFailures",
            "FailuresByCode",
            "Failures",
            "Warnings",
            "Files",
        )
    }
    return json.dumps(keep, sort_keys=True).replace(prefix, "<job>")


def test_validate_through_a_registered_transport(folders: Path) -> None:
    local = validator.preflight(f"{folders}/data/in/", format="CSV").to_dict()
    remote = validator.preflight("folder://data/in/", format="CSV").to_dict()
    assert remote["TotalFailures"] > 0
    assert remote["Failures"][0].startswith("folder://data/in/a-endpoints.csv:")
    assert comparable(remote, "folder://data/in/") == comparable(local, f"{folders}/data/in/")
    one = validator.preflight("folder://data/in/notes.txt", format="CSV").to_dict()
    assert [f["Source"] for f in one["Files"]] == ["folder://data/in/notes.txt"]


def test_split_through_a_registered_transport(folders: Path) -> None:
    local = validator.split(f"{folders}/data/in/", str(folders / "local-out"), format="CSV")
    remote = validator.split("folder://data/in/", "folder://out/split/", format="CSV")
    assert remote.written == local.written
    assert remote.written[-1] == "manifest.txt"
    for name in local.written[:-1]:
        assert (folders / "out/split" / name).read_bytes() == (
            folders / "local-out" / name
        ).read_bytes()
    assert not (folders / "out/split/.pinpoint-preflight-split").exists()  # the claim given back
    manifest = json.loads((folders / "out/split/manifest.txt").read_bytes())
    assert manifest["Jobs"][0]["Url"] == "folder://out/split/job-0001/"
    # a second split to the same place refuses, and leaves the first one whole
    with pytest.raises(UsageError, match="holds an earlier split"):
        validator.split("folder://data/in/", "folder://out/split/", format="CSV")
    assert sorted(p.name for p in (folders / "out/split").iterdir()) == ["job-0001", "manifest.txt"]


def test_a_failed_split_through_a_transport_leaves_nothing(folders: Path) -> None:
    (folders / "out/busy").mkdir()
    (folders / "out/busy/.pinpoint-preflight-split").write_bytes(b"{}")
    with pytest.raises(UsageError, match="another split is writing there now"):
        validator.split("folder://data/in/", "folder://out/busy/", format="CSV")
    assert [p.name for p in (folders / "out/busy").iterdir()] == [".pinpoint-preflight-split"]
    (folders / "out/rejects.csv").write_bytes(b"x")
    with pytest.raises(UsageError, match="exists; use --overwrite"):
        validator.split(
            "folder://data/in/",
            "folder://out/two/",
            format="CSV",
            valid_only=True,
            rejects="folder://out/rejects.csv",
        )
    assert not (folders / "out/two").exists()
    with pytest.raises(UsageError, match="no folder registered"):  # before any work
        validator.split("folder://data/in/", "folder://nowhere/x/", format="CSV")


def test_local_writes_are_whole_or_absent(tmp_path: Path) -> None:
    from validator.transport import local

    target = str(tmp_path / "a" / "b" / "out.csv")
    writer = local.open_writer(target, "--to")
    assert writer.made == [str(tmp_path / "a"), str(tmp_path / "a" / "b")]
    writer.write(b"Id\n1\n")
    assert not Path(target).exists()  # a temporary name until commit
    writer.commit()
    assert Path(target).read_bytes() == b"Id\n1\n"
    writer.remove()
    assert not Path(target).exists()
    for folder in reversed(writer.made):
        local.remove_folder(folder)
    assert list(tmp_path.iterdir()) == []
    again = local.open_writer(str(tmp_path / "x.csv"))
    again.write(b"half")
    assert again.discard() is None
    assert list(tmp_path.iterdir()) == []


def test_local_claim_is_exclusive(tmp_path: Path) -> None:
    from validator.transport import local

    claim = str(tmp_path / ".claim")
    assert local.claim(claim, b"{}") is True
    assert local.claim(claim, b"{}") is False
    assert local.read_bytes(claim) == b"{}"
    local.remove(claim)
    local.remove(claim)  # gone already: nothing to say
    assert not local.exists(claim)
