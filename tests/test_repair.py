"""--repair: each repair at its boundaries (and where it must refuse), the bytes it writes, the
log and the report, and properties over generated messy files (idempotent, repaired pieces
pass, every record accounted for once, log counts = report counts)."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validator import cli, engine
from validator.errors import UsageError
from validator.repair import (
    RepairOptions,
    _csv_cell,
    load_repairs,
    repair_value,
    rewrite,
)
from validator.schema import load_schema
from validator.write import split

DATA = Path(__file__).parent / "data"
EXAMPLE = Path(__file__).parent.parent / "examples" / "messy" / "audience.csv"
US = RepairOptions("US")
NONE = RepairOptions()


def fixed(code: str, name: str, value: str, options: RepairOptions = US) -> str | None:
    """The value after the table's repairs for a value that broke ``code``, or None."""
    steps = repair_value(code, name, value, options)
    return steps[-1][2] if steps else None


def codes(code: str, name: str, value: str, options: RepairOptions = US) -> list[str]:
    return [c for c, _, _ in repair_value(code, name, value, options)]


# -- the table ------------------------------------------------------------------------------------


def test_the_table_is_whole_and_cites_its_reasons() -> None:
    repairs = load_repairs()
    schema = load_schema()
    assert {r.code for r in repairs.rows} == {
        "TRIM",
        "PHONE_E164",
        "CHANNEL_TYPE_CASE",
        "OPT_OUT_CASE",
        "ENDPOINT_STATUS_CASE",
        "COUNTRY_ALPHA3",
        "COUNTRY_RESERVED",
        "COUNTRY_CASE",
        "LOCALE_FORMAT",
        "TIMEZONE_CASE",
        "EFFECTIVE_DATE_UTC",
        "BOM_REMOVED",
    }
    for r in repairs.rows:
        schema.rule(r.fixes)  # a real rule code
        assert r.reason and r.source.startswith("https://")
    keys = [(r.code, r.fixes, r.field) for r in repairs.rows]
    assert len(keys) == len(set(keys))


# -- each repair at its boundaries ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        ("(202) 555-0191", US, "+12025550191"),
        ("206-555-0182", US, "+12065550182"),
        ("206.555.0182", US, "+12065550182"),
        ("2065550182", US, "+12065550182"),  # the 2018 guide's example
        ("12065550182", US, "+12065550182"),  # the developer guide's example
        ("+44 (0)20 7946 0958", NONE, "+442079460958"),  # trunk (0) dropped as the library does
        ("+44 (0)20 7946 0958", US, "+442079460958"),  # its own country code wins
        ("(+351) 282 43 50 50", NONE, "+351282435050"),
        ("0044 20 7946 0958", NONE, "+442079460958"),
        ("011 44 20 7946 0958", US, "+442079460958"),  # the US international prefix
        ("020 7946 0958", RepairOptions("GB"), "+442079460958"),
        (" +1 206 555 0182 ", NONE, "+12065550182"),
        # refused
        ("2065550182", NONE, None),  # national, and no --default-country
        ("(202) 555-0191", NONE, None),
        ("+1214......2", US, None),  # masked
        ("+1 214 555 XXXX", US, None),  # masked (keypad letters would make it 'valid')
        ("+1 214 555 ****", US, None),
        ("1-800-FLOWERS", US, None),
        ("+1 206 555 0182 ext 5", US, None),
        ("+1 206 555 0182 x5", US, None),
        ("2065550182", RepairOptions("GB"), None),  # not valid for that region
        ("(604) 555-0182", US, None),  # valid in Canada, not in the US: not guessed
        ("020 7946 0958", US, None),
        ("1012345678", US, None),  # the developer guide's other example: no such US number
        ("+1 206 555 018", US, None),
        ("+1 206 555 0182 +1", US, None),
        ("", US, None),
    ],
)
def test_phone_numbers(value: str, options: RepairOptions, expected: str | None) -> None:
    assert fixed("ADDRESS_E164", "Address", value, options) == expected


