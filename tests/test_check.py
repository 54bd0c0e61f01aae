"""check.py: every record-level rule, failing and passing, at its boundaries; CSV-shaped tables
(strings) and JSON-shaped ones (numbers, lists); the CSV header; the JSON slow path."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pajson
import pytest

from validator.check import (
    Finding,
    HeaderProblem,
    check_batch,
    check_csv_header,
    check_json_object,
    endpoint_sizes,
    suggest_field,
)
from validator.schema import load_schema

STRINGS = pa.list_(pa.string())


def table(**columns: Any) -> pa.Table:
    """A table from dotted names: ``Location__Latitude`` stands for ``Location.Latitude``."""
    arrays = {}
    for name, values in columns.items():
        dotted = name.replace("__", ".")
        arrays[dotted] = (
            values
            if isinstance(values, pa.Array | pa.ChunkedArray)
            else (
                pa.array(values, STRINGS)
                if dotted.startswith(("Attributes.", "User.UserAttributes."))
                else pa.array(values, pa.string())
            )
        )
    return pa.table(arrays)


def run(t: pa.Table, fmt: str = "CSV") -> dict[tuple[str, str], Finding]:
    findings = check_batch(t, fmt)
    for f in findings:
        assert f.rows.dtype == np.int64
        assert list(f.rows) == sorted(set(f.rows.tolist()))
        assert len(f.messages) == len(f.rows)
    keys = [(f.code, f.field) for f in findings]
    assert len(keys) == len(set(keys)), keys
    return {(f.code, f.field): f for f in findings}


def rows(t: pa.Table, code: str, field: str, fmt: str = "CSV") -> list[int]:
    found = run(t, fmt).get((code, field))
    return [] if found is None else found.rows.tolist()


def message(t: pa.Table, code: str, field: str, fmt: str = "CSV") -> str:
    found = run(t, fmt)[code, field]
    assert len(found.messages) == 1
    return found.messages[0]


def base(n: int, **columns: Any) -> pa.Table:
    """n valid SMS endpoints with Ids, plus the given columns."""
    cols: dict[str, Any] = {
        "Id": [f"e{i}" for i in range(n)],
        "ChannelType": ["SMS"] * n,
        "Address": ["+12065550100"] * n,
    }
    cols.update(columns)
    return table(**cols)


# -- the whole batch ------------------------------------------------------------------------------


def test_a_clean_batch_has_no_findings() -> None:
    t = table(
        Id=["a", None],
        ChannelType=["EMAIL", "SMS"],
        Address=["bob@example.com", "+12065550100"],
        Demographic__Locale=["en_US", None],
        Demographic__Timezone=["Europe/Berlin", None],
        Location__Country=["DE", "US"],
        Location__Latitude=["52.5", "-33.9"],
        Location__Longitude=["13.4", "151.2"],
        Metrics__visits=["3", "1e3"],
        Attributes__plan=[["gold", "silver"], None],
        OptOut=["NONE", "ALL"],
        EndpointStatus=["ACTIVE", "INACTIVE"],
        EffectiveDate=["2019-08-23T10:54:35.220Z", "2020-02-29"],
        User__UserId=["u1", "u2"],
        User__UserAttributes__tier=[["a"], [None]],
    )
    assert check_batch(t, "CSV") == []
    assert check_batch(table(Id=[]), "CSV") == []


def test_findings_for_a_batch_of_mixed_problems() -> None:
    t = table(
        Id=[None, "x", None],
        ChannelType=["SMS", "sms", "EMAIL"],
        Address=["+1 (206) 555-0100", "+12065550100", "bob@example"],
    )
    found = run(t)
    assert sorted(found) == [
        ("ADDRESS_E164", "Address"),
        ("ADDRESS_EMAIL", "Address"),
        ("CHANNEL_TYPE", "ChannelType"),
    ]
    assert found["ADDRESS_E164", "Address"].rows.tolist() == [0]
    assert found["CHANNEL_TYPE", "ChannelType"].rows.tolist() == [1]
    assert found["ADDRESS_EMAIL", "Address"].rows.tolist() == [2]


def test_chunked_and_nested_tables() -> None:
    flat = table(Id=[None, None], ChannelType=["SMS", "SMS"], Address=["+1", "12"])
    chunked = pa.concat_tables([flat.slice(0, 1), flat.slice(1, 1)])
    assert rows(chunked, "ADDRESS_E164", "Address") == [1]
    nested = pa.table(
        {
            "Id": ["a", "b"],
            "Location": pa.array(
                [{"Country": "USA", "Latitude": 1.0}, {"Country": "US", "Latitude": 95.0}]
            ),
        }
    )
    found = run(nested, "JSON")
    assert found["COUNTRY_CODE", "Location.Country"].rows.tolist() == [0]
    assert found["COORDINATE_RANGE", "Location.Latitude"].rows.tolist() == [1]


# -- REQUIRED_MISSING -----------------------------------------------------------------------------


def test_required_missing() -> None:
    t = table(
        Id=[None, None, "", "e1", None],
        ChannelType=["SMS", None, "EMAIL", None, ""],
        Address=[None, "+12065550100", "", None, "x@y.io"],
    )
    found = run(t, "JSON")
    assert found["REQUIRED_MISSING", "Address"].rows.tolist() == [0, 2]
    assert found["REQUIRED_MISSING", "ChannelType"].rows.tolist() == [1, 4]
    assert found["REQUIRED_MISSING", "Address"].messages[0] == (
        "missing: an endpoint without an Id is new, and a new endpoint needs ChannelType and "
        "Address"
    )


def test_a_column_without_a_value_is_as_if_absent() -> None:
    nulls = pa.nulls(2, pa.string())
    with_nulls = table(
        Id=nulls,
        ChannelType=["SMS", "EMAIL"],
        Address=nulls,
        OptOut=nulls,
        Location__Latitude=nulls,
        Attributes__a=pa.nulls(2, STRINGS),
    )
    without = table(Id=nulls, ChannelType=["SMS", "EMAIL"])
    for fmt in ("CSV", "JSON"):
        assert sorted(run(with_nulls, fmt)) == sorted(run(without, fmt))
        assert rows(with_nulls, "REQUIRED_MISSING", "Address", fmt) == [0, 1]
        assert endpoint_sizes(with_nulls, fmt).tolist() == endpoint_sizes(without, fmt).tolist()


def test_required_missing_without_the_columns() -> None:
    t = table(User__UserId=["u1", "u2"])
    assert rows(t, "REQUIRED_MISSING", "ChannelType") == [0, 1]
    assert rows(t, "REQUIRED_MISSING", "Address") == [0, 1]
    assert rows(table(Id=["a", "b"]), "REQUIRED_MISSING", "Address") == []


# -- CHANNEL_TYPE, OPT_OUT, ENDPOINT_STATUS -------------------------------------------------------


def test_channel_type() -> None:
    every = list(load_schema().value_rules[0].enum or ())
    assert len(every) == 13
    t = table(Id=[str(i) for i in range(len(every) + 3)], ChannelType=[*every, "sms", "FAX", None])
    found = run(t)["CHANNEL_TYPE", "ChannelType"]
    assert found.rows.tolist() == [13, 14]
    assert found.messages == [
        "'sms' is not a channel type; did you mean 'SMS'?",
        "'FAX' is not a channel type (PUSH, GCM, APNS, APNS_SANDBOX, APNS_VOIP, "
        "APNS_VOIP_SANDBOX, ADM, SMS, VOICE, EMAIL, BAIDU, CUSTOM or IN_APP)",
    ]


def test_opt_out_and_endpoint_status() -> None:
    t = base(
        5,
        OptOut=["ALL", "NONE", "all", "YES", None],
        EndpointStatus=["ACTIVE", "INACTIVE", None, "active", "GONE"],
    )
    found = run(t)
    assert found["OPT_OUT", "OptOut"].rows.tolist() == [2, 3]
    assert found["OPT_OUT", "OptOut"].messages == [
        "'all' is not an opt-out value; did you mean 'ALL'?",
        "'YES' is not an opt-out value (ALL or NONE)",
    ]
    assert found["ENDPOINT_STATUS", "EndpointStatus"].rows.tolist() == [3, 4]
    assert found["ENDPOINT_STATUS", "EndpointStatus"].messages[1] == (
        "'GONE' is not an endpoint status (ACTIVE or INACTIVE)"
    )


# -- addresses ------------------------------------------------------------------------------------


def test_e164_boundaries() -> None:
    addresses = [
        "+1",
        "+123456789012345",
        "+1234567890123456",
        "+0123456",
        "+",
        "12065550182",
        "+1206555010a",
        "+1 206 555 0100",
    ]
    t = table(
        Id=[str(i) for i in range(len(addresses))],
        ChannelType=["SMS"] * len(addresses),
        Address=addresses,
    )
    assert rows(t, "ADDRESS_E164", "Address") == [2, 3, 4, 5, 6, 7]


def test_e164_messages() -> None:
    t = table(Id=["a"], ChannelType=["VOICE"], Address=["+1 (206) 555-0100"])
    assert message(t, "ADDRESS_E164", "Address") == (
        "'+1 (206) 555-0100' is not E.164: '+', then 1 to 15 digits, no spaces, dashes or "
        "brackets; did you mean '+12065550100'?"
    )
    t = table(Id=["a"], ChannelType=["SMS"], Address=["12065550182"])
    assert message(t, "ADDRESS_E164", "Address").endswith("; it has no leading '+'")
    t = table(Id=["a"], ChannelType=["SMS"], Address=["0044 20 7946 0958"])
    assert message(t, "ADDRESS_E164", "Address").endswith("did you mean '+442079460958'?")


def test_e164_only_for_sms_and_voice() -> None:
    t = table(
        Id=list("abcde"),
        ChannelType=["EMAIL", "GCM", "SMS", "VOICE", None],
        Address=["bob@example.com", "token 123", "+1 206", "+1 206", "+1 206"],
    )
    assert rows(t, "ADDRESS_E164", "Address") == [2, 3]
    assert rows(table(Id=["a"], Address=["+1 206"]), "ADDRESS_E164", "Address") == []


def test_email_address() -> None:
    addresses = [
        "bob@example.com",
        "bob@example",
        "bob.example.com",
        "a b@example.com",
        "bob@@example.com",
        "bob@example.com.",
        "x@sub.example.co.uk",
    ]
    n = len(addresses)
    t = table(Id=[str(i) for i in range(n)], ChannelType=["EMAIL"] * n, Address=addresses)
    found = run(t)["ADDRESS_EMAIL", "Address"]
    assert found.rows.tolist() == [1, 2, 3, 4, 5]
    assert found.messages[0] == "'bob@example' is not an email address: local@domain.tld"
    assert found.messages[2] == (
        "'a b@example.com' is not an email address: local@domain.tld; "
        "did you mean 'ab@example.com'?"
    )


def test_many_rows_few_sms() -> None:
    """The E.164 rule runs over the SMS rows only; results map back to table rows."""
    n = 10_000
    channel = ["EMAIL"] * n
    address = ["x@example.com"] * n
    channel[7], address[7] = "SMS", "555-0100"
    channel[9001], address[9001] = "SMS", "+15550100"
    t = table(Id=[str(i) for i in range(n)], ChannelType=channel, Address=address)
    assert rows(t, "ADDRESS_E164", "Address") == [7]


def test_e164_suggestions_never_name_another_number() -> None:
    """'Did you mean' comes from libphonenumber: the number itself, or nothing."""

    def said(address: str) -> str:
        t = table(Id=["a"], ChannelType=["SMS"], Address=[address])
        return message(t, "ADDRESS_E164", "Address")

    # the trunk prefix (0) is not part of the number: never '+4402079460958'
    assert said("+44 (0)20 7946 0958").endswith("; did you mean '+442079460958'?")
    assert said("(+351) 282 43 50 50").endswith("; did you mean '+351282435050'?")
    for no_suggestion in (
        "+1214......2",  # masked
        "+1 214 555 XXXX",  # masked: the library would read the letters as keypad digits
        "+1-800-FLOWERS",
        "+1 206 555 0182 ext 5",  # an extension E.164 cannot hold
        "2065550182",  # national: which country is not said
        "+1 206 555 018",  # too short to be a valid number
        "+999 1234 5678",  # no such country code
    ):
        assert "did you mean" not in said(no_suggestion), no_suggestion


# -- dates, countries, locales, time zones --------------------------------------------------------


def test_effective_date() -> None:
    good = [
        "2019-08-23T10:54:35.220Z",
        "2019-08-23",
        "2019-08-23T10:54",
        "2019-08-23T10:54:35",
        "2019-08-23T10:54:35+02:00",
        "2019-08-23T10:54:35-0530",
        "2019-08-23T10:54:35,5Z",
        "2020-02-29",
        "2000-02-29T00:00Z",
        "2019-12-31",
    ]
    bad = [
        "2019-02-29",
        "1900-02-29",
        "2019-04-31",
        "2019-13-01",
        "2019-08-23 10:54",
        "2019/08/23",
        "23.08.2019",
        "2019-08-23T24:00",
        "2019-08-23T10:54Z+",
        "2019-08-23t10:54",
        "yesterday",
    ]
    basic_good = [
        "20171011T150548Z",  # the 2017 developer guide's own example
        "20190823",
        "20200229",
        "20190823T1054",
        "20190823T105435",
        "20190823T105435.220Z",
        "20190823T105435,5+0200",
        "20190823T105435-05",
        "20190823T2359-2359",
    ]
    basic_bad = [
        "20190229",  # no such day
        "20190431",
        "20191301",
        "20190823T2400",
        "20190823T1060",
        "20190823T105460Z",
        "20190823T10:54:35Z",  # basic date, extended time: one format throughout
        "2019-08-23T105435Z",
        "20190823T105435+02:00",
        "20190823T10",
        "2019082",
        "201908231",
        "20190823Z",
    ]
    good += basic_good
    bad += basic_bad
    t = base(len(good + bad), EffectiveDate=good + bad)
    found = run(t)["EFFECTIVE_DATE", "EffectiveDate"]
    assert found.rows.tolist() == list(range(len(good), len(good + bad)))
    assert found.messages[0] == "'2019-02-29' is not a real date"
    assert found.messages[len(bad) - len(basic_bad)] == "'20190229' is not a real date"
    assert found.messages[4] == (
        "'2019-08-23 10:54' is not an ISO 8601 date-time: e.g. 2019-08-23T10:54:35.220Z; "
        "did you mean '2019-08-23T10:54'?"
    )


def test_effective_date_many_repeated_values() -> None:
    """Dates that repeat are checked once per distinct value: same answer."""
    values = ["2019-08-23T10:54:35Z", "2019-02-30", None] * 3000
    t = base(len(values), EffectiveDate=values)
    assert rows(t, "EFFECTIVE_DATE", "EffectiveDate") == list(range(1, len(values), 3))


def test_country_code() -> None:
    t = base(6, Location__Country=["US", "USA", "us", "UK", "XX", None])
    found = run(t)["COUNTRY_CODE", "Location.Country"]
    assert found.rows.tolist() == [1, 2, 3, 4]
    assert found.messages == [
        "'USA' is an ISO 3166-1 alpha-3 code; Pinpoint expects alpha-2: 'US' (United States)",
        "'us' is not an ISO 3166-1 alpha-2 country code; did you mean 'US'?",
        "'UK' is not an ISO 3166-1 alpha-2 country code (it is only reserved); the code for "
        "United Kingdom is 'GB'",
        "'XX' is not an ISO 3166-1 alpha-2 country code: e.g. US",
    ]
    assert message(base(1, Location__Country=["CAN"]), "COUNTRY_CODE", "Location.Country") == (
        "'CAN' is an ISO 3166-1 alpha-3 code; Pinpoint expects alpha-2: 'CA' (Canada)"
    )


def test_locale() -> None:
    t = base(6, Demographic__Locale=["en_US", "de_CH", "en-US", "en", "EN_us", "xx_YY"])
    found = run(t)["LOCALE", "Demographic.Locale"]
    assert found.rows.tolist() == [2, 3, 4, 5]
    assert found.messages[0] == "'en-US' is not a locale ll_CC; did you mean 'en_US'?"
    assert found.messages[1].endswith("; it names a language but no country")
    assert found.messages[2] == "'EN_us' is not a locale ll_CC; did you mean 'en_US'?"
    assert found.messages[3] == (
        "'xx_YY' is not a locale ll_CC: ISO 639-1 language, '_', "
        "ISO 3166-1 alpha-2 country, e.g. en_US"
    )


def test_timezone() -> None:
    t = base(
        6,
        Demographic__Timezone=[
            "America/Los_Angeles",
            "UTC",
            "US/Pacific-New",
            "america/los_angeles",
            "PST",
            "GMT+2",
        ],
    )
    found = run(t)["TIMEZONE", "Demographic.Timezone"]
    assert found.rows.tolist() == [3, 4, 5]
    assert found.messages[0] == (
        "'america/los_angeles' is not an IANA time zone name; did you mean 'America/Los_Angeles'?"
    )
    assert found.messages[1] == "'PST' is not an IANA time zone name: e.g. America/Los_Angeles"


# -- coordinates and metrics ----------------------------------------------------------------------


def test_coordinates_from_csv_text() -> None:
    t = base(
        8,
        Location__Latitude=["47.6", "-90", "90", "90.1", "abc", "4 7", "NaN", None],
        Location__Longitude=["-180", "180", "180.5", "-181", "1e3", "0", "+0.5", ".5"],
    )
    found = run(t)
    assert found["COORDINATE_TYPE", "Location.Latitude"].rows.tolist() == [4, 5, 6]
    assert found["COORDINATE_TYPE", "Location.Latitude"].messages == [
        "'abc' is not a number",
        "'4 7' is not a number",
        "'NaN' is not a number",
    ]
    assert found["COORDINATE_RANGE", "Location.Latitude"].rows.tolist() == [3]
    assert found["COORDINATE_RANGE", "Location.Latitude"].messages == [
        "'90.1' is not a latitude (-90..90)"
    ]
    assert found["COORDINATE_RANGE", "Location.Longitude"].rows.tolist() == [2, 3, 4]
    assert ("COORDINATE_TYPE", "Location.Longitude") not in found


def test_coordinates_from_json_numbers() -> None:
    t = base(
        4,
        Location__Latitude=pa.array([47.6, -91.0, None, 90.0]),
        Location__Longitude=pa.array([1, 2, 300, None], pa.int64()),
    )
    found = run(t, "JSON")
    assert found["COORDINATE_RANGE", "Location.Latitude"].rows.tolist() == [1]
    assert found["COORDINATE_RANGE", "Location.Latitude"].messages == [
        "-91.0 is not a latitude (-90..90)"
    ]
    assert found["COORDINATE_RANGE", "Location.Longitude"].rows.tolist() == [2]
    t = base(1, Location__Latitude=pa.array([math.inf]))
    assert message(t, "COORDINATE_TYPE", "Location.Latitude", "JSON") == (
        "Infinity is not a finite number"
    )


def test_metrics_from_csv_text() -> None:
    t = base(9, Metrics__visits=["1", "-2.5e3", "x", "NaN", "1e999", "Infinity", "", "1,5", " 7 "])
    found = run(t)["METRIC_TYPE", "Metrics.visits"]
    assert found.rows.tolist() == [2, 3, 4, 5, 7, 8]
    assert found.messages == [
        "'x' is not a finite number",
        "'NaN' is not a finite number",
        "'1e999' is not a finite number (too large for a double)",
        "'Infinity' is not a finite number",
        "'1,5' is not a finite number; did you mean '1.5'?",
        "' 7 ' is not a finite number; did you mean '7'?",
    ]
    assert rows(base(2, Metrics__m=["3", "4.25"]), "METRIC_TYPE", "Metrics.m") == []


def test_metrics_from_json_numbers() -> None:
    t = base(3, Metrics__m=pa.array([1.5, math.nan, None]), Metrics__n=pa.array([1, 2, 3]))
    found = run(t, "JSON")
    assert found["METRIC_TYPE", "Metrics.m"].rows.tolist() == [1]
    assert ("METRIC_TYPE", "Metrics.n") not in found


# -- custom attributes ----------------------------------------------------------------------------


def test_attribute_name_length_50_vs_51() -> None:
    n50, n51 = "a" * 50, "b" * 51
    t = base(
        3,
        **{f"Attributes__{n50}": [["x"], ["y"], None], f"Attributes__{n51}": [["x"], [None], None]},
    )
    found = run(t)
    assert (("ATTRIBUTE_NAME_LENGTH", f"Attributes.{n50}")) not in found
    hit = found["ATTRIBUTE_NAME_LENGTH", f"Attributes.{n51}"]
    assert hit.rows.tolist() == [0]  # only rows that have the attribute
    assert hit.messages == [f"attribute name '{n51[:39]}…' has 51 characters; at most 50"]
    t = base(2, **{f"Metrics__{n51}": ["1", None], f"User__UserAttributes__{n51}": [None, ["v"]]})
    found = run(t)
    assert found["ATTRIBUTE_NAME_LENGTH", f"Metrics.{n51}"].rows.tolist() == [0]
    assert found["ATTRIBUTE_NAME_LENGTH", f"User.UserAttributes.{n51}"].rows.tolist() == [1]


def test_attribute_name_chars() -> None:
    t = base(
        2,
        **{
            "Attributes__a:b": [["x"], None],
            "Attributes__a_b-c.d": [["x"], ["y"]],
            "User__UserAttributes__what?": [None, ["y"]],
            "Metrics__a:b": ["1", "2"],
        },
    )
    found = run(t)
    assert found["ATTRIBUTE_NAME_CHARS", "Attributes.a:b"].messages == [
        "attribute name 'a:b' contains ':'; avoid # : ? \\ / (the console can't display them)"
    ]
    assert found["ATTRIBUTE_NAME_CHARS", "User.UserAttributes.what?"].rows.tolist() == [1]
    assert ("ATTRIBUTE_NAME_CHARS", "Attributes.a_b-c.d") not in found
    assert ("ATTRIBUTE_NAME_CHARS", "Metrics.a:b") not in found  # documented for attributes only


def test_attribute_value_length_100_vs_101() -> None:
    t = base(4, Attributes__bio=[["x" * 100], ["é" * 100], ["y" * 101], ["z" * 101, "w" * 150]])
    found = run(t)["ATTRIBUTE_VALUE_LENGTH", "Attributes.bio"]
    assert found.rows.tolist() == [2, 3]  # characters, not bytes: 100 × 'é' passes
    assert found.messages == [
        f"value '{'y' * 39}…' has 101 characters; at most 100",
        f"value '{'z' * 39}…' has 101 characters; at most 100 (and 1 more value over 100)",
    ]


def test_attribute_value_length_in_a_sliced_column() -> None:
    """A slice's list values still hold the items of the rows cut off: they are not counted."""
    column = pa.array([["x" * 101], ["ok", "z" * 101], ["y" * 101]], STRINGS)
    found = run(base(1, Attributes__bio=column.slice(1, 1)))[
        "ATTRIBUTE_VALUE_LENGTH", "Attributes.bio"
    ]
    assert found.rows.tolist() == [0]
    assert found.messages == [f"value '{'z' * 39}…' has 101 characters; at most 100"]
    clean = pa.array([["x" * 101], ["ok"], ["y" * 101]], STRINGS).slice(1, 1)
    assert rows(base(1, Attributes__bio=clean), "ATTRIBUTE_VALUE_LENGTH", "Attributes.bio") == []


