"""The benchmark generator (benchmarks/generate.py): deterministic, parseable, defects as asked."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv as pv
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_generator():
    path = ROOT / "benchmarks" / "generate.py"
    spec = importlib.util.spec_from_file_location("pp_bench_generate", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

ROWS = 70_000  # more than one chunk (65,536 rows), so chunk boundaries are covered
RATE = 0.02


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    out = {}
    for fmt in ("csv", "json"):
        path = d / f"endpoints.{fmt}"
        out[fmt] = (path, gen.generate(path, ROWS, fmt, RATE, seed=7))
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_same_seed_same_bytes(tmp_path, fmt):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    sa = gen.generate(a, 3000, fmt, 0.05, seed=3)
    sb = gen.generate(b, 3000, fmt, 0.05, seed=3)
    gen.generate(c, 3000, fmt, 0.05, seed=4)
    assert _sha(a) == _sha(b) == sa["sha256"] == sb["sha256"]
    assert _sha(c) != _sha(a)
    assert sa["bytes"] == a.stat().st_size


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_defect_count_matches_rate(files, fmt):
    _, stats = files[fmt]
    assert stats["defect_rows"] == int(ROWS * RATE)
    assert sum(stats["defects"].values()) == stats["defect_rows"]
    kinds = {k for k, v in gen.DEFECT_KINDS.items() if fmt in v[3]}
    assert set(stats["defects"]) == kinds  # every kind shows up at this size
    assert stats["error_rows"] + stats["warning_rows"] == stats["defect_rows"]


def test_no_defects_at_rate_zero(tmp_path):
    stats = gen.generate(tmp_path / "clean.csv", 5000, "csv", 0.0, seed=1)
    assert stats["defect_rows"] == 0 and stats["defects"] == {}


def test_csv_parses_with_pyarrow(files):
    path, stats = files["csv"]
    header = path.open(encoding="utf-8").readline().rstrip("\n").split(",")
    assert header == gen.CSV_HEADER
    assert header.count("Attributes.interests") == 2  # multi-valued attribute: repeated column
    bad_rows = []

    def invalid(row):
        bad_rows.append(row)
        return "skip"

    names = [f"c{i}" for i in range(len(header))]
    table = pv.read_csv(
        path,
        read_options=pv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pv.ParseOptions(invalid_row_handler=invalid),
        convert_options=pv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )
    assert table.num_rows == stats["parseable_rows"] == ROWS - stats["defects"]["csv_missing_field"]
    assert len(bad_rows) == stats["defects"]["csv_missing_field"]
    assert all(r.actual_columns == len(header) - 1 for r in bad_rows)
    text = path.read_text(encoding="utf-8")
    assert '""' in text and "München" in text and "São Paulo" in text
    assert "\t" not in text and "\r" not in text
    channels = table.column(1).to_pylist()
    email = channels.count("EMAIL") / ROWS
    sms = channels.count("SMS") / ROWS
    assert 0.40 < email < 0.50 and 0.25 < sms < 0.35
    assert 180 < stats["bytes"] / ROWS < 220


def test_ndjson_lines_parse_with_orjson(files):
    path, stats = files["json"]
    bad = 0
    records = []
    with path.open("rb") as f:
        for line in f:
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                bad += 1
    assert bad == stats["defects"]["json_syntax"]
    assert len(records) == stats["parseable_rows"] == ROWS - bad
    strings = sum(
        1 for r in records if isinstance(r.get("Attributes", {}).get("interests", []), str)
    )
    assert strings == stats["defects"]["json_attr_string"]
    located = [r for r in records[:1000] if "Location" in r]
    assert located and all(isinstance(r["Location"]["Latitude"], float) for r in located)


def test_clean_rows_are_clean(tmp_path):
    """With no defects: E.164 numbers, alpha-2 countries, ll_CC locales, ≤ 15 endpoints per user."""
    import re
    from collections import Counter

    path = tmp_path / "clean.json"
    gen.generate(path, 20_000, "json", 0.0, seed=5)
    e164 = re.compile(r"^\+[1-9]\d{1,14}$")
    users: Counter = Counter()
    with path.open("rb") as f:
        for line in f:
            r = orjson.loads(line)
            assert r["ChannelType"] in {"EMAIL", "SMS", "GCM", "APNS", "VOICE", "CUSTOM", "IN_APP"}
            assert r["Address"] and r["Id"]
            if r["ChannelType"] in ("SMS", "VOICE"):
                assert e164.match(r["Address"]), r["Address"]
            if r["ChannelType"] == "APNS":
                assert re.fullmatch(r"[0-9a-f]{64}", r["Address"])
            assert r.get("OptOut", "NONE") in ("ALL", "NONE")
            assert re.fullmatch(r"[a-z]{2}_[A-Z]{2}", r["Demographic"]["Locale"])
            if "Location" in r:
                assert re.fullmatch(r"[A-Z]{2}", r["Location"]["Country"])
            for values in r.get("Attributes", {}).values():
                assert isinstance(values, list) and all(len(v) <= 100 for v in values)
            assert all(isinstance(v, (int, float)) for v in r["Metrics"].values())
            users[r["User"]["UserId"]] += 1
    assert max(users.values()) <= 15
    assert len(users) < 20_000 / 1.5  # endpoints do share users


@pytest.mark.parametrize(("fmt", "rate"), [("csv", 0.0009), ("json", 0.001)])
def test_structural_sprinkle_breaks_exactly_its_rows_and_nothing_else(tmp_path, fmt, rate):
    """--structural-rate: floor(rows x rate) further rows, each broken once, the rest intact;
    a rate of 0 leaves the bytes as they were; the validator finds exactly those lines."""
    import validator

    rows = 70_000
    plain, sprinkled = tmp_path / f"plain.{fmt}", tmp_path / f"sprinkled.{fmt}"
    s0 = gen.generate(plain, rows, fmt, 0.01, seed=4)
    s1 = gen.generate(sprinkled, rows, fmt, 0.01, seed=4, structural_rate=rate)
    assert (
        gen.generate(tmp_path / "again", rows, fmt, 0.01, seed=4, structural_rate=0.0)["sha256"]
        == s0["sha256"]
    )
    kind = "csv_broken_quote" if fmt == "csv" else "json_bad_line"
    code = "CSV_QUOTE" if fmt == "csv" else "JSON_SYNTAX"
    assert s1["defects"][kind] == int(rows * rate)
    assert {k: v for k, v in s1["defects"].items() if k != kind} == s0["defects"]
    a = plain.read_bytes().splitlines()
    b = sprinkled.read_bytes().splitlines()
    changed = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    assert len(changed) == int(rows * rate)
    report = validator.preflight(str(sprinkled), format=fmt.upper(), workers=1).to_dict()
    base = validator.preflight(str(plain), format=fmt.upper(), workers=1).to_dict()
    assert report["FailuresByCode"].get(code, 0) - base["FailuresByCode"].get(code, 0) == len(
        changed
    )
    assert report["TotalFailures"] - base["TotalFailures"] == len(changed)
