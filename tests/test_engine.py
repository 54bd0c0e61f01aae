"""The engine end to end through the library: report shape, caps, cross-record rules, sameness."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

import validator

DATA = Path(__file__).parent / "data"
MEMBERS = [
    "ApplicationId",
    "Id",
    "Type",
    "JobStatus",
    "CreationDate",
    "CompletionDate",
    "Definition",
    "TotalPieces",
    "CompletedPieces",
    "FailedPieces",
    "TotalProcessed",
    "TotalFailures",
    "Failures",
]
HEADER = "Id,ChannelType,Address,User.UserId\n"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


@pytest.mark.parametrize(
    "name,fmt", [("aws_docs_example.csv", "CSV"), ("aws_docs_example.json", "JSON")]
)
def test_the_aws_documentation_examples_pass(name, fmt):
    report = validator.preflight(str(DATA / name), format=fmt)
    d = report.to_dict()
    assert d["JobStatus"] == "COMPLETED"
    assert d["TotalProcessed"] == 5
    assert d["TotalFailures"] == 0
    assert d["Failures"] == []
    assert d["TotalWarnings"] == 0


def test_report_has_every_import_job_response_member(tmp_path):
    src = write(tmp_path / "a.csv", HEADER + "1,SMS,+12065550100,u1\n")
    d = validator.preflight(str(src), format="CSV").to_dict()
    for member in MEMBERS:
        assert member in d
    assert d["Type"] == "IMPORT"
    assert d["ApplicationId"] is None
    assert d["Definition"] == {"S3Url": str(src), "Format": "CSV"}
    assert d["CreationDate"].endswith("Z") and d["CompletionDate"].endswith("Z")
    for extra in ["Pieces", "Files", "TotalWarnings", "Warnings", "FailuresByCode"]:
        assert extra in d


def test_failures_are_capped_at_100_in_source_order_with_the_true_total(tmp_path):
    rows = "".join(f"{i},SMS,555-{i:04d},u{i}\n" for i in range(150))
    src = write(tmp_path / "bad.csv", HEADER + rows)
    d = validator.preflight(str(src), format="CSV").to_dict()
    assert d["JobStatus"] == "FAILED"
    assert d["TotalProcessed"] == 150
    assert d["TotalFailures"] == 150
    assert len(d["Failures"]) == 100
    assert d["Failures"][0].startswith(f"{src}:2: Address: ")
    assert d["Failures"][0].endswith("[ADDRESS_E164]")
    assert d["Failures"][99].startswith(f"{src}:101: Address: ")
    assert d["FailuresByCode"] == {"ADDRESS_E164": 150}


def test_pieces_add_up(tmp_path):
    rows = "".join(f"{i},SMS,{'+1206555' if i % 7 else 'x'}{i:04d},u{i}\n" for i in range(3000))
    src = write(tmp_path / "p.csv", HEADER + rows)
    d = validator.preflight(str(src), format="CSV", pieces=5, workers=1).to_dict()
    assert d["TotalPieces"] == 5
    assert d["CompletedPieces"] + d["FailedPieces"] == d["TotalPieces"]
    assert sum(p["Records"] for p in d["Pieces"]) == d["TotalProcessed"] == 3000
    assert sum(p["FailedRecords"] for p in d["Pieces"]) == d["TotalFailures"] == 429
    # Pieces are contiguous in lines and bytes, and within 10% of each other in size.
    assert d["Pieces"][0]["FirstLine"] == 2 and d["Pieces"][-1]["LastLine"] == 3001
    for a, b in itertools.pairwise(d["Pieces"]):
        assert b["FirstLine"] == a["LastLine"] + 1
        assert b["ByteRange"][0] == a["ByteRange"][1]
    sizes = [p["ByteRange"][1] - p["ByteRange"][0] for p in d["Pieces"]]
    assert max(sizes) <= 1.1 * min(sizes)


def test_job_too_large_is_decided_from_sizes(tmp_path):
    src = write(tmp_path / "j.csv", HEADER + "1,SMS,+1206,u\n")
    d = validator.preflight(str(src), format="CSV", max_job_size=10).to_dict()
    assert d["JobStatus"] == "FAILED"
    assert d["TotalFailures"] == 0
    assert "[JOB_TOO_LARGE]" in d["JobFailures"][0]


def test_files_compressed_empty_bom_and_skipped(tmp_path):
    folder = tmp_path / "exports"
    write(folder / "a.csv", HEADER + "1,SMS,+12065550100,u1\n")
    write(folder / "sub" / "b.csv", gzip.compress((HEADER + "2,SMS,+1,u\n").encode()))
    write(folder / "sub" / "c.csv", b"")
    write(folder / "sub" / "d.csv", HEADER)
    write(folder / "e.csv", b"\xef\xbb\xbf" + (HEADER + "5,SMS,+12065550105,u5\n").encode())
    write(folder / "notes.txt", "not data")
    write(folder / "f.json", '{"ChannelType":"SMS","Address":"+1"}\n')
    d = validator.preflight(str(folder), format="CSV").to_dict()
    files = {Path(f["Source"]).name: f for f in d["Files"]}
    assert files["notes.txt"]["Status"] == "SKIPPED"
    assert files["f.json"]["Status"] == "SKIPPED"
    assert "JSON" in files["f.json"]["Reason"]
    assert files["a.csv"]["Status"] == "READ"
    assert files["e.csv"]["Status"] == "READ"
    assert {files[n]["Status"] for n in ("b.csv", "c.csv", "d.csv")} == {"FAILED"}
    assert d["TotalProcessed"] == 2
    assert d["TotalFailures"] == 3  # one for each file that could not be read as a whole
    assert d["FailuresByCode"] == {"FILE_COMPRESSED": 1, "FILE_EMPTY": 2}
    by_code = d["WarningsByCode"]
    assert by_code["FILE_BOM"] == 1 and by_code["FORMAT_MIXED"] == 1
    failures = "\n".join(d["Failures"])
    assert f"{folder}/sub/b.csv: gzip-compressed" in failures


def test_ndjson_lines_stay_exact_after_invalid_lines(tmp_path):
    lines = [
        '{"ChannelType":"SMS","Address":"+12065550100"}',
        '{"ChannelType":"SMS","Address":',  # 2: syntax
        "",  # 3: blank
        '["not", "an", "object"]',  # 4: not an object
        '{"ChannelType":"EMAIL","Address":"a@b.co","Adress":"x"}',  # 5: unknown key
        '{"ChannelType":"EMAIL","Address":"a@b.co","Attributes":{"k":"v"}}',  # 6: type
        '{"ChannelType":"SMS","Address":"12065550100"}',  # 7: not E.164
        '{"ChannelType":"EMAIL","Address":"z@b.co"}',
    ]
    src = write(tmp_path / "e.ndjson", "\n".join(lines) + "\n")
    d = validator.preflight(str(src), format="JSON").to_dict()
    assert d["TotalProcessed"] == 7
    got = [(f.split(":")[1], f.rsplit("[", 1)[1].rstrip("]")) for f in d["Failures"]]
    assert got == [
        ("2", "JSON_SYNTAX"),
        ("4", "JSON_NOT_OBJECT"),
        ("5", "FIELD_UNKNOWN"),
        ("6", "FIELD_TYPE"),
        ("7", "ADDRESS_E164"),
    ]


def _generated_csv(path: Path, n: int, broken_at: int | None = None) -> Path:
    rows = []
    for i in range(n):
        kind = i % 11
        address = "+1206555" + f"{i:04d}"
        if kind == 3:
            address = "555 0100"
        quoted = f'"note, {i}"' if i % 5 == 0 else f"n{i}"
        if i == broken_at:
            rows.append(f'{i},SMS,"{address},u{i % 40},n\n')  # an unbalanced quote
            continue
        if kind == 7:
            rows.append(f'{i},SMS,"{address}\nsecond line",u{i % 40},{quoted}\n')
            continue
        if kind == 9 and i % 3 == 0:
            rows.append(f"{i},SMS,{address},u{i % 40}\n")  # one field short
            continue
        rows.append(f"{i % 900},SMS,{address},u{i % 40},{quoted}\n")
    path.write_text("Id,ChannelType,Address,User.UserId,Attributes.note\n" + "".join(rows))
    return path


def _signature(report) -> tuple:
    d = report.to_dict()
    return (
        d["TotalProcessed"],
        d["TotalFailures"],
        d["Failures"],
        d["FailuresByCode"],
        d["TotalWarnings"],
        d["Warnings"],
        d["WarningsByCode"],
        d["JobStatus"],
    )


def test_every_piece_count_and_worker_count_gives_the_same_report(tmp_path):
    src = _generated_csv(tmp_path / "g.csv", 4000)
    outs = []
    base = validator.preflight(
        str(src), format="CSV", pieces=1, workers=1, failures_out=tmp_path / "f1.ndjson"
    )
    outs.append((tmp_path / "f1.ndjson").read_text())
    for pieces, workers in [(3, 1), (7, 2), (16, 2)]:
        out = tmp_path / f"f-{pieces}-{workers}.ndjson"
        r = validator.preflight(
            str(src), format="CSV", pieces=pieces, workers=workers, failures_out=out
        )
        # A piece whose end falls inside a quoted line break is merged with the next one.
        assert pieces // 2 < r.total_pieces <= pieces
        assert _signature(r) == _signature(base)
        # --failures-out is the same but for the piece numbers.
        strip = [
            {k: v for k, v in json.loads(x).items() if k != "piece"}
            for x in out.read_text().splitlines()
        ]
        want = [
            {k: v for k, v in json.loads(x).items() if k != "piece"} for x in outs[0].splitlines()
        ]
        assert strip == want


@pytest.mark.parametrize("broken_at", [None, 5, 2222, 3999])
def test_no_record_is_lost_or_doubled_at_any_piece_boundary(tmp_path, broken_at):
    src = _generated_csv(tmp_path / "g.csv", 4000, broken_at)
    base = validator.preflight(str(src), format="CSV", pieces=1, workers=1)
    assert base.total_processed == 4000  # a broken quote costs one line, not the lines after
    for pieces in range(2, 40, 3):
        r = validator.preflight(str(src), format="CSV", pieces=pieces, workers=1 + pieces % 2)
        assert _signature(r) == _signature(base), pieces
        assert sum(p["Records"] for p in r.to_dict()["Pieces"]) == base.total_processed


def test_failures_out_holds_every_problem(tmp_path):
    rows = "".join(f"{i},SMS,555-{i:04d},u{i}\n" for i in range(150))
    src = write(tmp_path / "bad.csv", HEADER + rows)
    out = tmp_path / "problems.ndjson"
    validator.preflight(str(src), format="CSV", failures_out=out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 150
    assert lines[0] == {
        "source": str(src),
        "line": 2,
        "piece": 0,
        "field": "Address",
        "code": "ADDRESS_E164",
        "severity": "error",
        "message": lines[0]["message"],
    }
    assert [x["line"] for x in lines] == list(range(2, 152))


@pytest.mark.parametrize("fmt", ["CSV", "JSON"])
def test_a_line_too_long_to_be_an_endpoint_is_skipped_not_held(tmp_path, monkeypatch, fmt):
    import validator.blocks as blocks

    monkeypatch.setattr(blocks, "MAX_LINE", 5000)
    monkeypatch.setattr(blocks, "BLOCK_SIZE", 1024)
    if fmt == "CSV":
        good = [b"1,SMS,+12065550100,u1\n", b"2,SMS,+12065550102,u2\n"]
        head = HEADER.encode()
    else:
        good = [
            b'{"ChannelType":"SMS","Address":"+12065550100"}\n',
            b'{"ChannelType":"SMS","Address":"+12065550102"}\n',
        ]
        head = b""
    data = head + good[0] + b"x" * 20_000 + b"\n" + good[1]
    src = write(tmp_path / f"long.{fmt.lower()}", data)
    d = validator.preflight(str(src), format=fmt).to_dict()
    line = 3 if fmt == "CSV" else 2
    assert d["TotalProcessed"] == 3
    assert d["TotalFailures"] == 1
    assert d["Failures"][0].startswith(f"{src}:{line}: a line of 20,001 bytes")
    assert d["Failures"][0].endswith("[ENDPOINT_TOO_LARGE]")
    # split keeps the line, whole, in the rejects.
    result = validator.split(
        str(src),
        to=str(tmp_path / "out"),
        format=fmt,
        valid_only=True,
        rejects=str(tmp_path / f"rejects.{fmt.lower()}"),
    )
    assert result.manifest["Totals"]["RejectedRecords"] == 1
    assert (tmp_path / f"rejects.{fmt.lower()}").read_bytes() == head + b"x" * 20_000 + b"\n"


def test_a_script_without_a_main_guard_can_use_workers(tmp_path):
    # Worker processes must not import the caller's __main__ again (spawn/forkserver would).
    import subprocess
    import sys

    src = write(
        tmp_path / "big.csv",
        HEADER + "".join(f"{i},SMS,+1206555{i:04d},u{i}\n" for i in range(20_000)),
    )
    script = (
        f"import validator, validator.engine as e\n"
        f"e.IN_PROCESS_BELOW = 0\n"
        f"r = validator.preflight({str(src)!r}, format='CSV', pieces=4, workers=2)\n"
        f"print(r.total_processed, r.total_pieces)\n"
    )
    out = subprocess.run(
        [sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["20000", "4"]


def test_a_bad_header_fails_its_file_once_and_the_records_are_still_checked(tmp_path):
    src = write(
        tmp_path / "h.csv",
        "Id,channeltype,Address,ChannelType\n1,x,+12065550100,SMS\n2,x,555,SMS\n",
    )
    d = validator.preflight(str(src), format="CSV").to_dict()
    assert d["TotalProcessed"] == 2
    assert d["TotalFailures"] == 2  # the file, once, and record 2
    assert d["Failures"][0].startswith(f"{src}: channeltype: ")
    assert d["Failures"][0].endswith("[CSV_HEADER_UNKNOWN]")
    assert "'ChannelType'" in d["Failures"][0]
    assert d["Failures"][1].startswith(f"{src}:3: Address: ")
    assert d["Files"][0]["Status"] == "FAILED"
    assert d["FailedPieces"] == 1