def test_attribute_values_count_50_vs_51() -> None:
    t = base(4, User__UserAttributes__tags=[["v"] * 50, ["v"] * 51, ["v"] * 50 + [None], None])
    found = run(t)["ATTRIBUTE_VALUES_COUNT", "User.UserAttributes.tags"]
    assert found.rows.tolist() == [1]  # an empty CSV cell is not a value
    assert found.messages == ["51 values; at most 50 per attribute"]


def test_attribute_columns_from_repeated_csv_headers() -> None:
    """What read_csv builds: one list item per repeated header, null for an empty cell."""
    values = pa.array(["a", None, "b", "c"], pa.string())
    col = pa.ListArray.from_arrays(pa.array([0, 2, 4], pa.int32()), values)
    t = base(2, **{"Attributes__x?": col})
    assert rows(t, "ATTRIBUTE_NAME_CHARS", "Attributes.x?") == [0, 1]
    t = base(
        2,
        **{
            "Attributes__x?": pa.ListArray.from_arrays(
                pa.array([0, 2, 4], pa.int32()), pa.array([None, None, "b", "c"], pa.string())
            )
        },
    )
    assert rows(t, "ATTRIBUTE_NAME_CHARS", "Attributes.x?") == [1]


# -- JSON types and unknown fields ----------------------------------------------------------------


