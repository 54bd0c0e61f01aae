"""The msgspec NDJSON reader gives the same reports as the pyarrow one it replaced.

``tests/legacy_read_json.py`` is the old reader, kept only as the reference: every file here
is validated with it (one worker, in this process) and with the new reader (one and two
workers, several pieces, several block sizes), and the report and ``--failures-out`` must be
identical. The files are the project's own examples, generated benchmark files with every
defect kind, and hand-made lines holding every rule's defect, placed at block boundaries.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import validator
import validator.blocks as blocks
from validator import engine

sys.path.insert(0, str(Path(__file__).parent))
import legacy_read_json

ROOT = Path(__file__).resolve().parents[1]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "benchmarks/generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_generate"] = module
    spec.loader.exec_module(module)
    return module


# Lines with one defect each of every kind both readers agree on (the old reader's context-
# dependent cases, where pyarrow's type inference decided what was checked, are left out).
GOOD = '{"ChannelType":"SMS","Address":"+12065550100","Id":"g%d","User":{"UserId":"u%d"}}'
DEFECTS = [
    '{"ChannelType":"SMS","Address":',  # JSON_SYNTAX
    '{"ChannelType":"SMS","Address":"+1",}',  # JSON_SYNTAX, trailing comma
    "{'ChannelType':'SMS'}",  # JSON_SYNTAX, single quotes
    '["not", "an", "object"]',  # JSON_NOT_OBJECT
    '"a string"',
    "42",
    '{"ChannelType":"EMAIL","Address":"a@b.co","Adress":"x"}',  # FIELD_UNKNOWN
    '{"ChannelType":"EMAIL","Address":"a@b.co","Location":{"Zip":"1"}}',
    '{"ChannelType":"EMAIL","Address":"a@b.co","Attributes":{"k":"v"}}',  # FIELD_TYPE
    '{"ChannelType":"EMAIL","Address":"a@b.co","Location":{"Latitude":"north"}}',
    '{"ChannelType":"EMAIL","Address":"a@b.co","Location":"Berlin"}',
    '{"ChannelType":"EMAIL","Address":"a@b.co","Id":7}',
    '{"ChannelType":"EMAIL","Address":"a@b.co","Metrics":{"m":"x"}}',
    '{"ChannelType":"EMAIL","Address":"a@b.co","Attributes":{"k":["a",1]}}',
    '{"ChannelType":"SMS","Address":"12065550100"}',  # ADDRESS_E164
    '{"ChannelType":"EMAIL","Address":"not-an-email"}',  # ADDRESS_EMAIL (warning)
    '{"ChannelType":"sms","Address":"+12065550100"}',  # CHANNEL_TYPE
    '{"Address":"+12065550100"}',  # REQUIRED_MISSING
    '{"ChannelType":"SMS","Address":""}',
    "{}",
    '{"Id":"only-id"}',
    '{"Id":"x","OptOut":"YES"}',  # OPT_OUT
    '{"Id":"x","EndpointStatus":"ON"}',  # ENDPOINT_STATUS
    '{"Id":"x","EffectiveDate":"2019-02-30"}',  # EFFECTIVE_DATE
    '{"Id":"x","EffectiveDate":"yesterday"}',
    '{"Id":"x","Location":{"Country":"DEU"}}',  # COUNTRY_CODE (warning)
    '{"Id":"x","Demographic":{"Locale":"en-US"}}',  # LOCALE (warning)
    '{"Id":"x","Demographic":{"Timezone":"Mars/Olympus"}}',  # TIMEZONE (warning)
    '{"Id":"x","Location":{"Latitude":95.5,"Longitude":-200}}',  # COORDINATE_RANGE
    '{"Id":"x","Attributes":{"' + "n" * 51 + '":["v"]}}',  # ATTRIBUTE_NAME_LENGTH
    '{"Id":"x","Attributes":{"a#b":["v"]}}',  # ATTRIBUTE_NAME_CHARS (warning)
    '{"Id":"x","Attributes":{"a":["' + "v" * 101 + '"]}}',  # ATTRIBUTE_VALUE_LENGTH
    '{"Id":"x","Attributes":{"a":[' + ",".join(['"v"'] * 51) + "]}}",  # ATTRIBUTE_VALUES_COUNT
    '{"Id":"x","Metrics":{"' + "m" * 51 + '":1}}',
    '{"Id":"x","Attributes":{"a":["' + "v" * 99 + '"' + ',"w"' * 20 + "]}}",
    '{"Id":"big","RequestId":"' + "r" * 16000 + '"}',  # ENDPOINT_TOO_LARGE
    '{"Id":"big2","Metrics":{' + ",".join(f'"m{i}":1' for i in range(2000)) + "}}",
    '{"Id":"big3","Attributes":{' + ",".join(f'"a{i}":["{"v" * 90}"]' for i in range(200)) + "}}",
    '{"Id":"dup"}',  # DUPLICATE_ID with the next one
    '{"Id":"dup","ChannelType":"EMAIL","Address":"x@y.io"}',
    '  {"Id":"spaced"}  ',
    '{"Id":"e\\u0301", "Address" : "x\\"y", "ChannelType": "CUSTOM"}',
    '{"Id":"esc\\\\","Attributes":{"q":["\\" ", "a\\\\"]}}',
    '{"Id":"nulls","Address":null,"Location":null,"Attributes":{"a":null},"Metrics":null}',
    '{"Id":"empty","Attributes":{"a":[]},"Metrics":{}}',
]
USERS = ['{"Id":"u%d","ChannelType":"SMS","Address":"+1206555%04d","User":{"UserId":"same"}}']


def hand_made(n_good: int, every: int) -> str:
    """Good lines with the defects spread among them, blank and CRLF lines included."""
    out: list[str] = []
    d = 0
    for i in range(n_good):
        out.append(GOOD % (i, i % 97))
        if i % every == every - 1:
            out.append(DEFECTS[d % len(DEFECTS)])
            d += 1
        if i % 301 == 5:
            out.append("")
        if i % 17 == 3:
            out.append(USERS[0] % (i, i))  # a 16th endpoint for one user: USER_ENDPOINTS
    text = "\n".join(out)
    return text.replace(GOOD % (7, 7) + "\n", GOOD % (7, 7) + "\r\n") + "\n"


def _report(path: Path, tmp: Path, name: str, **kwargs: Any) -> tuple[Any, list[dict]]:
    out = tmp / f"{name}.failures.ndjson"
    report = validator.preflight(str(path), format="JSON", failures_out=out, **kwargs)
    d = report.to_dict()
    signature = (
        d["TotalProcessed"],
        d["TotalFailures"],
        d["Failures"],
        d["FailuresByCode"],
        d["TotalWarnings"],
        d["Warnings"],
        d["WarningsByCode"],
        d["JobStatus"],
        d.get("JobFailures"),
    )
    lines = [
        {k: v for k, v in json.loads(x).items() if k != "piece"}
        for x in out.read_bytes().splitlines()
    ]
    return signature, lines


_LEGACY: dict[Path, tuple[Any, list[dict]]] = {}


def _legacy(path: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[dict]]:
    """The old reader's report (once per file: it is slow on files with mixed types)."""
    if path not in _LEGACY:
        with monkeypatch.context() as m:
            for module in (engine, sys.modules.get("validator.piece")):
                if module is not None and hasattr(module, "read_json"):
                    m.setattr(module, "read_json", legacy_read_json)
            _LEGACY[path] = _report(path, tmp, "legacy", workers=1, pieces=1)
    return _LEGACY[path]


