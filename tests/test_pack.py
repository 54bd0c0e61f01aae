"""Many small files packed into shared tasks (validator/pack.py): the report and --failures-out
are those of one task per file, byte for byte, for 1 and 2 workers; and every record keeps its
own file's line number: the same problems as the same records in one file, line for line."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

import validator
from validator import pack

HEADER = "Id,ChannelType,Address,User.UserId,Attributes.note,Metrics.n\n"


def _row(i: int) -> str:
    address = "555 0100" if i % 13 == 3 else f"+1206555{i % 10000:04d}"
    if i % 97 == 5:
        return f'{i % 700},SMS,"{address}\nsecond line",u{i % 40},n{i},{i}\n'  # a line break
    if i % 41 == 0:
        return f"{i},SMS,{address}\n"  # short
    if i % 59 == 0:
        return f"{i},sms,{address},u{i % 40},x,twelve\n"  # rule defects
    if i % 83 == 0:
        return f'{i},SMS,{address},u{i % 40},Acme "Labs,{i}\n'  # a stray quote
    return f'{i % 700},SMS,{address},u{i % 40},"note, {i}",{i % 7}\n'


def _tree(tmp_path: Path, fmt: str) -> tuple[Path, Path, list[int]]:
    """Part files (one with another header, one without its final newline, one empty, one
    header only, one with a broken quote left open) and one file of the same records."""
    parts, whole = tmp_path / f"parts-{fmt}", tmp_path / f"whole.{fmt.lower()}"
    parts.mkdir()
    sizes = [150] * 12 + [1, 0, 37, 150, 2, 300, 150, 150]
    chunks: list[list[str]] = []
    i = 0
    for n in sizes:
        chunks.append([_json(i + k) if fmt == "JSON" else _row(i + k) for k in range(n)])
        i += n
    if fmt == "CSV":
        chunks[16][1] = '99999,SMS,"+12065550100,u1,n,1\n'  # open quote, even file: bleeds
    else:
        chunks[16][1] = "{not json\n"
    for k, rows in enumerate(chunks):
        body = "".join(rows)
        if k == 7:
            body = body.rstrip("\n")  # no final newline
        text = (HEADER + body) if fmt == "CSV" else body
        if fmt == "CSV" and k == 13:
            text = HEADER  # header only
        (parts / f"part-{k:03d}.{fmt.lower()}").write_text(text)
    whole.write_text(
        (HEADER if fmt == "CSV" else "")
        + "".join("".join(rows).rstrip("\n") + "\n" for rows in chunks if rows)
    )
    return parts, whole, [len(rows) for rows in chunks]


def _json(i: int) -> str:
    address = "555 0100" if i % 13 == 3 else f"+1206555{i % 10000:04d}"
    if i % 61 == 0:
        return "[1, 2]\n"
    channel = "sms" if i % 59 == 0 else "SMS"
    return (
        f'{{"Id":"{i % 700}","ChannelType":"{channel}","Address":"{address}",'
        f'"User":{{"UserId":"u{i % 40}"}},"Metrics":{{"n":{i % 7}}}}}\n'
    )


def _comparable(report: validator.Report) -> dict:
    d = report.to_dict()
    for key in ("Id", "CreationDate", "CompletionDate"):
        d.pop(key)
    return d


@pytest.fixture(params=["inline", "threads", "processes"])
def executor(request) -> Iterator[Executor | None]:
    if request.param == "inline":
        yield None
        return
    pool: Executor = (
        ThreadPoolExecutor(2)
        if request.param == "threads"
        else ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    )
    with pool:
        yield pool


@pytest.mark.parametrize("fmt", ["CSV", "JSON"])
def test_packed_files_give_the_report_and_failures_out_of_one_task_per_file(
    tmp_path, monkeypatch, executor, fmt
):
    parts, _, _ = _tree(tmp_path, fmt)
    kw = {"format": fmt, "workers": 1 if executor is None else None, "executor": executor}
    monkeypatch.setattr(pack, "PACK_BYTES", 6000)  # several packs, of several files each
    packed = validator.preflight(str(parts), failures_out=tmp_path / "packed.ndjson", **kw)
    monkeypatch.setattr(pack, "PACK_FILE_BELOW", 0)  # every file a task of its own
    alone = validator.preflight(str(parts), failures_out=tmp_path / "alone.ndjson", **kw)
    assert _comparable(packed) == _comparable(alone)
    assert (tmp_path / "packed.ndjson").read_bytes() == (tmp_path / "alone.ndjson").read_bytes()
    assert packed.to_dict()["TotalFailures"] > 50


@pytest.mark.parametrize("fmt", ["CSV", "JSON"])
def test_packs_keep_each_files_lines_the_same_problems_as_one_file(tmp_path, fmt):
    parts, whole, sizes = _tree(tmp_path, fmt)
    validator.preflight(str(parts), format=fmt, workers=1, failures_out=tmp_path / "p.ndjson")
    validator.preflight(str(whole), format=fmt, workers=1, failures_out=tmp_path / "w.ndjson")
    files = sorted(p.name for p in parts.iterdir())
    first_line = {}  # the whole file's line of each part's first record
    line = 2 if fmt == "CSV" else 1
    for name, rows in zip(files, sizes, strict=True):
        first_line[name] = line
        line += sum(r.count("\n") for r in _rows_of(fmt, rows, name, sizes, files))
    got, want = Counter(), Counter()
    for rec in map(json.loads, (tmp_path / "p.ndjson").read_text().splitlines()):
        if rec.get("Line") is None or rec["Code"] in ("FILE_NO_FINAL_NEWLINE", "FILE_EMPTY"):
            continue
        name = Path(rec["Source"]).name
        start = 2 if fmt == "CSV" else 1
        got[(rec["Line"] - start + first_line[name], rec["Code"])] += 1
    for rec in map(json.loads, (tmp_path / "w.ndjson").read_text().splitlines()):
        if rec.get("Line") is not None:
            want[(rec["Line"], rec["Code"])] += 1
    assert got == want


def _rows_of(fmt: str, rows: int, name: str, sizes: list[int], files: list[str]) -> list[str]:
    k = files.index(name)
    start = sum(sizes[:k])
    out = [_json(start + j) if fmt == "JSON" else _row(start + j) for j in range(rows)]
    if k == 16 and rows > 1:
        out[1] = '99999,SMS,"+12065550100,u1,n,1\n' if fmt == "CSV" else "{not json\n"
    return out


def test_only_whole_small_files_are_packed_in_source_order(tmp_path):
    parts, _, _ = _tree(tmp_path, "CSV")
    from validator.engine import list_sources

    listing = list_sources([str(parts)], "CSV")
    from validator.piece import PieceTask
    from validator.pieces import plan_pieces

    plans = plan_pieces(listing, piece_size=4000)
    tasks = [PieceTask(p, "CSV", plan.columns, None) for plan in plans for p in plan.pieces]
    packs = pack.pack_tasks(tasks, workers=2)
    assert [t for p in packs for t in p] == tasks
    for p in packs:
        if len(p) > 1:
            assert all(pack.packable(t) for t in p)
    assert any(len(p) > 1 for p in packs)
    assert any(not pack.packable(t) for t in tasks)  # pieces of a cut file stay alone


@pytest.mark.s3
def test_packed_s3_objects_fetched_side_by_side_give_the_same_report(tmp_path, monkeypatch, s3_env):
    from validator.settings import AwsSettings

    parts, _, _ = _tree(tmp_path, "CSV")
    bucket = s3_env.make_bucket("packs")
    client = s3_env.client()
    for p in sorted(parts.iterdir()):
        client.put_object(Bucket=bucket, Key=f"parts/{p.name}", Body=p.read_bytes())
    settings = AwsSettings(endpoint_url=s3_env.endpoint_url)
    url = f"s3://{bucket}/parts/"
    kw = {"format": "CSV", "settings": settings, "workers": 2}
    monkeypatch.setattr(pack, "PACK_BYTES", 6000)
    packed = validator.preflight(url, failures_out=tmp_path / "packed.ndjson", **kw)
    monkeypatch.setattr(pack, "PACK_FILE_BELOW", 0)
    alone = validator.preflight(url, failures_out=tmp_path / "alone.ndjson", **kw)
    assert _comparable(packed) == _comparable(alone)
    assert (tmp_path / "packed.ndjson").read_bytes() == (tmp_path / "alone.ndjson").read_bytes()
    local = validator.preflight(str(parts), format="CSV", workers=1).to_dict()
    assert packed.to_dict()["FailuresByCode"] == local["FailuresByCode"]


def _details(report: validator.Report) -> list[tuple]:
    return [
        (d.source, d.line, d.field, d.code, d.value, d.suggestion)
        for d in [*report.failure_problems, *report.warning_problems]
    ]


@pytest.mark.parametrize("fmt", ["CSV", "JSON"])
def test_packed_files_carry_the_offending_values_of_one_task_per_file(tmp_path, monkeypatch, fmt):
    # Each file keeps its own budget of values (its first records with an error or a
    # warning), whether it was checked alone or in a table with the other files of its pack.
    parts, _, _ = _tree(tmp_path, fmt)
    monkeypatch.setattr(pack, "PACK_BYTES", 30000)  # packs of several files
    packed = validator.preflight(str(parts), format=fmt, workers=1)
    monkeypatch.setattr(pack, "PACK_FILE_BELOW", 0)
    alone = validator.preflight(str(parts), format=fmt, workers=1)
    assert _details(packed) == _details(alone)
    assert sum(v[4] is not None for v in _details(packed)) > 20


def test_a_pack_whose_files_change_column_layout_checks_each_run_in_order(tmp_path, monkeypatch):
    # Files of two headers: each run of one layout is checked as one table, and every file's
    # problems, values and keys are those it has alone.
    parts = tmp_path / "parts"
    parts.mkdir()
    short = "Id,ChannelType,Address,User.UserId\n"
    for k in range(8):
        rows = [_row(k * 40 + j) for j in range(40)]
        if k % 3 == 1:
            rows = [",".join(r.rstrip("\n").split(",")[:4]) + "\n" for r in rows]
        (parts / f"part-{k}.csv").write_text((short if k % 3 == 1 else HEADER) + "".join(rows))
    packed = validator.preflight(str(parts), format="CSV", workers=1)
    monkeypatch.setattr(pack, "PACK_FILE_BELOW", 0)
    alone = validator.preflight(str(parts), format="CSV", workers=1)
    assert _comparable(packed) == _comparable(alone)
    assert _details(packed) == _details(alone)
    assert packed.to_dict()["TotalProcessed"] == 8 * 40
    assert packed.to_dict()["TotalFailures"] > 20


def _odd_objects(fmt: str) -> dict[str, bytes]:
    """Small objects whose heads say something: compressed, blank, a BOM, header only, a bad
    header, a header longer than the plan's 64 KiB head read, another column layout."""
    if fmt == "CSV":
        long_name = "Attributes." + "x" * 70_000
        return {
            "a-gzip.csv": b"\x1f\x8b\x08\x00" + bytes(40),
            "b-blank.csv": b" \n\n",
            "c-bom.csv": b"\xef\xbb\xbf" + HEADER.encode() + _row(1).encode(),
            "d-header-only.csv": HEADER.encode(),
            "e-bad-header.csv": b"Id,ChannelType,Adress\n1,SMS,+12065550100\n",
            "f-long-header.csv": f"ChannelType,Address,{long_name}\nSMS,+12065550100,x\n".encode(),
            "g-other.csv": b"ChannelType,Address\nSMS,555 0100\nEMAIL,a@example.com\n",
        }
    return {
        "a-gzip.json": b"\x1f\x8b\x08\x00" + bytes(40),
        "b-blank.json": b" \n\n",
        "c-bom.json": b"\xef\xbb\xbf" + _json(1).encode(),
        "d-not-json.json": b"{nope\n" + _json(2).encode(),
    }