def test_trim_then_phone_is_two_logged_changes() -> None:
    assert repair_value("ADDRESS_E164", "Address", " (202) 555-0191 ", US) == [
        ("TRIM", " (202) 555-0191 ", "(202) 555-0191"),
        ("PHONE_E164", "(202) 555-0191", "+12025550191"),
    ]


@pytest.mark.parametrize(
    ("code", "name", "value", "expected"),
    [
        ("CHANNEL_TYPE", "ChannelType", "sms", "SMS"),
        ("CHANNEL_TYPE", "ChannelType", "Email", "EMAIL"),
        ("CHANNEL_TYPE", "ChannelType", "apns_sandbox", "APNS_SANDBOX"),
        ("CHANNEL_TYPE", "ChannelType", " EMAIL\t", "EMAIL"),
        ("CHANNEL_TYPE", "ChannelType", "E-MAIL", None),
        ("CHANNEL_TYPE", "ChannelType", "PUSH_NOTIFICATION", None),
        ("OPT_OUT", "OptOut", "none", "NONE"),
        ("OPT_OUT", "OptOut", "All", "ALL"),
        ("OPT_OUT", "OptOut", "no", None),
        ("ENDPOINT_STATUS", "EndpointStatus", "active", "ACTIVE"),
        ("ENDPOINT_STATUS", "EndpointStatus", "Inactive", "INACTIVE"),
        ("ENDPOINT_STATUS", "EndpointStatus", "disabled", None),
        ("COUNTRY_CODE", "Location.Country", "USA", "US"),
        ("COUNTRY_CODE", "Location.Country", "usa", "US"),
        ("COUNTRY_CODE", "Location.Country", "CAN", "CA"),
        ("COUNTRY_CODE", "Location.Country", "DEU", "DE"),
        ("COUNTRY_CODE", "Location.Country", "UK", "GB"),
        ("COUNTRY_CODE", "Location.Country", "EL", "GR"),
        ("COUNTRY_CODE", "Location.Country", "us", "US"),
        ("COUNTRY_CODE", "Location.Country", " CA ", "CA"),
        ("COUNTRY_CODE", "Location.Country", "XYZ", None),  # three letters, no country
        ("COUNTRY_CODE", "Location.Country", "EUR", None),
        ("COUNTRY_CODE", "Location.Country", "EU", None),
        ("COUNTRY_CODE", "Location.Country", "United States", None),
        ("LOCALE", "Demographic.Locale", "en-US", "en_US"),
        ("LOCALE", "Demographic.Locale", "en_us", "en_US"),
        ("LOCALE", "Demographic.Locale", "EN-gb", "en_GB"),
        ("LOCALE", "Demographic.Locale", "en", None),  # a language, no country
        ("LOCALE", "Demographic.Locale", "en-US-x-y", None),
        ("LOCALE", "Demographic.Locale", "eng_USA", None),
        ("TIMEZONE", "Demographic.Timezone", "america/new_york", "America/New_York"),
        ("TIMEZONE", "Demographic.Timezone", "Mars/Olympus", None),
        ("EFFECTIVE_DATE", "EffectiveDate", "2024-03-01 09:30:00-08:00", "2024-03-01T17:30:00Z"),
        ("EFFECTIVE_DATE", "EffectiveDate", "2024-03-01 09:30:00Z", "2024-03-01T09:30:00Z"),
        ("EFFECTIVE_DATE", "EffectiveDate", "2024-03-01t09:30z", "2024-03-01T09:30:00Z"),
        ("EFFECTIVE_DATE", "EffectiveDate", "2024-03-01 09:30:00 UTC", "2024-03-01T09:30:00Z"),
        (
            "EFFECTIVE_DATE",
            "EffectiveDate",
            "2024-03-01 09:30:00.25+0100",
            "2024-03-01T08:30:00.25Z",
        ),
        ("EFFECTIVE_DATE", "EffectiveDate", "2024-01-01 00:30+01:00", "2023-12-31T23:30:00Z"),
        (
            "EFFECTIVE_DATE",
            "EffectiveDate",
            "Sun, 03 Mar 2024 09:00:00 +0100",
            "2024-03-03T08:00:00Z",
        ),
        (
            "EFFECTIVE_DATE",
            "EffectiveDate",
            "Sun, 03 Mar 2024 09:00:00 GMT",
            "2024-03-03T09:00:00Z",
        ),
        ("EFFECTIVE_DATE", "EffectiveDate", " 2024-03-01T09:30:00Z ", "2024-03-01T09:30:00Z"),
        ("EFFECTIVE_DATE", "EffectiveDate", "2024-03-01 09:30:00", None),  # no zone: unknown
        ("EFFECTIVE_DATE", "EffectiveDate", "Sun, 03 Mar 2024 09:00:00 -0000", None),
        ("EFFECTIVE_DATE", "EffectiveDate", "Sun, 03 Mar 2024 09:00:00", None),
        ("EFFECTIVE_DATE", "EffectiveDate", "2024-02-30 09:30Z", None),  # no such day
        ("EFFECTIVE_DATE", "EffectiveDate", "2024-03-01 24:00Z", None),
        ("EFFECTIVE_DATE", "EffectiveDate", "2024-03-01 09:30+24:00", None),
        ("EFFECTIVE_DATE", "EffectiveDate", "03/01/2024 09:30 UTC", None),  # which is the month?
        ("EFFECTIVE_DATE", "EffectiveDate", "1709285400", None),  # seconds or milliseconds?
        ("METRIC_TYPE", "Metrics.visits", " 12 ", "12"),
        ("COORDINATE_TYPE", "Location.Latitude", "47.6 ", "47.6"),
        ("ADDRESS_EMAIL", "Address", "alice@example.com ", "alice@example.com"),
    ],
)
def test_value_repairs(code: str, name: str, value: str, expected: str | None) -> None:
    assert fixed(code, name, value) == expected