def test_field_unknown_in_json_tables() -> None:
    t = base(
        3,
        Adress=["x", None, None],
        Location__Zip=[None, None, "98101"],
        **{"Attributes.": pa.array([None, ["v"], None], STRINGS)},
        Foo=pa.array([None, None, None], pa.string()),
    )
    found = run(t, "JSON")
    assert found["FIELD_UNKNOWN", "Adress"].rows.tolist() == [0]
    assert found["FIELD_UNKNOWN", "Adress"].messages == [
        "not an endpoint field; did you mean 'Address'?"
    ]
    assert found["FIELD_UNKNOWN", "Location.Zip"].rows.tolist() == [2]
    assert found["FIELD_UNKNOWN", "Attributes."].messages == ["an attribute name cannot be empty"]
    assert ("FIELD_UNKNOWN", "Foo") not in found  # never given a value
    assert not [k for k in run(t, "CSV") if k[0] == "FIELD_UNKNOWN"]  # CSV: the header's job


def test_field_type_in_json_tables() -> None:
    t = base(
        3,
        Attributes__x=pa.array(["abc", None, "d"]),
        Attributes__y=pa.array([["a", None], ["b"], None], STRINGS),
        Attributes__z=pa.array([[1], [], None], pa.list_(pa.int64())),
        Metrics__m=pa.array(["5", None, None]),
        Location__Latitude=pa.array(["1", None, "2"]),
        User__UserId=pa.array([5, None, 6]),
        Location=pa.array(["Seattle", None, None]),
    )
    found = run(t, "JSON")
    assert found["FIELD_TYPE", "Attributes.x"].rows.tolist() == [0, 2]
    assert found["FIELD_TYPE", "Attributes.x"].messages[0] == (
        "expected an array of strings, got a string ('abc')"
    )
    assert found["FIELD_TYPE", "Attributes.y"].rows.tolist() == [0]
    assert found["FIELD_TYPE", "Attributes.y"].messages == [
        "expected an array of strings, got null as item 2"
    ]
    assert found["FIELD_TYPE", "Attributes.z"].rows.tolist() == [0]
    assert found["FIELD_TYPE", "Attributes.z"].messages == [
        "expected an array of strings, got a number (1) as item 1"
    ]
    assert found["FIELD_TYPE", "Metrics.m"].messages == ["expected a number, got a string ('5')"]
    assert found["FIELD_TYPE", "Location.Latitude"].rows.tolist() == [0, 2]
    assert found["FIELD_TYPE", "User.UserId"].messages[0] == "expected a string, got a number (5)"
    assert found["FIELD_TYPE", "Location"].rows.tolist() == [0]
    # the same columns from CSV are text, which is what CSV gives
    csv = run(base(1, Metrics__m=["5"], Location__Latitude=["1"]), "CSV")
    assert not [k for k in csv if k[0] == "FIELD_TYPE"]


