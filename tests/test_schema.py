"""schema.py: the rule files load, agree with each other, and compile to what the checks use."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest

from validator import schema as schema_module
from validator.schema import Schema, SchemaFileError, load_schema

REPO = Path(__file__).resolve().parent.parent

# rules.md: every code and its severity. The codes are fixed; this pins them.
CODES = {
    "FILE_COMPRESSED": "error",
    "FILE_NOT_UTF8": "error",
    "FILE_BOM": "warning",
    "FILE_EMPTY": "error",
    "FILE_LINE_ENDINGS": "error",
    "FILE_SKIPPED": "info",
    "FORMAT_MIXED": "warning",
    "JOB_TOO_LARGE": "error",
    "ATTRIBUTES_TOO_MANY": "error",
    "JOB_EMPTY": "error",
    "CSV_HEADER_UNKNOWN": "error",
    "CSV_HEADER_DUPLICATE": "error",
    "CSV_ROW_WIDTH": "error",
    "CSV_NEWLINE_IN_VALUE": "error",
    "CSV_TAB_IN_VALUE": "error",
    "CSV_QUOTE": "error",
    "JSON_SYNTAX": "error",
    "JSON_NOT_OBJECT": "error",
    "JSON_DUPLICATE_KEY": "error",
    "FIELD_UNKNOWN": "error",
    "FIELD_TYPE": "error",
    "REQUIRED_MISSING": "error",
    "CHANNEL_TYPE": "error",
    "ADDRESS_E164": "error",
    "ADDRESS_EMAIL": "warning",
    "OPT_OUT": "error",
    "ENDPOINT_STATUS": "error",
    "EFFECTIVE_DATE": "error",
    "COUNTRY_CODE": "warning",
    "LOCALE": "warning",
    "TIMEZONE": "warning",
    "COORDINATE_TYPE": "error",
    "COORDINATE_RANGE": "warning",
    "METRIC_TYPE": "error",
    "ATTRIBUTE_NAME_LENGTH": "error",
    "ATTRIBUTE_NAME_CHARS": "warning",
    "ATTRIBUTE_VALUE_LENGTH": "error",
    "ATTRIBUTE_VALUES_COUNT": "error",
    "ENDPOINT_TOO_LARGE": "error",
    "USER_ENDPOINTS": "error",
    "DUPLICATE_ID": "warning",
    # Beyond rules.md: a URL without a trailing slash is a plain S3 prefix (issue 3).
    "S3_PREFIX_NOT_FOLDER": "warning",
}


@pytest.fixture(scope="module")
def s() -> Schema:
    return load_schema()


def test_every_rule_code_with_its_severity_and_a_source(s: Schema) -> None:
    assert {r.code: r.severity for r in s.rules} == CODES
    for rule in s.rules:
        assert rule.source.startswith("https://docs.aws.amazon.com/")  # Pinpoint's or S3's
        assert rule.description
        assert s.severity(rule.code) == CODES[rule.code]


def test_push_severity_for_user_endpoints(s: Schema) -> None:
    assert s.severity("USER_ENDPOINTS") == "error"
    assert s.severity("USER_ENDPOINTS", push=True) == "warning"
    assert s.severity("DUPLICATE_ID", push=True) == "warning"
    with pytest.raises(KeyError):
        s.severity("NO_SUCH_CODE")


def test_limits(s: Schema) -> None:
    limits = s.limits
    assert limits.job_size_bytes == 1_000_000_000
    assert limits.endpoint_size_bytes == 15 * 1024
    assert (limits.attribute_name_length, limits.attribute_value_length) == (50, 100)
    assert limits.attribute_values == 50
    assert limits.custom_attributes_per_job == 250
    assert limits.endpoints_per_user == 15
    assert s.push_channel_types == {"ADM", "GCM", "APNS", "APNS_VOIP", "APNS_VOIP_SANDBOX", "BAIDU"}
    assert s.limit("endpoints_per_user") == 15
    assert s.limit("custom_attributes_per_job") == 250
    assert all(url.startswith("https://docs.aws.amazon.com/") for url in limits.sources.values())
    with pytest.raises(KeyError):
        s.limit("nothing")


def test_fields_and_kinds(s: Schema) -> None:
    assert list(s.fields) == [
        "Id",
        "Address",
        "ChannelType",
        "Demographic.AppVersion",
        "Demographic.Locale",
        "Demographic.Make",
        "Demographic.Model",
        "Demographic.ModelVersion",
        "Demographic.Platform",
        "Demographic.PlatformVersion",
        "Demographic.Timezone",
        "EffectiveDate",
        "EndpointStatus",
        "Location.City",
        "Location.Country",
        "Location.Latitude",
        "Location.Longitude",
        "Location.PostalCode",
        "Location.Region",
        "OptOut",
        "RequestId",
        "User.UserId",
    ]
    assert s.kind("Location.Latitude") == "number"
    assert s.kind("Address") == "string"
    assert s.kind("Attributes.plan") == "strings"
    assert s.kind("User.UserAttributes.plan") == "strings"
    assert s.kind("Metrics.visits") == "numbers"
    assert s.kind("Attributes.a.b") == "strings"  # a name may hold dots
    for name in (
        "Attributes",
        "Attributes.",
        "channeltype",
        "Location.Zip",
        "User.Attributes.x",
        "Demographic",
    ):
        assert not s.is_supported(name), name
    found = s.map_for("User.UserAttributes.plan")
    assert found is not None and found[0].prefix == "User.UserAttributes" and found[1] == "plan"
    assert s.containers == {
        "Demographic": (
            "AppVersion",
            "Locale",
            "Make",
            "Model",
            "ModelVersion",
            "Platform",
            "PlatformVersion",
            "Timezone",
        ),
        "Location": ("City", "Country", "Latitude", "Longitude", "PostalCode", "Region"),
        "User": ("UserAttributes", "UserId"),
    }
    assert s.top_level == (
        "Id",
        "Address",
        "ChannelType",
        "Attributes",
        "Demographic",
        "EffectiveDate",
        "EndpointStatus",
        "Location",
        "Metrics",
        "OptOut",
        "RequestId",
        "User",
    )
    assert s.field_names()[-3:] == [
        "Attributes.<name>",
        "Metrics.<name>",
        "User.UserAttributes.<name>",
    ]


def test_maps(s: Schema) -> None:
    attributes, metrics = s.maps["Attributes"], s.maps["Metrics"]
    assert s.maps["User.UserAttributes"] == replace(attributes, prefix="User.UserAttributes")
    assert attributes.repeatable and not metrics.repeatable
    assert (attributes.max_values, attributes.max_value_length) == (50, 100)
    assert (attributes.values_code, attributes.value_code) == (
        "ATTRIBUTE_VALUES_COUNT",
        "ATTRIBUTE_VALUE_LENGTH",
    )
    assert [(r.code, r.max_length) for r in attributes.name_rules] == [
        ("ATTRIBUTE_NAME_LENGTH", 50),
        ("ATTRIBUTE_NAME_CHARS", None),
    ]
    assert [r.code for r in metrics.name_rules] == ["ATTRIBUTE_NAME_LENGTH"]
    assert metrics.number is not None and metrics.number.code == "METRIC_TYPE"


def test_value_rules(s: Schema) -> None:
    rules = {(r.code, r.field): r for r in s.value_rules}
    assert set(rules) == {
        ("CHANNEL_TYPE", "ChannelType"),
        ("LOCALE", "Demographic.Locale"),
        ("TIMEZONE", "Demographic.Timezone"),
        ("EFFECTIVE_DATE", "EffectiveDate"),
        ("ENDPOINT_STATUS", "EndpointStatus"),
        ("COUNTRY_CODE", "Location.Country"),
        ("OPT_OUT", "OptOut"),
        ("ADDRESS_E164", "Address"),
        ("ADDRESS_EMAIL", "Address"),
    }
    assert rules["CHANNEL_TYPE", "ChannelType"].enum == (
        "PUSH",
        "GCM",
        "APNS",
        "APNS_SANDBOX",
        "APNS_VOIP",
        "APNS_VOIP_SANDBOX",
        "ADM",
        "SMS",
        "VOICE",
        "EMAIL",
        "BAIDU",
        "CUSTOM",
        "IN_APP",
    )
    e164 = rules["ADDRESS_E164", "Address"]
    assert e164.pattern == r"^\+[1-9][0-9]{0,14}$"
    assert (e164.when_field, e164.when_values) == ("ChannelType", {"SMS", "VOICE"})
    assert rules["ADDRESS_EMAIL", "Address"].when_values == {"EMAIL"}
    locale = rules["LOCALE", "Demographic.Locale"].values
    assert locale is not None and "en_US" in locale and "en-US" not in locale
    assert len(locale) == len(s.languages) * len(s.countries)
    tz = rules["TIMEZONE", "Demographic.Timezone"].values
    assert tz is not None
    assert {"America/Los_Angeles", "UTC", "US/Pacific-New", "Canada/East-Saskatchewan"} <= tz
    assert not {"localtime", "posixrules", "Factory", "PST"} & tz
    assert rules["EFFECTIVE_DATE", "EffectiveDate"].calendar_date
    assert s.required.code == "REQUIRED_MISSING"
    assert (s.required.unless, s.required.fields) == ("Id", ("ChannelType", "Address"))
    assert {k: (r.code, r.range_code, r.minimum, r.maximum) for k, r in s.number_rules.items()} == {
        "Location.Latitude": ("COORDINATE_TYPE", "COORDINATE_RANGE", -90, 90),
        "Location.Longitude": ("COORDINATE_TYPE", "COORDINATE_RANGE", -180, 180),
    }


def test_iso_data(s: Schema) -> None:
    assert len(s.countries) == 249 and {"US", "GB", "DE", "CN"} <= s.countries
    assert "UK" not in s.countries
    assert s.alpha3_to_alpha2["USA"] == "US" and s.alpha3_to_alpha2["CAN"] == "CA"
    assert s.reserved_to_alpha2["UK"] == "GB"
    assert s.country_names["US"] == "United States"
    assert len(s.languages) == 184 and {"en", "de", "zh"} <= s.languages


def test_arrow_json_schema(s: Schema) -> None:
    demographic = pa.struct([(name, pa.string()) for name in s.containers["Demographic"]])
    location = pa.struct(
        [
            ("City", pa.string()),
            ("Country", pa.string()),
            ("Latitude", pa.float64()),
            ("Longitude", pa.float64()),
            ("PostalCode", pa.string()),
            ("Region", pa.string()),
        ]
    )
    expected = pa.schema(
        [
            ("Id", pa.string()),
            ("Address", pa.string()),
            ("ChannelType", pa.string()),
            ("Attributes", pa.struct([])),
            ("Demographic", demographic),
            ("EffectiveDate", pa.string()),
            ("EndpointStatus", pa.string()),
            ("Location", location),
            ("Metrics", pa.struct([])),
            ("OptOut", pa.string()),
            ("RequestId", pa.string()),
            ("User", pa.struct([("UserAttributes", pa.struct([])), ("UserId", pa.string())])),
        ]
    )
    assert s.arrow_json_schema().equals(expected)


def test_endpoint_schema_is_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    document = json.loads((REPO / "schemas" / "endpoint.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    validator = jsonschema.Draft202012Validator(document)
    good = {
        "Id": "e1",
        "ChannelType": "SMS",
        "Address": "+12065550100",
        "Attributes": {"plan": ["gold"]},
        "Demographic": {"Locale": "en_US"},
        "Location": {"Country": "US", "Latitude": 47.6},
        "Metrics": {"visits": 3},
        "OptOut": "NONE",
        "User": {"UserId": "u1", "UserAttributes": {"tier": ["a", "b"]}},
    }
    assert list(validator.iter_errors(good)) == []
    bad = [
        {"ChannelType": "SMS", "Address": "+1 206"},
        {"Adress": "x"},
        {"ChannelType": "sms", "Address": "x"},
        {"Address": "x"},
        {"Id": "e", "Attributes": {"a": "x"}},
        {"Id": "e", "Attributes": {"a" * 51: ["x"]}},
        {"Id": "e", "Attributes": {"a": ["x" * 101]}},
        {"Id": "e", "Metrics": {"m": "1"}},
        {"Id": "e", "Attributes": {"a": ["x"] * 51}},
        {"Id": "e", "OptOut": "YES"},
    ]
    for obj in bad:
        assert list(validator.iter_errors(obj)), obj


def test_schema_dir_prefers_the_installed_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert schema_module.schema_dir() in (REPO / "schemas", REPO / "validator" / "_schemas")
    package = tmp_path / "validator"
    (package / "_schemas").mkdir(parents=True)
    (package / "_schemas" / "endpoint.schema.json").write_text("{}")
    monkeypatch.setattr(schema_module, "__file__", str(package / "schema.py"))
    assert schema_module.schema_dir() == package / "_schemas"
    shutil.rmtree(package / "_schemas")
    with pytest.raises(SchemaFileError, match="reinstall"):
        schema_module.schema_dir()


def _copy_schemas(tmp_path: Path) -> Path:
    folder = tmp_path / "schemas"
    shutil.copytree(REPO / "schemas", folder)
    return folder


def test_limits_and_schema_must_agree(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    assert Schema(folder).limits.attribute_name_length == 50
    limits = json.loads((folder / "limits.json").read_text())
    limits["attribute_name_length"]["value"] = 40
    (folder / "limits.json").write_text(json.dumps(limits))
    with pytest.raises(SchemaFileError, match=r"limits\.json"):
        Schema(folder)


def test_a_code_missing_from_rules_json_is_refused(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    rules = json.loads((folder / "rules.json").read_text())
    rules["rules"] = [r for r in rules["rules"] if r["code"] != "LOCALE"]
    (folder / "rules.json").write_text(json.dumps(rules))
    with pytest.raises(SchemaFileError, match="LOCALE"):
        Schema(folder)


def test_a_schema_edit_is_a_rule_edit(tmp_path: Path) -> None:
    """Rules are data: a new enum value in the schema is accepted without touching code."""
    folder = _copy_schemas(tmp_path)
    document = json.loads((folder / "endpoint.schema.json").read_text())
    document["properties"]["OptOut"]["enum"].insert(0, "SOME")
    (folder / "endpoint.schema.json").write_text(json.dumps(document))
    rule = next(r for r in Schema(folder).value_rules if r.code == "OPT_OUT")
    assert rule.enum == ("SOME", "ALL", "NONE")


def test_unreadable_file(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    (folder / "rules.json").write_text("{not json")
    with pytest.raises(SchemaFileError, match=r"rules\.json"):
        Schema(folder)


def test_readme_rule_table_matches_rules_json(s: Schema) -> None:
    readme = (REPO / "schemas" / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- rules:start -->\n", 1)[1].split("<!-- rules:end -->", 1)[0]
    assert table == s.rules_markdown()
    assert table.count("\n| `") == len(CODES)