def _files(tmp: Path) -> list[Path]:
    gen = _generator()
    files = [ROOT / "tests/data/aws_docs_example.json", ROOT / "examples/endpoints.ndjson"]
    for rate, rows in [(0.0, 200), (0.2, 800)]:
        path = tmp / f"gen-{rate}.json"
        gen.generate(path, rows, "json", rate, seed=7)
        files.append(path)
    hand = tmp / "hand.json"
    hand.write_text(hand_made(300, 6))
    files.append(hand)
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _files(tmp_path_factory.mktemp("ndjson"))


def test_same_reports_as_the_old_reader(
    files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in files:
        want = _legacy(path, tmp_path, monkeypatch)
        assert want[0][0] > 0
        monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)  # worker processes for small files
        runs = [(1, 1), (1, 3)] + ([(2, 3)] if path in files[-2:] else [])
        for workers, pieces in runs:
            got = _report(path, tmp_path, f"new-{workers}-{pieces}", workers=workers, pieces=pieces)
            assert got[0] == want[0], (path.name, workers, pieces)
            assert got[1] == want[1], (path.name, workers, pieces)


@pytest.mark.parametrize("block_size", [1 << 10, 4099])
def test_same_reports_whatever_the_block_size(
    files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_size: int
) -> None:
    """Small blocks put the defects at block boundaries, and runs of lines around them."""
    for path in files[-2:]:
        want = _legacy(path, tmp_path, monkeypatch)
        monkeypatch.setattr(blocks, "BLOCK_SIZE", block_size)
        got = _report(path, tmp_path, "small", workers=1, pieces=2)
        monkeypatch.undo()
        assert got == want, path.name