def test_json_null_columns_and_empty_lists_are_fine() -> None:
    t = base(
        2,
        Attributes__x=pa.array([[], None], pa.list_(pa.null())),
        Metrics__m=pa.nulls(2),
        Location__City=pa.nulls(2),
    )
    assert run(t, "JSON") == {}
    t = base(1, Attributes__x=pa.array([[None]], pa.list_(pa.null())))
    assert rows(t, "FIELD_TYPE", "Attributes.x", "JSON") == [0]


# -- endpoint size --------------------------------------------------------------------------------


def nested(row: dict[str, Any]) -> dict[str, Any]:
    """The endpoint as Pinpoint's JSON: numbers as floats, no nulls, no empty attributes."""
    s = load_schema()
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            continue
        found = s.map_for(name)
        kind = s.kind(name)
        if kind in ("number", "numbers"):
            value = float(value)
        elif kind == "strings":
            value = [v for v in value if v is not None]
            if not value:
                continue
        parent, key = (found[0].prefix, found[1]) if found else name.rpartition(".")[::2]
        target = out
        for part in parent.split(".") if parent else []:
            target = target.setdefault(part, {})
        target[key] = value
    return out


ROWS: list[dict[str, Any]] = [
    {
        "Id": "e1",
        "ChannelType": "SMS",
        "Address": "+12065550100",
        "Location.Latitude": "47.6",
        "Location.Longitude": "-122.3",
        "Metrics.visits": "5",
        "Attributes.plan": ["gold", None],
        "User.UserId": "u1",
        "User.UserAttributes.tier": ["a", "b"],
        "Demographic.Locale": None,
    },
    {
        "Id": 'quote " back \\ tab \t nl \n nul \x00 é 😀',
        "ChannelType": None,
        "Address": None,
        "Location.Latitude": "1e16",
        "Location.Longitude": "0.00001",
        "Metrics.visits": "1e-7",
        "Attributes.plan": [None],
        "User.UserId": None,
        "User.UserAttributes.tier": None,
        "Demographic.Locale": "de_DE",
    },
    {
        "Id": None,
        "ChannelType": None,
        "Address": None,
        "Location.Latitude": None,
        "Location.Longitude": None,
        "Metrics.visits": None,
        "Attributes.plan": None,
        "User.UserId": None,
        "User.UserAttributes.tier": None,
        "Demographic.Locale": None,
    },
]


