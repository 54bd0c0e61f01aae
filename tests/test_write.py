"""split: every record lands in exactly one output, byte for byte; outputs whole or not at all."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import validator
from validator import cli
from validator.errors import Interrupted, UsageError
from validator.write import _Splitter

HEADER = b"Id,ChannelType,Address,Attributes.note\n"

# Kinds of CSV record: (bytes for record i, does it fail?)
CSV_KINDS = {
    "valid": (lambda i: f"{i},SMS,+1206555{i:04d},n{i}\n".encode(), False),
    "quoted_comma": (lambda i: f'{i},EMAIL,u{i}@example.com,"a, b"\n'.encode(), False),
    "doubled_quote": (lambda i: f'{i},EMAIL,u{i}@example.com,"say ""hi"""\n'.encode(), False),
    "bad_value": (lambda i: f"{i},SMS,555-{i:04d},n\n".encode(), True),
    "short_row": (lambda i: f"{i},SMS,+1206\n".encode(), True),
    "newline_in_value": (lambda i: f'{i},EMAIL,u{i}@example.com,"line\nbreak"\n'.encode(), True),
    "broken_quote": (lambda i: f'{i},SMS,"+1206555{i:04d},n\n'.encode(), True),
    "crlf": (lambda i: f"{i},SMS,+1206555{i:04d},n\r\n".encode(), False),
}
VALID_JSON = '{{"Id":"{i}","ChannelType":"SMS","Address":"+1206555{i:04d}"}}\n'
TYPE_JSON = '{{"Id":"{i}","ChannelType":"EMAIL","Address":"a@b.co","Attributes":{{"k":"v"}}}}\n'
JSON_KINDS = {
    "valid": (lambda i: VALID_JSON.format(i=i).encode(), False),
    "bad_value": (lambda i: f'{{"Id":"{i}","ChannelType":"SMS","Address":"555"}}\n'.encode(), True),
    "syntax": (lambda i: f'{{"Id":"{i}","ChannelType":\n'.encode(), True),
    "type": (lambda i: TYPE_JSON.format(i=i).encode(), True),
}


def build(kinds: list[str], table: dict, header: bytes, final_newline: bool, blank_every: int):
    """The file, and per record: (start line, bytes, fails)."""
    out = [header]
    line = 2 if header else 1
    records = []
    for i, kind in enumerate(kinds):
        if blank_every and i % blank_every == blank_every - 1:
            out.append(b"\n")
            line += 1
        make, fails = table[kind]
        data = make(i)
        records.append((line, data, fails))
        out.append(data)
        line += data.count(b"\n")
    if not final_newline and records:
        last_line, data, fails = records[-1]
        records[-1] = (last_line, data.rstrip(b"\r\n"), fails)
        out[-1] = out[-1].rstrip(b"\r\n")
    return b"".join(out), records


def read_outputs(dest: Path, rejects: Path, header: bytes):
    manifest = json.loads((dest / "manifest.json").read_text())
    body = b""
    for piece in manifest["Pieces"]:
        data = (dest / piece["Path"]).read_bytes()
        assert data.startswith(header)
        assert hashlib.sha256(data).hexdigest() == piece["Sha256"]
        assert len(data) == piece["Bytes"]
        body += data[len(header) :]
    rejected = rejects.read_bytes()[len(header) :] if rejects.exists() else b""
    return manifest, body, rejected


def terminated(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kinds=st.lists(st.sampled_from(sorted(CSV_KINDS)), min_size=1, max_size=60),
    final_newline=st.booleans(),
    blank_every=st.sampled_from([0, 7]),
    piece_size=st.integers(min_value=40, max_value=900),
    job_factor=st.integers(min_value=1, max_value=4),
)
def test_csv_pieces_plus_rejects_are_the_input(
    tmp_path_factory, kinds, final_newline, blank_every, piece_size, job_factor
):
    tmp = tmp_path_factory.mktemp("split")
    data, records = build(kinds, CSV_KINDS, HEADER, final_newline, blank_every)
    src = tmp / "in.csv"
    src.write_bytes(data)
    result = validator.split(
        str(src),
        to=str(tmp / "out"),
        format="CSV",
        workers=1,
        piece_size=piece_size,
        max_job_size=piece_size * job_factor + 200,
        valid_only=True,
        rejects=str(tmp / "rejects.csv"),
    )
    manifest, body, rejected = read_outputs(tmp / "out", tmp / "rejects.csv", HEADER)
    want_ok = b"".join(terminated(d) for _, d, fails in records if not fails)
    want_bad = b"".join(terminated(d) for _, d, fails in records if fails)
    assert body == want_ok
    assert rejected == want_bad
    totals = manifest["Totals"]
    assert totals["InputRecords"] == len(records) == result.report.total_processed
    assert totals["PieceRecords"] + totals["RejectedRecords"] == len(records)
    assert totals["RejectedRecords"] == sum(1 for *_, fails in records if fails)
    for job in manifest["Jobs"]:
        assert job["Bytes"] <= manifest["MaxJobSize"]
    if want_bad:
        reasons = [
            json.loads(x) for x in (tmp / "rejects.csv.reasons.jsonl").read_text().splitlines()
        ]
        assert [r["line"] for r in reasons] == [line for line, _, fails in records if fails]
        assert all(r["codes"] for r in reasons)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kinds=st.lists(st.sampled_from(sorted(JSON_KINDS)), min_size=1, max_size=60),
    final_newline=st.booleans(),
    piece_size=st.integers(min_value=60, max_value=900),
)
def test_json_pieces_plus_rejects_are_the_input(tmp_path_factory, kinds, final_newline, piece_size):
    tmp = tmp_path_factory.mktemp("split")
    data, records = build(kinds, JSON_KINDS, b"", final_newline, 0)
    src = tmp / "in.ndjson"
    src.write_bytes(data)
    validator.split(
        str(src),
        to=str(tmp / "out"),
        format="JSON",
        workers=1,
        piece_size=piece_size,
        valid_only=True,
        rejects=str(tmp / "rejects.ndjson"),
    )
    _, body, rejected = read_outputs(tmp / "out", tmp / "rejects.ndjson", b"")
    assert body == b"".join(terminated(d) for _, d, fails in records if not fails)
    assert rejected == b"".join(terminated(d) for _, d, fails in records if fails)