def test_every_defect_kind_is_reported(files: list[Path], tmp_path: Path) -> None:
    _, lines = _report(files[-1], tmp_path, "hand", workers=1)
    codes = {x["code"] for x in lines}
    assert codes >= {
        "JSON_SYNTAX",
        "JSON_NOT_OBJECT",
        "FIELD_UNKNOWN",
        "FIELD_TYPE",
        "ADDRESS_E164",
        "ADDRESS_EMAIL",
        "CHANNEL_TYPE",
        "REQUIRED_MISSING",
        "OPT_OUT",
        "ENDPOINT_STATUS",
        "EFFECTIVE_DATE",
        "COUNTRY_CODE",
        "LOCALE",
        "TIMEZONE",
        "COORDINATE_RANGE",
        "ATTRIBUTE_NAME_LENGTH",
        "ATTRIBUTE_NAME_CHARS",
        "ATTRIBUTE_VALUE_LENGTH",
        "ATTRIBUTE_VALUES_COUNT",
        "ENDPOINT_TOO_LARGE",
        "DUPLICATE_ID",
        "USER_ENDPOINTS",
    }


def test_a_record_that_decodes_proves_the_rules_its_structs_carry() -> None:
    """What the Structs refuse goes to the exact checks; what they accept breaks no rule."""
    from validator.json_struct import plan

    p = plan()
    assert p.table_fields == (
        "Id",
        "Address",
        "ChannelType",
        "Demographic.Locale",  # 45,000 ll_CC values: column-wide, once per distinct value
        "EffectiveDate",
        "Location.Country",  # value lists exports often break: column-wide too
        "OptOut",
        "User.UserId",
    )
    # attribute name patterns are tested by the reader once per distinct name
    assert sorted(p.name_patterns) == ["Attributes", "User.UserAttributes"]
    assert p.name_patterns["Attributes"].search("a/b") is None
    assert p.name_patterns["Attributes"].search("a_b") is not None
    decode = p.decoder.decode
    accepted = [
        b'{"Id":"a","ChannelType":"SMS","OptOut":"","Location":{"Country":"US","Latitude":-90}}',
        b'{"Demographic":{"Locale":"en_US","Timezone":"Europe/Berlin"},"Metrics":{"m":1e300}}',
    ]
    for line in accepted:
        decode(line)
    refused = [
        b'{"EndpointStatus":"ON"}',
        b'{"Location":{"Latitude":90.5}}',
        b'{"Demographic":{"Timezone":"localtime"}}',
        b'{"Attributes":{"":["a"]}}',
        b'{"Attributes":{"a":[null]}}',
        b'{"Attributes":{"a":null}}',  # null and empty values: the exact path tells them apart
        b'{"Attributes":{"a":[]}}',
        b'{"Metrics":{"m":null}}',
        b'{"Attributes":{"a":["' + b"x" * 101 + b'"]}}',
        b'{"Metrics":{"m":"1"}}',
        b'{"Metrics":{"m":true}}',
        b'{"Adress":"x"}',
        b"null",
    ]
    for line in refused:
        with pytest.raises(
            (__import__("msgspec").ValidationError, __import__("msgspec").DecodeError)
        ):
            decode(line)
    for line in (b'{"User":null}', b'{"Location":null}', b'{"Demographic":null}'):
        with pytest.raises(__import__("msgspec").ValidationError):
            decode(line)  # a null object takes the exact path: nested fields are never None