def test_a_repair_runs_only_for_the_rule_it_fixes() -> None:
    assert repair_value("CHANNEL_TYPE", "Address", "sms", US) == []
    assert repair_value("FIELD_TYPE", "ChannelType", "sms", US) == []
    assert codes("COUNTRY_CODE", "Location.Country", " usa ") == ["TRIM", "COUNTRY_ALPHA3"]


def test_default_country_is_checked() -> None:
    assert RepairOptions.build("us").default_country == "US"
    assert RepairOptions.build(None).default_country is None
    for bad in ("XX", "USA", "", "1"):
        with pytest.raises(UsageError, match="--default-country"):
            RepairOptions.build(bad)


# -- the bytes ------------------------------------------------------------------------------------


def test_csv_rewrite_changes_only_the_repaired_cells() -> None:
    from validator.repair import Change

    raw = b'"c-1",sms,(206) 555-0182,"a, ""b""",x\r\n'
    positions = {"Id": 0, "ChannelType": 1, "Address": 2, "Attributes.n": 3, "Demographic.Make": 4}
    changes = [
        Change(0, 1, "ChannelType", "CHANNEL_TYPE_CASE", "sms", "SMS"),
        Change(0, 1, "Address", "PHONE_E164", "(206) 555-0182", "+12065550182"),
    ]
    assert rewrite(raw, "CSV", changes, positions) == b'"c-1",SMS,+12065550182,"a, ""b""",x\r\n'
    # a repaired value is quoted only when it needs it; no terminator stays none
    assert _csv_cell("a,b") == b'"a,b"' and _csv_cell('say "x"') == b'"say ""x"""'
    assert _csv_cell("plain") == b"plain"
    last = rewrite(b"c-1,sms", "CSV", changes[:1], positions)
    assert last == b"c-1,SMS"