def test_without_valid_only_every_record_goes_to_the_pieces(tmp_path):
    kinds = ["valid", "bad_value", "quoted_comma", "short_row"] * 30
    data, _ = build(kinds, CSV_KINDS, HEADER, True, 0)
    (tmp_path / "in.csv").write_bytes(data)
    result = validator.split(
        str(tmp_path / "in.csv"), to=str(tmp_path / "out"), format="CSV", piece_size=500, workers=2
    )
    assert result.job_status == "FAILED"
    manifest, body, _ = read_outputs(tmp_path / "out", tmp_path / "none.csv", HEADER)
    assert body == data[len(HEADER) :]
    assert manifest["Totals"]["PieceRecords"] == 120
    names = [p["Path"] for p in manifest["Pieces"]]
    assert names == sorted(names)


def test_a_rerun_refuses_to_overwrite_unless_asked(tmp_path):
    (tmp_path / "in.csv").write_bytes(HEADER + b"1,SMS,+12065550100,n\n")
    args = ["split", str(tmp_path / "in.csv"), "--to", str(tmp_path / "out")]
    assert cli.run(args) == 0
    assert cli.run(args) == 252
    assert cli.run([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == [
        "manifest.json",
        "part-00001-in.csv",
    ]


def test_valid_only_needs_rejects():
    with pytest.raises(UsageError, match=r"^valid_only needs a rejects file"):  # the parameter
        validator.split("x.csv", to="out", valid_only=True)


def test_an_interrupted_split_leaves_nothing_behind(tmp_path, monkeypatch):
    data, _ = build(["valid", "bad_value"] * 200, CSV_KINDS, HEADER, True, 0)
    (tmp_path / "in.csv").write_bytes(data)
    real = _Splitter.piece
    calls = []

    def interrupted(self, outcome, plan):
        calls.append(outcome.index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(self, outcome, plan)

    monkeypatch.setattr(_Splitter, "piece", interrupted)
    with pytest.raises(Interrupted):
        validator.split(
            str(tmp_path / "in.csv"),
            to=str(tmp_path / "out"),
            format="CSV",
            piece_size=1000,
            workers=1,
            valid_only=True,
            rejects=str(tmp_path / "rejects.csv"),
        )
    assert calls == [0, 1, 2]
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "in.csv"]
    assert leftovers == []
    # And through the command line: exit 130, nothing written.
    calls.clear()
    code = cli.run(
        [
            "split",
            str(tmp_path / "in.csv"),
            "--to",
            str(tmp_path / "out2"),
            "--piece-size",
            "1000",
            "--workers",
            "1",
        ]
    )
    assert code == 130
    assert not [p for p in (tmp_path / "out2").rglob("*") if p.is_file()]


@pytest.mark.s3
def test_split_from_and_to_s3(s3_env, tmp_path):
    """A local file split onto an S3 prefix, then that prefix split back to a local folder:
    the records come back byte for byte, and the manifest's sha256 match the objects."""
    from validator.settings import AwsSettings

    settings = AwsSettings(endpoint_url=s3_env.endpoint_url)
    client = s3_env.client()
    bucket = s3_env.make_bucket("split")
    kinds = ["valid", "bad_value", "quoted_comma", "newline_in_value", "short_row"] * 40
    data, records = build(kinds, CSV_KINDS, HEADER, True, 0)
    (tmp_path / "in.csv").write_bytes(data)
    result = validator.split(
        str(tmp_path / "in.csv"),
        to=f"s3://{bucket}/out/",
        format="CSV",
        piece_size=600,
        max_job_size=1500,
        valid_only=True,
        rejects=f"s3://{bucket}/rejects/in.csv",
        settings=settings,
    )
    manifest = json.loads(client.get_object(Bucket=bucket, Key="out/manifest.json")["Body"].read())
    assert manifest == result.manifest
    body = b""
    for piece in manifest["Pieces"]:
        obj = client.get_object(Bucket=bucket, Key=f"out/{piece['Path']}")["Body"].read()
        assert hashlib.sha256(obj).hexdigest() == piece["Sha256"]
        assert obj.startswith(HEADER)
        body += obj[len(HEADER) :]
    assert body == b"".join(d for _, d, fails in records if not fails)
    rejected = client.get_object(Bucket=bucket, Key="rejects/in.csv")["Body"].read()
    assert rejected == HEADER + b"".join(d for _, d, fails in records if fails)
    assert len(manifest["Jobs"]) >= 2
    assert all(j["Url"].startswith(f"s3://{bucket}/out/job-") for j in manifest["Jobs"])
    # Back from S3 to disk: one job folder is one import job's S3Url.
    job = manifest["Jobs"][0]
    back = validator.split(job["Url"], to=str(tmp_path / "back"), format="CSV", settings=settings)
    assert back.job_status == "COMPLETED"
    assert back.manifest["Totals"]["PieceRecords"] == job["Records"]
    # A second split to the same prefix is refused.
    with pytest.raises(UsageError, match="--overwrite"):
        validator.split(
            str(tmp_path / "in.csv"), to=f"s3://{bucket}/out/", format="CSV", settings=settings
        )
