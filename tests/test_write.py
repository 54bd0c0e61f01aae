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
    manifest = json.loads((dest / "manifest.txt").read_text())
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
        "manifest.txt",
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
    manifest = json.loads(client.get_object(Bucket=bucket, Key="out/manifest.txt")["Body"].read())
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


# --- the manifest is not endpoint data; one split per destination at a time -----------------


def test_validate_of_a_json_split_reads_back_exactly_the_records_written(tmp_path):
    data, records = build(["valid", "bad_value", "valid", "type"] * 25, JSON_KINDS, b"", True, 0)
    (tmp_path / "in.json").write_bytes(data)
    result = validator.split(
        str(tmp_path / "in.json"), to=str(tmp_path / "out"), format="JSON", piece_size=500
    )
    written = result.manifest["Totals"]["PieceRecords"]
    assert written == len(records) == 100
    back = validator.preflight(str(tmp_path / "out"), format="JSON")
    assert back.total_processed == written
    files = {f["Source"]: f["Status"] for f in back.to_dict()["Files"]}
    assert files[str(tmp_path / "out" / "manifest.txt")] == "SKIPPED"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["job-0001", "manifest.txt"]


def test_an_earlier_split_with_manifest_json_is_still_recognised(tmp_path):
    (tmp_path / "in.csv").write_bytes(HEADER + b"1,SMS,+12065550100,n\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text('{"Pieces": [], "Jobs": []}')
    args = ["split", str(tmp_path / "in.csv"), "--to", str(tmp_path / "out")]
    assert cli.run(args) == 252
    assert cli.run([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == [
        "manifest.txt",
        "part-00001-in.csv",
    ]


def test_a_destination_claimed_by_another_split_is_refused_before_writing(tmp_path, capsys):
    (tmp_path / "in.csv").write_bytes(HEADER + b"1,SMS,+12065550100,n\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".pinpoint-preflight-split").write_text("{}")
    code = cli.run(["split", str(tmp_path / "in.csv"), "--to", str(out), "--overwrite"])
    assert code == 252
    err = capsys.readouterr().err
    assert err.startswith(f"pinpoint-preflight: error: {out}: another split is writing there now")
    assert len(err.splitlines()) == 1
    assert [p.name for p in out.iterdir()] == [".pinpoint-preflight-split"]  # theirs, kept


def test_two_splits_at_once_one_wins_the_other_refuses(tmp_path):
    import subprocess
    import sys

    kinds = ["valid", "bad_value"] * 3000
    data, _ = build(kinds, CSV_KINDS, HEADER, True, 0)
    (tmp_path / "in.csv").write_bytes(data)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "validator", "split", str(tmp_path / "in.csv")]
    args += ["--to", str(out), "--piece-size", "4KiB", "--output", "text"]
    runs = [subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
    runs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    codes = sorted(p.wait(120) for p in runs)
    errors = [p.stderr.read().decode() for p in runs if p.stderr]
    assert codes == [1, 252], errors
    refusal = next(e for e in errors if e)
    assert len(refusal.splitlines()) == 1 and "Traceback" not in refusal
    assert "another split is writing there now" in refusal or "holds an earlier split" in refusal
    manifest = json.loads((out / "manifest.txt").read_text())
    listed = {p["Path"] for p in manifest["Pieces"]} | {"manifest.txt"}
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == listed
    assert manifest["Totals"]["PieceRecords"] == 6000


@pytest.mark.s3
def test_two_splits_to_one_s3_prefix_at_once(s3_env, tmp_path):
    """The claim is a conditional write (If-None-Match: *), which moto and SeaweedFS honour."""
    import threading

    from validator.settings import AwsSettings

    settings = AwsSettings(endpoint_url=s3_env.endpoint_url)
    client = s3_env.client()
    bucket = s3_env.make_bucket("race")
    data, _ = build(["valid", "bad_value"] * 200, CSV_KINDS, HEADER, True, 0)
    (tmp_path / "in.csv").write_bytes(data)
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def one() -> None:
        start.wait()
        try:
            outcomes.append(
                validator.split(
                    str(tmp_path / "in.csv"),
                    to=f"s3://{bucket}/out/",
                    format="CSV",
                    piece_size=2000,
                    settings=settings,
                    workers=1,
                )
            )
        except UsageError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    refused = [o for o in outcomes if isinstance(o, UsageError)]
    won = [o for o in outcomes if not isinstance(o, UsageError)]
    assert len(refused) == 1 and len(won) == 1, outcomes
    assert "another split is writing there now" in str(refused[0]) or "earlier split" in str(
        refused[0]
    )
    manifest = won[0].manifest  # type: ignore[attr-defined]
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert keys == {f"out/{p['Path']}" for p in manifest["Pieces"]} | {"out/manifest.txt"}
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # A claim held by someone else: refused before anything is written, their claim kept.
    client.put_object(Bucket=bucket, Key="other/.pinpoint-preflight-split", Body=b"{}")
    with pytest.raises(UsageError, match="another split is writing there now"):
        validator.split(
            str(tmp_path / "in.csv"), to=f"s3://{bucket}/other/", format="CSV", settings=settings
        )
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="other/")["Contents"]}
    assert keys == {"other/.pinpoint-preflight-split"}


def test_a_process_pool_writes_the_parts_and_the_same_bytes(tmp_path):
    """The parts are written by the pool's workers (parts.write_parts), the rejects by the
    caller: the same bytes as a split in this process."""
    from concurrent.futures import ProcessPoolExecutor

    kinds = list(CSV_KINDS) * 60
    data, _ = build(kinds, CSV_KINDS, HEADER, False, 7)
    (tmp_path / "in.csv").write_bytes(data)

    def split(where, **kwargs):
        return validator.split(
            str(tmp_path / "in.csv"),
            to=str(tmp_path / where),
            format="CSV",
            piece_size=2000,
            valid_only=True,
            rejects=str(tmp_path / f"{where}-rejects.csv"),
            **kwargs,
        )

    here = split("solo", workers=1)
    with ProcessPoolExecutor(2) as pool:
        pooled = split("pooled", executor=pool)

    def tree(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert len(here.manifest["Pieces"]) >= 5
    renamed = {k: v.replace(b"pooled", b"solo") for k, v in tree(tmp_path / "pooled").items()}
    assert renamed == tree(tmp_path / "solo")
    for name in ("rejects.csv", "rejects.csv.reasons.jsonl"):
        assert (tmp_path / f"pooled-{name}").read_bytes() == (
            (tmp_path / f"solo-{name}").read_bytes().replace(b"solo-rejects", b"pooled-rejects")
        )
    assert pooled.manifest["Totals"] == here.manifest["Totals"]