@pytest.mark.s3
@pytest.mark.parametrize("fmt", ["CSV", "JSON"])
def test_small_s3_objects_are_inspected_from_the_one_get_of_their_pack(
    tmp_path, monkeypatch, s3_env, fmt
):
    # The plan reads no head of a small object; the pack's worker reads it from the object it
    # fetched whole. Reports, details and --failures-out are those of the plan reading every
    # head (a file per task), and every small object costs one GET.
    from validator.settings import AwsSettings

    parts, _, _ = _tree(tmp_path, fmt)
    bucket = s3_env.make_bucket("inspect")
    client = s3_env.client()
    objects = {p.name: p.read_bytes() for p in sorted(parts.iterdir())} | _odd_objects(fmt)
    for name, body in objects.items():
        client.put_object(Bucket=bucket, Key=f"parts/{name}", Body=body)
    gets: list[str] = []
    client.meta.events.register(
        "before-call.s3.GetObject", lambda params, **_: gets.append(params["url_path"])
    )
    url = f"s3://{bucket}/parts/"
    kw = {"format": fmt, "settings": AwsSettings(endpoint_url=s3_env.endpoint_url)}
    packed = validator.preflight(url, s3_client=client, workers=2, **kw)
    small = [n for n, b in objects.items() if len(b)]
    assert sorted(gets) == sorted(f"/parts/{n}" for n in small)  # one GET each
    monkeypatch.setattr(pack, "PACK_FILE_BELOW", 0)  # heads read by the plan, a task a file
    for workers in (1, 2):
        out = tmp_path / f"alone-{workers}.ndjson"
        alone = validator.preflight(url, failures_out=out, workers=workers, **kw)
        monkeypatch.setattr(pack, "PACK_FILE_BELOW", 4 << 20)
        mine = tmp_path / f"packed-{workers}.ndjson"
        again = validator.preflight(url, failures_out=mine, workers=workers, **kw)
        monkeypatch.setattr(pack, "PACK_FILE_BELOW", 0)
        assert _comparable(again) == _comparable(alone)
        assert _details(again) == _details(alone)
        assert mine.read_bytes() == out.read_bytes()
    assert _comparable(packed) == _comparable(alone)
    codes = packed.to_dict()["FailuresByCode"]
    assert "FILE_COMPRESSED" in codes and "FILE_EMPTY" in codes