def test_json_rewrite_keeps_key_order_and_nesting() -> None:
    from validator.repair import Change

    raw = (
        b'{"Id":"1","Location":{"Country":"USA","City":"X"},"ChannelType":"sms",'
        b'"Metrics":{"a.b":1.5}}\n'
    )
    changes = [
        Change(0, 1, "Location.Country", "COUNTRY_ALPHA3", "USA", "US"),
        Change(0, 1, "ChannelType", "CHANNEL_TYPE_CASE", "sms", "SMS"),
    ]
    assert rewrite(raw, "JSON", changes, {}) == (
        b'{"Id":"1","Location":{"Country":"US","City":"X"},"ChannelType":"SMS",'
        b'"Metrics":{"a.b":1.5}}\n'
    )


# -- end to end -----------------------------------------------------------------------------------


def run_cli(*args: str) -> int:
    return cli.run(list(args))


def test_validate_repair_reports_what_would_change_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "audience.csv"
    source.write_bytes(EXAMPLE.read_bytes())
    log = tmp_path / "changes.ndjson"
    code = run_cli(
        "validate", str(source), "--repair", "--default-country", "US", "--repairs-out", str(log)
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audience.csv", "changes.ndjson"]
    assert source.read_bytes() == EXAMPLE.read_bytes()
    # after repair, only what has no single right answer fails
    assert report["TotalProcessed"] == 12
    assert report["TotalFailures"] == 4
    assert [f.split(": ")[0] for f in report["Failures"]] == [
        f"{source}:{n}" for n in (7, 10, 11, 13)
    ]
    assert report["FailuresByCode"] == {"ADDRESS_E164": 3, "CHANNEL_TYPE": 1, "EFFECTIVE_DATE": 1}
    assert report["WarningsByCode"] == {}  # FILE_BOM, COUNTRY_CODE, LOCALE... all repaired
    repairs = report["Repairs"]
    assert repairs["DefaultCountry"] == "US"
    assert repairs["RepairedRecords"] == 7
    assert repairs["RecordsByRepair"] == {
        "BOM_REMOVED": 1,
        "CHANNEL_TYPE_CASE": 2,
        "COUNTRY_ALPHA3": 4,
        "COUNTRY_RESERVED": 1,
        "EFFECTIVE_DATE_UTC": 2,
        "LOCALE_FORMAT": 4,
        "OPT_OUT_CASE": 1,
        "PHONE_E164": 4,
        "TIMEZONE_CASE": 1,
        "TRIM": 2,
    }
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert entries == repairs["FirstChanges"]
    assert repairs["Changes"] == len(entries) == 22
    assert entries[0] == {
        "source": str(source),
        "line": 1,
        "field": None,
        "repair": "BOM_REMOVED",
        "before": "\ufeff",
        "after": "",
    }
    assert {
        "source": str(source),
        "line": 6,
        "field": "Address",
        "repair": "PHONE_E164",
        "before": "+44 (0)20 7946 0958",
        "after": "+442079460958",
    } in entries
    # without --repair the same file fails on the records repair fixes
    assert run_cli("validate", str(source)) == 1
    before = json.loads(capsys.readouterr().out)
    assert before["TotalFailures"] == 11 and "Repairs" not in before


def test_national_numbers_need_the_default_country(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(b"ChannelType,Address\nSMS,2065550182\nSMS,+44 (0)20 7946 0958\n")
    assert run_cli("validate", str(source), "--repair") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["Failures"] == [
        f"{source}:2: Address: '2065550182' is not E.164: '+', then 1 to 15 digits, no spaces, "
        "dashes or brackets; it has no leading '+' [ADDRESS_E164]"
    ]
    assert report["Repairs"]["RecordsByRepair"] == {"PHONE_E164": 1}
    assert run_cli("validate", str(source), "--repair", "--default-country", "US") == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--default-country", "US"], "--default-country goes with --repair"),
        (["--repairs-out", "x.ndjson"], "--repairs-out goes with --repair"),
        (["--repair", "--default-country", "XX"], "--default-country 'XX' is not"),
        (["--repair", "--repairs-out", "/no/such/dir/x.ndjson"], "--repairs-out: no such folder"),
    ],
)
def test_repair_usage_errors(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("validate", str(DATA / "aws_docs_example.csv"), *args) == 252
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_split_repair_writes_repaired_records_and_keeps_every_other_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "audience.csv"
    data = EXAMPLE.read_bytes()
    source.write_bytes(data)
    out, rejects, log = tmp_path / "out", tmp_path / "rejects.csv", tmp_path / "repairs.ndjson"
    code = run_cli(
        "split", str(source), "--to", str(out), "--repair", "--default-country", "US",
        "--valid-only", "--rejects", str(rejects), "--repairs-out", str(log),
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0  # --valid-only: every failed record went to the rejects (the gate)
    lines = data[3:].split(b"\r\n")[:-1]  # without the BOM
    header, records = lines[0], lines[1:]
    (piece,) = out.glob("job-0001/*.csv")
    written = piece.read_bytes().split(b"\r\n")
    assert written[-1] == b""
    assert written[0] == header  # the BOM is gone
    kept = written[1:-1]
    assert len(kept) == 8
    # unrepaired records byte for byte; repaired ones differ only in their repaired cells
    assert kept[0] == records[0]
    assert kept[3] == (
        b"c-004,EMAIL,alice@example.com,GB,en_GB,Europe/London,2024-03-02T10:00:00Z,NONE,u-004,"
        b'"gold, annual",1'
    )
    assert kept[4] == (
        b"c-005,SMS,+442079460958,GB,en_GB,Europe/London,2024-03-02T10:00:00+00:00,NONE,u-005,"
        b"bronze,0"
    )
    # the rejects are the original bytes of the records still failing, with their reasons
    assert (
        rejects.read_bytes()
        == b"\r\n".join([header, records[5], records[8], records[9], records[11]]) + b"\r\n"
    )
    reasons = [json.loads(x) for x in Path(f"{rejects}.reasons.jsonl").read_text().splitlines()]
    assert [(r["line"], r["codes"]) for r in reasons] == [
        (7, ["ADDRESS_E164"]),
        (10, ["ADDRESS_E164"]),
        (11, ["CHANNEL_TYPE"]),
        (13, ["ADDRESS_E164", "EFFECTIVE_DATE"]),
    ]
    totals = report["Manifest"]["Totals"]
    assert (totals["InputRecords"], totals["PieceRecords"], totals["RejectedRecords"]) == (12, 8, 4)
    assert report["Manifest"]["Pieces"][0]["Bytes"] == piece.stat().st_size
    assert len(log.read_bytes().splitlines()) == report["Repairs"]["Changes"] == 22
    # the pieces pass as they are, and repairing them again changes nothing
    assert run_cli("validate", str(piece), "--strict") == 0
    capsys.readouterr()
    again = tmp_path / "again"
    assert run_cli("split", str(out), "--format", "CSV", "--to", str(again), "--repair") == 0
    assert json.loads(capsys.readouterr().out)["Repairs"]["Changes"] == 0
    (piece2,) = again.glob("job-0001/*.csv")
    assert piece2.read_bytes() == piece.read_bytes()


def test_split_without_valid_only_writes_failing_records_unrepaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(
        b"ChannelType,Address,OptOut\nsms,206-555-0182,none\nsms,+1214......2,none\n"
    )
    assert run_cli("split", str(source), "--to", str(tmp_path / "o"), "--repair",
                   "--default-country", "US") == 1  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    (piece,) = (tmp_path / "o").glob("job-0001/*.csv")
    assert piece.read_bytes() == (
        b"ChannelType,Address,OptOut\nSMS,+12065550182,NONE\nsms,+1214......2,none\n"
    )
    assert report["Repairs"]["RepairedRecords"] == 1


def test_a_repair_that_reveals_another_rule_is_checked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'sms' fails CHANNEL_TYPE only; as SMS, its address must be E.164 too."""
    source = tmp_path / "a.csv"
    source.write_bytes(b"ChannelType,Address\nsms,(206) 555-0182\nsms,2065550182 x7\n")
    assert run_cli("validate", str(source), "--repair", "--default-country", "US") == 1
    report = json.loads(capsys.readouterr().out)
    assert [c["repair"] for c in report["Repairs"]["FirstChanges"]] == [
        "CHANNEL_TYPE_CASE",
        "PHONE_E164",
    ]
    # the second record's address cannot be repaired: it keeps its original finding
    assert report["Failures"] == [
        f"{source}:3: ChannelType: 'sms' is not a channel type; did you mean 'SMS'? [CHANNEL_TYPE]"
    ]


def test_strict_keeps_a_record_with_a_warning_left_unrepaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(b"ChannelType,Address,Demographic.Timezone\nsms,+12065550182,Mars/Base\n")
    assert run_cli("validate", str(source), "--repair") == 0
    assert json.loads(capsys.readouterr().out)["Repairs"]["RepairedRecords"] == 1
    assert run_cli("validate", str(source), "--repair", "--strict") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["Repairs"]["RepairedRecords"] == 0
    assert report["FailuresByCode"] == {"CHANNEL_TYPE": 1, "TIMEZONE": 1}


def test_a_record_failing_a_cross_record_rule_is_not_repaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 16th SMS endpoint of one user fails in the fold: it goes out as it came in."""
    rows = [f"SMS,+1206555{i:04d},u" for i in range(15)] + ["sms,+12065550999,u"]
    source = tmp_path / "a.csv"
    source.write_bytes(("ChannelType,Address,User.UserId\n" + "\n".join(rows) + "\n").encode())
    rejects = tmp_path / "r.csv"
    # split --valid-only passes the gate when every failed record went to the rejects.
    assert run_cli("split", str(source), "--to", str(tmp_path / "o"), "--repair", "--valid-only",
                   "--rejects", str(rejects)) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["Repairs"]["RepairedRecords"] == 0
    assert report["Repairs"]["Changes"] == 0
    assert rejects.read_bytes() == b"ChannelType,Address,User.UserId\nsms,+12065550999,u\n"
    # its reasons are those of the bytes written: the original problem and the user limit
    (reason,) = [json.loads(x) for x in Path(f"{rejects}.reasons.jsonl").read_text().splitlines()]
    assert (reason["line"], reason["codes"]) == (17, ["CHANNEL_TYPE", "USER_ENDPOINTS"])
    assert report["FailuresByCode"] == {"CHANNEL_TYPE": 1, "USER_ENDPOINTS": 1}


def test_json_repairs_keep_what_json_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Integers of any size, non-ASCII text and nesting survive a JSON record's rewrite."""
    line = (
        '{"ChannelType":"sms","Address":"(206) 555-0182",'
        '"Metrics":{"big":123456789012345678901234567890},'
        '"Attributes":{"名前":["Zoë"]},"Location":{"Country":"usa"}}\n'
    )
    source = tmp_path / "a.json"
    source.write_text(line, encoding="utf-8")
    out = tmp_path / "o"
    assert run_cli("split", str(source), "--to", str(out), "--repair",
                   "--default-country", "US") == 0  # fmt: skip
    capsys.readouterr()
    (piece,) = out.glob("job-0001/*.json")
    assert piece.read_text(encoding="utf-8") == (
        '{"ChannelType":"SMS","Address":"+12065550182",'
        '"Metrics":{"big":123456789012345678901234567890},'
        '"Attributes":{"名前":["Zoë"]},"Location":{"Country":"US"}}\n'
    )


@pytest.mark.parametrize("name", ["aws_docs_2018_example.csv", "aws_docs_2018_example.json"])
def test_the_aws_documentation_examples_pass_once_repaired(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 2018 user guide's example (national phone 2065550182, alpha-3 countries) fails as
    written and passes repaired with --default-country US, in both formats."""
    source = DATA / name
    fmt = "CSV" if name.endswith(".csv") else "JSON"
    assert run_cli("validate", str(source)) == 1
    capsys.readouterr()
    out = tmp_path / "out"
    assert run_cli("split", str(source), "--to", str(out), "--repair",
                   "--default-country", "US") == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["Repairs"]["RecordsByRepair"] == {"COUNTRY_ALPHA3": 5, "PHONE_E164": 1}
    (piece,) = out.glob(f"job-0001/*.{fmt.lower()}")
    assert run_cli("validate", str(piece), "--strict") == 0
    assert json.loads(capsys.readouterr().out)["TotalProcessed"] == 5
    # the current example passes as it is and repair leaves it alone
    current = DATA / f"aws_docs_example.{name.rsplit('.', 1)[1]}"
    assert run_cli("validate", str(current), "--repair", "--default-country", "US") == 0
    assert json.loads(capsys.readouterr().out)["Repairs"]["Changes"] == 0


# -- properties -----------------------------------------------------------------------------------

# Values per column: good ones, ones repair fixes, ones it must leave alone.
POOLS = {
    "ChannelType": ["SMS", "sms", "Sms ", "EMAIL", "Email", "PUSH_NOTIFICATION"],
    "Address": [
        "+12065550182",
        "(206) 555-0182",
        "206-555-0199",
        "+44 (0)20 7946 0958",
        "+1214......2",
        "020 7946 0000",
        "+1 206 555 0182 ext 5",
    ],
    "Location.Country": ["US", "USA", "usa", "UK", "XYZ", ""],
    "Demographic.Locale": ["en_US", "en-US", "en", ""],
    "EffectiveDate": [
        "2024-03-01T09:30:00Z",
        "20240301T093000Z",
        "2024-03-01 09:30:00-08:00",
        "2024-03-01 09:30:00",
        "",
    ],
    "OptOut": ["NONE", "none", "maybe", ""],
    "Attributes.note": ["x", '"a, b"', ""],
}
EMAILS = {"EMAIL", "Email"}


@st.composite
def messy_csv(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    n = draw(st.integers(1, 25))
    crlf = draw(st.booleans())
    end = b"\r\n" if crlf else b"\n"
    header = ["Id", "User.UserId", *POOLS]
    records = []
    for i in range(n):
        cells = [f"r{i}", f"u{i}"]
        for pool in POOLS.values():
            cells.append(draw(st.sampled_from(pool)))
        if cells[2].strip() in EMAILS:
            cells[3] = draw(st.sampled_from(["a@example.com", " a@example.com", "a@@x"]))
        records.append(",".join(cells).encode())
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    body = bom + ",".join(header).encode() + end + end.join(records) + end
    return body, records


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(messy_csv(), st.sampled_from([None, 1, 3]))
def test_repair_properties(case: tuple[bytes, list[bytes]], pieces: int | None) -> None:
    data, records = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "in.csv"
        source.write_bytes(data)
        out, rejects, log = root / "out", root / "rejects.csv", root / "log.ndjson"
        options = RepairOptions.build("US")
        result = split(
            str(source), str(out), pieces=pieces, valid_only=True, rejects=str(rejects),
            workers=1, repair=options, repairs_out=str(log),
        )  # fmt: skip
        report = result.to_dict()
        repairs = report["Repairs"]
        # every input record exactly once: in a piece (as it was, or repaired) or the rejects
        # (as it was)
        pieces_out = [
            line
            for p in sorted(out.glob("job-*/*.csv"))
            for line in p.read_bytes().splitlines()[1:]
        ]
        rejected = rejects.read_bytes().splitlines()[1:] if rejects.exists() else []
        ids = [line.split(b",")[0] for line in pieces_out + rejected]
        assert sorted(ids) == sorted(r.split(b",")[0] for r in records)
        by_id = {r.split(b",")[0]: r for r in records}
        assert all(by_id[line.split(b",")[0]] == line for line in rejected)
        entries = [orjson.loads(x) for x in log.read_bytes().splitlines()]
        repaired_lines = {e["line"] for e in entries if e["field"] is not None}
        for line in pieces_out:
            i = int(line.split(b",")[0][1:])
            assert line == records[i] or i + 2 in repaired_lines
        # the log's counts are the report's
        per_code: dict[str, set[int]] = {}
        for e in entries:
            per_code.setdefault(e["repair"], set()).add(e["line"])
        assert {k: len(v) for k, v in per_code.items()} == repairs["RecordsByRepair"]
        assert len(entries) == repairs["Changes"]
        assert len(repaired_lines) == repairs["RepairedRecords"]
        assert entries[:100] == repairs["FirstChanges"]
        if not pieces_out:
            return
        # repaired pieces validate: no error at all (they are the valid records), so none of
        # a repaired code
        check = engine.preflight(str(out), "CSV", workers=1)
        assert check.total_failures == 0
        assert not {r.fixes for r in load_repairs().rows} & set(check.failures_by_code)
        # idempotent: repairing the repaired output changes nothing
        again = split(str(out), str(root / "again"), "CSV", workers=1, repair=options)
        assert again.to_dict()["Repairs"]["Changes"] == 0
        assert Counter(
            line
            for p in (root / "again").glob("job-*/*.csv")
            for line in p.read_bytes().splitlines()[1:]
        ) == Counter(pieces_out)


def test_worker_processes_and_pieces_repair_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repairs travel back from worker processes: 2 workers and 3 pieces give the same log,
    report and bytes as one process and one piece."""
    source = tmp_path / "audience.csv"
    source.write_bytes(EXAMPLE.read_bytes())
    options = RepairOptions.build("US")
    one = split(str(source), str(tmp_path / "one"), workers=1, repair=options)
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    two = split(str(source), str(tmp_path / "two"), pieces=3, workers=2, repair=options)
    assert one.to_dict()["Repairs"] == two.to_dict()["Repairs"]

    def body(root: str) -> bytes:
        parts = sorted((tmp_path / root).glob("job-*/*.csv"))
        return b"".join(p.read_bytes().split(b"\r\n", 1)[1] for p in parts)

    assert body("one") == body("two")


def test_a_json_bom_is_a_logged_repair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "a.json"
    line = b'{"ChannelType":"EMAIL","Address":"a@example.com"}\n'
    source.write_bytes(b"\xef\xbb\xbf" + line)
    assert run_cli("validate", str(source)) == 0
    assert json.loads(capsys.readouterr().out)["WarningsByCode"] == {"FILE_BOM": 1}
    out = tmp_path / "o"
    assert run_cli("split", str(source), "--to", str(out), "--repair") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["WarningsByCode"] == {}
    assert report["Repairs"]["RecordsByRepair"] == {"BOM_REMOVED": 1}
    assert report["Repairs"]["RepairedRecords"] == 0  # a file's bytes, not a record
    (piece,) = out.glob("job-0001/*.json")
    assert piece.read_bytes() == line


def test_the_readme_shows_the_real_repair_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's Repair section is this run's output, line for line."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### Repair")[1].split("### Pieces")[0]
    (tmp_path / "audience.csv").write_bytes(EXAMPLE.read_bytes())
    monkeypatch.chdir(tmp_path)
    args = "split audience.csv --to out/ --repair --default-country US --valid-only"
    args += " --rejects rejects.csv --repairs-out repairs.ndjson --output summary"
    assert run_cli(*args.split()) == 0  # every failed record went to the rejects
    shown = capsys.readouterr().out.splitlines()
    shown += Path("out/job-0001/part-00001-audience.csv").read_text().splitlines()
    shown += Path("rejects.csv").read_text().splitlines()
    shown += Path("repairs.ndjson").read_text().splitlines()[1:7]
    for line in shown:
        assert line in section, line