def _csv_and_json(rows_: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
    cols = {name: [r[name] for r in rows_] for name in rows_[0]}
    numeric = ("Location.Latitude", "Location.Longitude", "Metrics.visits")
    csv = table(**{k.replace(".", "__"): v for k, v in cols.items()})
    js = table(
        **{
            k.replace(".", "__"): (
                pa.array([None if x is None else float(x) for x in v]) if k in numeric else v
            )
            for k, v in cols.items()
        }
    )
    return csv, js


def test_endpoint_size_is_orjson_length_for_csv_and_json() -> None:
    csv, js = _csv_and_json(ROWS)
    want = [len(orjson.dumps(nested(r))) for r in ROWS]
    assert endpoint_sizes(csv, "CSV").tolist() == want
    assert endpoint_sizes(js, "JSON").tolist() == want
    assert want[2] == 2  # {}


def _sized(n_bytes: int) -> pa.Table:
    """One endpoint of exactly n_bytes as compact JSON: {"Id":"x...x","Attributes":{"a":[..]}}."""
    skeleton = len(orjson.dumps({"Id": "", "Attributes": {"a": ['q"q']}}))
    return table(Id=["x" * (n_bytes - skeleton)], Attributes__a=[['q"q']])


def test_endpoint_too_large_at_exactly_15_kb_and_one_byte_over() -> None:
    limit = 15 * 1024
    for fmt in ("CSV", "JSON"):
        exact = _sized(limit)
        assert endpoint_sizes(exact, fmt).tolist() == [limit]
        assert rows(exact, "ENDPOINT_TOO_LARGE", "", fmt) == []
        over = _sized(limit + 1)
        assert message(over, "ENDPOINT_TOO_LARGE", "", fmt) == (
            "the endpoint is 15,361 bytes as JSON; Pinpoint allows 15 KB (15,360 bytes)"
        )


def test_endpoint_too_large_counts_escapes_and_numbers_exactly() -> None:
    limit = 15 * 1024
    # 5,000 quotes are 10,000 bytes as JSON: near the limit only because of escaping
    base_row: dict[str, Any] = {
        "Id": '"' * 5000,
        "Location.Latitude": "1e-7",
        "Attributes.a": ["\x01" * 800],
    }  # 800 × \u0001 = 4,800 bytes
    size = len(orjson.dumps(nested(base_row)))
    pad = limit - size
    under: dict[str, Any] = dict(base_row, Address="y" * (pad - len(',"Address":""')))
    over = dict(under, Address=under["Address"] + "y")
    t = table(
        Id=[under["Id"], over["Id"], "small"],
        Address=[under["Address"], over["Address"], "x"],
        Location__Latitude=["1e-7", "1e-7", None],
        Attributes__a=[["\x01" * 800], ["\x01" * 800], None],
    )
    sizes = endpoint_sizes(t, "CSV").tolist()
    assert sizes[:2] == [limit, limit + 1]
    assert rows(t, "ENDPOINT_TOO_LARGE", "") == [1]


# -- CSV header -----------------------------------------------------------------------------------


def test_csv_header_unknown_with_near_matches() -> None:
    problems = check_csv_header(
        [
            "Id",
            "channeltype",
            "Adress",
            "Location.Zip",
            "Attribute.plan",
            "UserAttributes.x",
            " Address",
            "",
        ]
    )
    assert problems == [
        HeaderProblem(
            1,
            "channeltype",
            "CSV_HEADER_UNKNOWN",
            "not a supported header; names are case-sensitive: did you mean 'ChannelType'?",
        ),
        HeaderProblem(
            2, "Adress", "CSV_HEADER_UNKNOWN", "not a supported header; did you mean 'Address'?"
        ),
        HeaderProblem(3, "Location.Zip", "CSV_HEADER_UNKNOWN", "not a supported header"),
        HeaderProblem(
            4,
            "Attribute.plan",
            "CSV_HEADER_UNKNOWN",
            "not a supported header; did you mean 'Attributes.plan'?",
        ),
        HeaderProblem(
            5,
            "UserAttributes.x",
            "CSV_HEADER_UNKNOWN",
            "not a supported header; did you mean 'User.UserAttributes.x'?",
        ),
        HeaderProblem(
            6, " Address", "CSV_HEADER_UNKNOWN", "not a supported header; did you mean 'Address'?"
        ),
        HeaderProblem(7, "", "CSV_HEADER_UNKNOWN", "an empty name is not a supported header"),
    ]


def test_csv_header_patterns_and_duplicates() -> None:
    header = [
        "ChannelType",
        "Address",
        "Attributes.a",
        "Attributes.a",
        "User.UserAttributes.b",
        "User.UserAttributes.b",
        "Metrics.m",
        "Metrics.m",
        "Address",
        "Attributes.with.dots",
        "Demographic.Timezone",
    ]
    assert check_csv_header(header) == [
        HeaderProblem(
            7,
            "Metrics.m",
            "CSV_HEADER_DUPLICATE",
            "'Metrics.m' repeats column 7; only Attributes.* or User.UserAttributes.* "
            "headers may repeat (one value each)",
        ),
        HeaderProblem(
            8,
            "Address",
            "CSV_HEADER_DUPLICATE",
            "'Address' repeats column 2; only Attributes.* or User.UserAttributes.* "
            "headers may repeat (one value each)",
        ),
    ]
    assert check_csv_header(["Id", "Attributes", "attributes.x"]) == [
        HeaderProblem(
            1,
            "Attributes",
            "CSV_HEADER_UNKNOWN",
            "not a supported header; did you mean 'Attributes.<name>'?",
        ),
        HeaderProblem(
            2,
            "attributes.x",
            "CSV_HEADER_UNKNOWN",
            "not a supported header; names are case-sensitive: did you mean 'Attributes.x'?",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("channeltype", "ChannelType"),
        ("CHANNELTYPE", "ChannelType"),
        ("Adress", "Address"),
        ("\ufeffChannelType", "ChannelType"),
        ("UserId", "User.UserId"),
        ("Latitude", "Location.Latitude"),
        ("Demographics.Locale", "Demographic.Locale"),
        ("Metric.m", "Metrics.m"),
        ("Location.Zip", None),
        ("Foo", None),
    ],
)
def test_suggest_field(name: str, expected: str | None) -> None:
    assert suggest_field(name) == expected


# -- JSON slow path -------------------------------------------------------------------------------


def test_check_json_object_problems() -> None:
    assert check_json_object([1, 2]) == [
        (None, "JSON_NOT_OBJECT", "expected an object, got an array")
    ]
    assert check_json_object("x") == [
        (None, "JSON_NOT_OBJECT", "expected an object, got a string ('x')")
    ]
    assert check_json_object({"Id": "a", "Adress": "x", "Location": {"Zip": "1"}}) == [
        ("Adress", "FIELD_UNKNOWN", "not an endpoint field; did you mean 'Address'?"),
        ("Location.Zip", "FIELD_UNKNOWN", "not an endpoint field"),
    ]
    assert check_json_object({"User.UserAttributes.a.b": ["x"], "Location.Country": "US"}) == [
        (
            "User.UserAttributes.a.b",
            "FIELD_UNKNOWN",
            "not an endpoint field: in JSON a dotted "
            'name is nested, {"User": {"UserAttributes": {"a.b": ...}}}',
        ),
        (
            "Location.Country",
            "FIELD_UNKNOWN",
            "not an endpoint field: in JSON a dotted name is nested, "
            '{"Location": {"Country": ...}}',
        ),
    ]
    assert check_json_object({"Location": "Seattle", "Demographic": [1]}) == [
        ("Location", "FIELD_TYPE", "expected an object, got a string ('Seattle')"),
        ("Demographic", "FIELD_TYPE", "expected an object, got an array"),
    ]
    assert check_json_object(
        {
            "Attributes": {"a": "x", "b": ["x", None], "c": [["x"]]},
            "Metrics": {"m": "5", "n": True, "o": math.inf, "p": 10**400},
            "User": {"UserId": 5, "UserAttributes": {"": ["a"]}},
            "Location": {"Latitude": "1", "Longitude": math.nan},
        }
    ) == [
        ("Attributes.a", "FIELD_TYPE", "expected an array of strings, got a string ('x')"),
        ("Attributes.b", "FIELD_TYPE", "expected an array of strings, got null as item 2"),
        ("Attributes.c", "FIELD_TYPE", "expected an array of strings, got an array as item 1"),
        ("Metrics.m", "FIELD_TYPE", "expected a number, got a string ('5')"),
        ("Metrics.n", "FIELD_TYPE", "expected a number, got a boolean (true)"),
        ("Metrics.o", "METRIC_TYPE", "Infinity is not a finite number"),
        ("Metrics.p", "METRIC_TYPE", f"{10**400} is not a finite number"),
        ("User.UserId", "FIELD_TYPE", "expected a string, got a number (5)"),
        ("User.UserAttributes.", "FIELD_UNKNOWN", "an attribute name cannot be empty"),
        ("Location.Latitude", "FIELD_TYPE", "expected a number, got a string ('1')"),
        ("Location.Longitude", "COORDINATE_TYPE", "NaN is not a number"),
    ]


PASSING = [
    {},
    {"Id": "a", "ChannelType": "SMS", "Address": "+12065550100"},
    {"Id": None, "Attributes": None, "Location": None, "Demographic": {"Locale": None}},
    {
        "Attributes": {"a": [], "b": ["x", "y"], "c": None, "d.e": ["z"]},
        "Metrics": {"m": 1},
        "User": {"UserId": "u", "UserAttributes": {"t": ["1"]}},
    },
    {
        "Metrics": {"m": 10**30, "n": -1.5e300, "o": 0},
        "Location": {"Latitude": 10**20, "Longitude": -1},
    },
    {"ChannelType": "not checked here", "OptOut": "MAYBE", "EffectiveDate": "whenever"},
    {"Demographic": {name: "x" for name in load_schema().containers["Demographic"]}},
    {"Id": 'a\u0000b"c\\d\ne'},
]


def _parse(obj: Any) -> pa.Table:
    options = pajson.ParseOptions(
        explicit_schema=load_schema().arrow_json_schema(), unexpected_field_behavior="infer"
    )
    return pajson.read_json(io.BytesIO(json.dumps(obj).encode() + b"\n"), parse_options=options)


def _flatten(t: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(f.type) for f in t.schema):
        t = t.flatten()
    return t


@pytest.mark.parametrize("obj", PASSING)
def test_a_passing_json_object_parses_with_the_arrow_schema(obj: dict[str, Any]) -> None:
    assert check_json_object(obj) == []
    assert _parse(obj).num_rows == 1


FAILING = [
    {"Id": 1},
    {"Id": True},
    {"Location": {"Latitude": "1"}},
    {"Location": "x"},
    {"Attributes": ["a"]},
    {"Attributes": {"a": ["x", 1]}},
    {"User": {"UserId": ["u"]}},
    # pyarrow parses these (map members are inferred); the table check reports them
    {"Metrics": {"m": "1"}},
    {"Attributes": {"a": "x"}},
    {"Attributes": {"a": [1, 2]}},
    {"User": {"UserAttributes": {"t": ["x", None]}}},
]


@pytest.mark.parametrize("obj", FAILING)
def test_the_slow_path_and_the_table_agree_on_types(obj: dict[str, Any]) -> None:
    slow = [(field, code) for field, code, _ in check_json_object(obj)]
    assert [code for _, code in slow] == ["FIELD_TYPE"]
    try:
        parsed = _parse(obj)
    except pa.ArrowInvalid:
        return
    fast = [
        (f.field, f.code) for f in check_batch(_flatten(parsed), "JSON") if f.code == "FIELD_TYPE"
    ]
    assert fast == slow


def test_long_and_odd_values_are_quoted_on_one_line() -> None:
    t = table(Id=["a"], ChannelType=["SMS"], Address=["+1\n" + "9" * 60])
    text = message(t, "ADDRESS_E164", "Address")
    assert text.startswith("'+1\\n" + "9" * 36 + "…' is not E.164")
    assert "\n" not in text


def test_dictionary_view_and_many_chunk_columns_are_read_as_strings() -> None:
    t = pa.table(
        {
            "Id": pa.chunked_array([pa.array(["a"]), pa.array(["b"]), pa.array(["c"])]),
            "ChannelType": pa.array(["sms", "SMS", "SMS"]).dictionary_encode(),
            "Address": pa.array(["+1", "x", "+2"], pa.string_view()),
            "Attributes.a:b": pa.array([["x"], None, ["y"]], pa.list_(pa.string_view())),
        }
    )
    for fmt in ("CSV", "JSON"):
        found = run(t, fmt)
        assert sorted(found) == [
            ("ADDRESS_E164", "Address"),
            ("ATTRIBUTE_NAME_CHARS", "Attributes.a:b"),
            ("CHANNEL_TYPE", "ChannelType"),
        ]
        assert found["ATTRIBUTE_NAME_CHARS", "Attributes.a:b"].rows.tolist() == [0, 2]