# Lines that decode into the Structs but break a rule only the reader sees: a repeated key (at
# every level, with escapes in keys and values), a name breaking a pattern (twice, in different
# runs), and null objects and values that the exact path must read.
TRICKY = [
    '{"Id":"r1","ChannelType":"EMAIL","Address":"a@b.co","Address":"c@d.co"}',
    '{"Id":"r2","Attributes":{"a":["x"],"a":["y"]}}',
    '{"Id":"r3","Attributes":{"q":["\\" ", "\\\\"]},"Id":"r3b"}',
    '{"Id":"r4","User":{"UserId":"u","UserId":"v"}}',
    '{"Id":"r5","\\u0049d":"x"}',
    '{"Id":"r6","Metrics":{"m":1,"m":2}}',
    '{"Id":"r7","Location":{"City":"A","City":"B"}}',
    '{"Id":"r8","Attributes":{"a?b":["v"]}}',
    '{"Id":"r9","User":null,"Demographic":null,"EffectiveDate":null}',
    '{"Id":"r10","Attributes":{"a":null},"Metrics":{"m":null}}',
    '{"Id":"r11","Demographic":{"Locale":"xx_YY"}}',
    '{"Id":"r12","Address":"q\\"\\":\\" :","ChannelType":"EMAIL"}',
]


def tricky_file(path: Path) -> None:
    out = []
    for i in range(400):
        out.append(GOOD % (i, i % 97))
        if i % 13 == 12:
            out.append(TRICKY[(i // 13) % len(TRICKY)])
    path.write_text("\n".join(out) + "\n")


@pytest.mark.parametrize("runs", [(1, 1), (3, 5), (7, 64)])
def test_same_reports_whatever_the_decode_runs(
    files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: tuple[int, int]
) -> None:
    """A record's verdict does not depend on the runs it is decoded and taken in (a refused
    record, a repeated key or a bad name at the start, middle or end of a run)."""
    from validator import read_json

    tricky = tmp_path / "tricky.json"
    tricky_file(tricky)
    for path in [*files[-2:], tricky]:
        want = _report(path, tmp_path, "default", workers=1, pieces=2)
        with monkeypatch.context() as m:
            m.setattr(read_json, "DECODE_RECORDS", runs[0])
            m.setattr(read_json, "TAKE_RECORDS", runs[1])
            got = _report(path, tmp_path, "runs", workers=1, pieces=2)
        assert got == want, (path.name, runs)


def test_what_only_the_reader_sees_is_reported(tmp_path: Path) -> None:
    """Repeated keys, name patterns and nulls in lines the Structs accept: exact lines and codes."""
    tricky = tmp_path / "tricky.json"
    tricky_file(tricky)
    _, lines = _report(tricky, tmp_path, "tricky", workers=1)
    text = tricky.read_text().split("\n")
    found: dict[str, set[tuple[str | None, str]]] = {}
    lines = [x for x in lines if x["code"] != "DUPLICATE_ID"]  # each tricky line is there twice+
    for x in lines:
        found.setdefault(text[x["line"] - 1], set()).add((x["field"], x["code"]))
    dup = "JSON_DUPLICATE_KEY"
    assert found[TRICKY[0]] == {("Address", dup)}
    assert found[TRICKY[1]] == {("Attributes.a", dup)}
    assert found[TRICKY[2]] == {("Id", dup)}
    assert found[TRICKY[3]] == {("User.UserId", dup)}
    assert found[TRICKY[4]] == {("Id", dup)}
    assert found[TRICKY[5]] == {("Metrics.m", dup)}
    assert found[TRICKY[6]] == {("Location.City", dup)}
    assert found[TRICKY[7]] == {("Attributes.a?b", "ATTRIBUTE_NAME_CHARS")}
    assert TRICKY[8] not in found and TRICKY[9] not in found  # nulls are absent values
    assert found[TRICKY[10]] == {("Demographic.Locale", "LOCALE")}
    assert found[TRICKY[11]] == {("Address", "ADDRESS_EMAIL")}
    assert {x["line"] for x in lines} == {
        i + 1 for i, t in enumerate(text) if t in TRICKY and t not in TRICKY[8:10]
    }
