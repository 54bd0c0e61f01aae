"""Deterministic generator of realistic Amazon Pinpoint endpoint-import files (CSV and NDJSON).

    python benchmarks/generate.py --rows 5000000 --format csv --defect-rate 0.01 --seed 1 -o f.csv

or, from Python, ``generate(path, rows, fmt, defect_rate, seed)`` (returns the statistics that the
command prints on stderr).

The file is built in chunks of ``CHUNK`` rows, each column by pyarrow compute kernels over numpy
random draws (no Python loop per row), so memory stays bounded (~50 MB) whatever the row count and
5M rows (~1 GB of CSV) take seconds. Chunk *k* draws from ``numpy.random.default_rng([seed, k])``:
the same seed gives the same bytes on every run (with the same numpy/pyarrow major versions).

What a clean row looks like (every value is one the rules accept, no warning either):

- ``ChannelType``: EMAIL 45%, SMS 30%, GCM 10%, APNS 10%, VOICE 2%, CUSTOM 2%, IN_APP 1%.
- ``Address``: emails built from (ASCII-folded) names; E.164 numbers for SMS/VOICE in the national
  plan of the endpoint's country (+1, +44, +49, +41, +33, +55, +34, +52, +48, +81, +61, +91, +46,
  +354); 64-hex APNs tokens; 163-character FCM registration tokens; a webhook URL for CUSTOM; a
  UUID for IN_APP.
- ``Id``: a random UUID v4. ``User.UserId``: shared by 1-8 endpoints (mean ~2), never more than 15.
- ``User.UserAttributes.full_name``: ``"Last, First"`` with non-ASCII names, so a quoted CSV cell
  with a comma on every row.
- ``Demographic.Locale`` (``ll_CC``), ``Demographic.Timezone`` (IANA), and for push endpoints
  ``Demographic.Platform`` / ``Make`` / ``AppVersion``.
- ``Location.City`` (München, Zürich, São Paulo, Kraków, 東京 ...), ``Country`` (alpha-2),
  ``Latitude`` / ``Longitude`` (3 decimals near the city); ~15% of endpoints have no location.
- ``Attributes.interests`` with 0-2 values (45/35/20%) (in CSV the header is repeated: two
  ``Attributes.interests`` columns; in JSON an array), some values with a comma (``food, wine``);
  ``Attributes.company`` on ~30% of rows, some with commas and double quotes (CSV: doubled quotes).
- ``Metrics.purchases`` (integer), ``Metrics.lifetime_value`` (2 decimals, 70% of rows); in JSON
  numbers.
- ``OptOut`` NONE / ALL / empty; ``EffectiveDate`` ISO 8601 with milliseconds (40% of rows).

Defects: exactly ``floor(rows * defect_rate)`` rows carry one defect each (positions and kinds are
random but seeded). ``DEFECT_KINDS`` lists the kinds, the rule code the validator should report,
the severity and the relative weight. The structural ones are rare (weight 0.2 vs 1):

- ``bad_e164`` (ADDRESS_E164): an SMS address such as ``2065550182``, ``+1 206-555-0182``,
  ``(206) 555-0182``, ``+44 (0)20 7946 0958``, ``+004917012345`` or 17 digits.
- ``channel_lowercase`` / ``channel_unknown`` (CHANNEL_TYPE): ``sms``, ``email``... /
  ``WHATSAPP``, ``TEXT``, ``PUSH_NOTIFICATION``.
- ``missing_address`` (REQUIRED_MISSING): no ``Id`` and an empty ``Address`` (with an ``Id`` a
  missing Address is an update, which Pinpoint accepts).
- ``optout_yes`` (OPT_OUT): ``OptOut`` = ``YES`` / ``true`` / ``none``.
- ``metric_nonnumeric`` (METRIC_TYPE; from JSON a string, so FIELD_TYPE is as right):
  ``Metrics.purchases`` = ``n/a``, ``twelve``, ``12abc``.
- ``attr_too_long`` (ATTRIBUTE_VALUE_LENGTH): ``Attributes.company`` of 101-160 characters.
- ``country_alpha3`` (COUNTRY_CODE, warning): ``Location.Country`` = the alpha-3 code (DEU, USA).
- ``bad_locale`` (LOCALE, warning): ``en-US``, ``english``, ``EN_us``, ``de``, ``pt-BR``.
- ``csv_missing_field`` (CSV_ROW_WIDTH, CSV only): the row lacks its last field.
- ``json_syntax`` (JSON_SYNTAX, JSON only): trailing comma, missing closing brace, or a
  single-quoted key.
- ``json_attr_string`` (FIELD_TYPE, JSON only): ``"interests": "sports"`` instead of an array.

Sprinkled structural defects (``--structural-rate``, default 0; ``SPRINKLE_KINDS``): exactly
``floor(rows * structural_rate)`` further rows, none of them carrying another defect, are broken
the way real exports break. Real files carry about 90 broken quotes per million CSV rows
(``--structural-rate 0.00009``) and 0.1 % invalid JSON lines (``0.001``):

- ``csv_broken_quote`` (CSV_QUOTE): ``Attributes.company`` opens a quote it never closes
  (``"Acme Corp``, so a plain CSV parser reads on into the next lines) or holds a stray one
  (``Initech "Labs``).
- ``json_bad_line`` (JSON_SYNTAX): the record cut short, a trailing comma or single quotes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHUNK = 65536

# --------------------------------------------------------------------------------------------
# Pools
# --------------------------------------------------------------------------------------------

CHANNELS = ["EMAIL", "SMS", "GCM", "APNS", "VOICE", "CUSTOM", "IN_APP"]
CHANNEL_P = [0.45, 0.30, 0.10, 0.10, 0.02, 0.02, 0.01]
CH_EMAIL, CH_SMS, CH_GCM, CH_APNS, CH_VOICE, CH_CUSTOM, CH_INAPP = range(7)

# city, country alpha-2, alpha-3, lat, lon, IANA zone, locale, dial prefix, weight
# (the national number ranges are in PHONE_RANGE, by country)
CITIES = [
    ("New York", "US", "USA", 40.7128, -74.006, "America/New_York", "en_US", "+1212", 10),
    ("Los Angeles", "US", "USA", 34.0522, -118.2437, "America/Los_Angeles", "en_US", "+1310", 8),
    ("Chicago", "US", "USA", 41.8781, -87.6298, "America/Chicago", "en_US", "+1312", 6),
    ("Seattle", "US", "USA", 47.6062, -122.3321, "America/Los_Angeles", "en_US", "+1206", 5),
    ("Denver", "US", "USA", 39.7392, -104.9903, "America/Denver", "en_US", "+1303", 3),
    ("Austin", "US", "USA", 30.2672, -97.7431, "America/Chicago", "es_US", "+1512", 3),
    ("San José", "US", "USA", 37.3382, -121.8863, "America/Los_Angeles", "en_US", "+1408", 2),
    ("Honolulu", "US", "USA", 21.3069, -157.8583, "Pacific/Honolulu", "en_US", "+1808", 1),
    ("Toronto", "CA", "CAN", 43.6532, -79.3832, "America/Toronto", "en_CA", "+1416", 3),
    ("Montréal", "CA", "CAN", 45.5019, -73.5674, "America/Toronto", "fr_CA", "+1514", 2),
    ("London", "GB", "GBR", 51.5072, -0.1276, "Europe/London", "en_GB", "+44", 6),
    ("Manchester", "GB", "GBR", 53.4808, -2.2426, "Europe/London", "en_GB", "+44", 2),
    ("München", "DE", "DEU", 48.1351, 11.582, "Europe/Berlin", "de_DE", "+49", 4),
    ("Berlin", "DE", "DEU", 52.52, 13.405, "Europe/Berlin", "de_DE", "+49", 4),
    ("Köln", "DE", "DEU", 50.9375, 6.9603, "Europe/Berlin", "de_DE", "+49", 2),
    ("Düsseldorf", "DE", "DEU", 51.2277, 6.7735, "Europe/Berlin", "de_DE", "+49", 1),
    ("Zürich", "CH", "CHE", 47.3769, 8.5417, "Europe/Zurich", "de_CH", "+41", 2),
    ("Genève", "CH", "CHE", 46.2044, 6.1432, "Europe/Zurich", "fr_CH", "+41", 1),
    ("Paris", "FR", "FRA", 48.8566, 2.3522, "Europe/Paris", "fr_FR", "+33", 4),
    ("Besançon", "FR", "FRA", 47.2378, 6.0241, "Europe/Paris", "fr_FR", "+33", 1),
    ("São Paulo", "BR", "BRA", -23.5505, -46.6333, "America/Sao_Paulo", "pt_BR", "+5511", 4),
    ("Madrid", "ES", "ESP", 40.4168, -3.7038, "Europe/Madrid", "es_ES", "+34", 2),
    ("A Coruña", "ES", "ESP", 43.3623, -8.4115, "Europe/Madrid", "es_ES", "+34", 1),
    (
        "Ciudad de México",
        "MX",
        "MEX",
        19.4326,
        -99.1332,
        "America/Mexico_City",
        "es_MX",
        "+5255",
        3,
    ),
    ("Kraków", "PL", "POL", 50.0647, 19.945, "Europe/Warsaw", "pl_PL", "+48", 2),
    ("東京", "JP", "JPN", 35.6762, 139.6503, "Asia/Tokyo", "ja_JP", "+81", 3),
    ("Sydney", "AU", "AUS", -33.8688, 151.2093, "Australia/Sydney", "en_AU", "+61", 2),
    ("Mumbai", "IN", "IND", 19.076, 72.8777, "Asia/Kolkata", "en_IN", "+91", 3),
    ("Göteborg", "SE", "SWE", 57.7089, 11.9746, "Europe/Stockholm", "sv_SE", "+46", 1),
    ("Reykjavík", "IS", "ISL", 64.1466, -21.9426, "Atlantic/Reykjavik", "is_IS", "+354", 1),
]
PHONE_RANGE = {
    "US": (2_000_000, 9_999_999),
    "CA": (2_000_000, 9_999_999),
    "GB": (7_400_000_000, 7_999_999_999),
    "DE": (1_510_000_000, 1_799_999_999),
    "CH": (750_000_000, 799_999_999),
    "FR": (600_000_000, 799_999_999),
    "BR": (900_000_000, 999_999_999),
    "ES": (600_000_000, 699_999_999),
    "MX": (10_000_000, 99_999_999),
    "PL": (500_000_000, 899_999_999),
    "JP": (7_000_000_000, 9_099_999_999),
    "AU": (400_000_000, 499_999_999),
    "IN": (7_000_000_000, 9_999_999_999),
    "SE": (700_000_000, 799_999_999),
    "IS": (6_000_000, 8_999_999),
}

# (display, ASCII fold for emails)
FIRST = [
    ("James", "james"),
    ("Mary", "mary"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Jürgen", "juergen"),
    ("Søren", "soeren"),
    ("François", "francois"),
    ("Łukasz", "lukasz"),
    ("Małgorzata", "malgorzata"),
    ("Björn", "bjorn"),
    ("Chloé", "chloe"),
    ("Amélie", "amelie"),
    ("Renée", "renee"),
    ("Ana", "ana"),
    ("Priya", "priya"),
    ("Wei", "wei"),
    ("Yuki", "yuki"),
    ("Olivia", "olivia"),
    ("Liam", "liam"),
    ("Noah", "noah"),
    ("Emma", "emma"),
    ("Sofía", "sofia"),
    ("Mateo", "mateo"),
    ("Hanna", "hanna"),
    ("Jón", "jon"),
    ("Siobhán", "siobhan"),
    ("Dmitri", "dmitri"),
    ("Aoife", "aoife"),
    ("Fatima", "fatima"),
    ("Oliver", "oliver"),
    ("Élodie", "elodie"),
    ("Ingrid", "ingrid"),
]
LAST = [
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Müller", "mueller"),
    ("García", "garcia"),
    ("O'Brien", "obrien"),
    ("Núñez", "nunez"),
    ("Dubois", "dubois"),
    ("Kowalski", "kowalski"),
    ("Tanaka", "tanaka"),
    ("山田", "yamada"),
    ("Schröder", "schroeder"),
    ("Åberg", "aberg"),
    ("Williams", "williams"),
    ("Brown", "brown"),
    ("Nguyen", "nguyen"),
    ("Silva", "silva"),
    ("Ólafsson", "olafsson"),
    ("Rossi", "rossi"),
    ("Patel", "patel"),
    ("Lefèvre", "lefevre"),
    ("Jensen", "jensen"),
    ("Fernández", "fernandez"),
    ("Wójcik", "wojcik"),
    ("Kim", "kim"),
]
DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "web.de",
    "gmx.ch",
    "orange.fr",
    "example.com",
    "proton.me",
    "mail.example.org",
    "uol.com.br",
]
DOMAIN_P = [0.34, 0.1, 0.12, 0.07, 0.08, 0.05, 0.03, 0.04, 0.06, 0.03, 0.04, 0.04]
EMAIL_SEP = [".", "_", ""]

INTERESTS = [
    "sports",
    "music",
    "travel",
    "cooking",
    "fashion",
    "technology",
    "gaming",
    "fitness",
    "books",
    "film",
    "arts & crafts",
    "food, wine",
    "outdoors",
    "photography",
]
# (plain value) - CSV and JSON escapes are derived
COMPANIES = [
    "Acme, Inc.",
    "Müller & Söhne GmbH",
    'Café "Zum Löwen"',
    'The "Best" Shop, Ltd.',
    "Initech",
    "Globex Corporation",
    "Umbrella Corp",
    "Société Générale",
    "Zürcher Kantonalbank",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Companhia Brasileira de Distribuição",
    "株式会社サンプル",
]
MAKES_ANDROID = ["samsung", "google", "xiaomi", "oneplus", "motorola"]
APP_VERSIONS = ["4.12.1", "4.12.0", "4.11.3", "4.10.0", "5.0.0-beta.2"]

B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
HEX = b"0123456789abcdef"

# kind: (rule code, severity, weight, formats)
DEFECT_KINDS: dict[str, tuple[str, str, float, tuple[str, ...]]] = {
    "bad_e164": ("ADDRESS_E164", "error", 1.0, ("csv", "json")),
    "channel_lowercase": ("CHANNEL_TYPE", "error", 0.5, ("csv", "json")),
    "channel_unknown": ("CHANNEL_TYPE", "error", 0.5, ("csv", "json")),
    "missing_address": ("REQUIRED_MISSING", "error", 1.0, ("csv", "json")),
    "optout_yes": ("OPT_OUT", "error", 1.0, ("csv", "json")),
    "metric_nonnumeric": ("METRIC_TYPE", "error", 1.0, ("csv", "json")),
    "attr_too_long": ("ATTRIBUTE_VALUE_LENGTH", "error", 1.0, ("csv", "json")),
    "country_alpha3": ("COUNTRY_CODE", "warning", 1.0, ("csv", "json")),
    "bad_locale": ("LOCALE", "warning", 1.0, ("csv", "json")),
    "csv_missing_field": ("CSV_ROW_WIDTH", "error", 0.2, ("csv",)),
    "json_syntax": ("JSON_SYNTAX", "error", 0.2, ("json",)),
    "json_attr_string": ("FIELD_TYPE", "error", 0.2, ("json",)),
}
STRUCTURAL = {"csv_missing_field", "json_syntax", "json_attr_string"}

# Sprinkled structural defects, at their own rate (``structural_rate``), on rows that carry no
# other defect, drawn from their own random stream (so a rate of 0 leaves the bytes as before):
# kind: (rule code, severity, format)
SPRINKLE_KINDS: dict[str, tuple[str, str, str]] = {
    "csv_broken_quote": ("CSV_QUOTE", "error", "csv"),
    "json_bad_line": ("JSON_SYNTAX", "error", "json"),
}
# An unbalanced quote opening Attributes.company (it swallows the line break: the kind a
# hand-edited export gets), or a stray quote inside an unquoted value. Both cost their line.
BROKEN_QUOTE = ['"Acme Corp', '"Globex, Inc', 'Initech "Labs', 'Umbrella 5" Ltd']
# Lines that are not JSON: cut short (a truncated write), a trailing comma, single quotes,
# garbage; every one still ends with its newline.
BAD_JSON_TAIL = ['"Metrics":{"purchases":3', '"Metrics":{"purchases":3},}', "'Metrics':{}}"]

BAD_E164 = [
    "2065550182",
    "+1 206-555-0182",
    "(206) 555-0182",
    "+44 (0)20 7946 0958",
    "+004917012345",
    "+12065550182999999",
    "+1.206.555.0182",
    "206/555 0182",
]
BAD_CHANNEL = ["WHATSAPP", "TEXT", "PUSH_NOTIFICATION", "E-MAIL", "FCM"]
BAD_OPTOUT = ["YES", "true", "none", "Y"]
BAD_METRIC = ["n/a", "twelve", "12abc", "1,5", "-"]
BAD_LOCALE = ["en-US", "english", "EN_us", "de", "pt-BR"]
LONG_TEXT = (
    "Customer since 2014; prefers weekend delivery; gift wrapping requested on every order; "
    "notes migrated from the legacy CRM export by the data team in batch 7 of 12"
)

CSV_HEADER = [
    "Id",
    "ChannelType",
    "Address",
    "OptOut",
    "EffectiveDate",
    "User.UserId",
    "User.UserAttributes.full_name",
    "Demographic.Locale",
    "Demographic.Timezone",
    "Demographic.Platform",
    "Demographic.Make",
    "Demographic.AppVersion",
    "Location.City",
    "Location.Country",
    "Location.Latitude",
    "Location.Longitude",
    "Attributes.interests",
    "Attributes.interests",
    "Attributes.company",
    "Metrics.purchases",
    "Metrics.lifetime_value",
]


def _csv_cell(s: str) -> str:
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def _json_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _arr(values) -> pa.Array:
    return pa.array(values, type=pa.string())


class _Pools:
    """Pyarrow arrays of the pools, escaped for one format."""

    def __init__(self, fmt: str) -> None:
        esc = _csv_cell if fmt == "csv" else _json_str
        self.fmt = fmt
        self.channel = _arr(CHANNELS)
        self.channel_lower = _arr([c.lower() for c in CHANNELS])
        self.city = _arr([esc(c[0]) for c in CITIES])
        self.country = _arr([c[1] for c in CITIES])
        self.country3 = _arr([c[2] for c in CITIES])
        self.lat_e4 = np.array([round(c[3] * 10000) for c in CITIES], dtype=np.int64)
        self.lon_e4 = np.array([round(c[4] * 10000) for c in CITIES], dtype=np.int64)
        self.tz = _arr([c[5] for c in CITIES])
        self.locale = _arr([c[6] for c in CITIES])
        self.phone_prefix = _arr([c[7] for c in CITIES])
        self.phone_lo = np.array([PHONE_RANGE[c[1]][0] for c in CITIES], dtype=np.int64)
        self.phone_hi = np.array([PHONE_RANGE[c[1]][1] for c in CITIES], dtype=np.int64)
        w = np.array([c[8] for c in CITIES], dtype=float)
        self.city_p = w / w.sum()
        if fmt == "csv":
            self.full_name = None  # built per row: "Last, First" quoted
        self.first = _arr([f[0] for f in FIRST])
        self.first_ascii = _arr([f[1] for f in FIRST])
        self.last = _arr([f[0].replace('"', '""') if fmt == "csv" else f[0] for f in LAST])
        self.last_ascii = _arr([f[1] for f in LAST])
        self.domain = _arr(DOMAINS)
        self.email_sep = _arr(EMAIL_SEP)
        self.interest = _arr([esc(v) for v in INTERESTS])
        self.company = _arr([esc(v) for v in COMPANIES])
        self.make = _arr(MAKES_ANDROID)
        self.app_version = _arr(APP_VERSIONS)
        self.bad_e164 = _arr(BAD_E164)
        self.bad_channel = _arr(BAD_CHANNEL)
        self.bad_optout = _arr(BAD_OPTOUT)
        self.bad_metric = _arr([esc(v) for v in BAD_METRIC])
        self.bad_locale = _arr(BAD_LOCALE)
        self.long_text = _arr([esc(LONG_TEXT[:k]) for k in range(101, 161, 7)])
        self.broken_quote = _arr(BROKEN_QUOTE)


# --------------------------------------------------------------------------------------------
# Vectorised helpers
# --------------------------------------------------------------------------------------------


def _take(pool: pa.Array, idx: np.ndarray) -> pa.Array:
    return pool.take(pa.array(idx, type=pa.int32()))


def _pick(pool: pa.Array, rng: np.random.Generator, k: int | np.ndarray) -> pa.Array:
    """k uniform draws from pool (k: a count, or a mask whose True count is used)."""
    if isinstance(k, np.ndarray):
        k = int(k.sum())
    return _take(pool, rng.integers(0, len(pool), k))


def _fixed_width(codes: np.ndarray) -> pa.Array:
    """A (n, width) uint8 array of ASCII codes -> StringArray of n fixed-width strings."""
    n, width = codes.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(codes, dtype=np.uint8)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _random_chars(rng: np.random.Generator, n: int, width: int, alphabet: bytes) -> np.ndarray:
    lut = np.frombuffer(alphabet, dtype=np.uint8)
    return lut[rng.integers(0, len(lut), size=(n, width), dtype=np.uint8)]


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    codes = np.empty((n, 36), dtype=np.uint8)
    hexd = _random_chars(rng, n, 32, HEX)
    codes[:, 0:8] = hexd[:, 0:8]
    codes[:, 9:13] = hexd[:, 8:12]
    codes[:, 14:18] = hexd[:, 12:16]
    codes[:, 19:23] = hexd[:, 16:20]
    codes[:, 24:36] = hexd[:, 20:32]
    codes[:, [8, 13, 18, 23]] = ord("-")
    codes[:, 14] = ord("4")
    codes[:, 19] = np.frombuffer(b"89ab", dtype=np.uint8)[rng.integers(0, 4, n)]
    return _fixed_width(codes)


def _fcm_tokens(rng: np.random.Generator, n: int) -> pa.Array:
    codes = np.empty((n, 163), dtype=np.uint8)
    codes[:, :22] = _random_chars(rng, n, 22, B64URL)
    codes[:, 22:29] = np.frombuffer(b":APA91b", dtype=np.uint8)
    codes[:, 29:] = _random_chars(rng, n, 134, B64URL)
    return _fixed_width(codes)


def _ints(v: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(v, type=pa.int64()), pa.string())


def _decimal(v: np.ndarray, digits: int) -> pa.Array:
    """Integers scaled by 10**digits -> decimal text ('-23.5505')."""
    neg = pa.array(v < 0)
    a = np.abs(v)
    scale = 10**digits
    frac = pc.utf8_lpad(_ints(a % scale), digits, "0")
    return pc.binary_join_element_wise(pc.if_else(neg, "-", ""), _ints(a // scale), ".", frac, "")


def _join(*parts, sep: str = "") -> pa.Array:
    """Concatenate element-wise; a null part counts as "" (its separator stays).

    (``null_handling="skip"`` is not used: pyarrow 26 returns a short array when trailing rows
    are null in every array argument.)
    """
    return pc.binary_join_element_wise(*parts, sep, null_handling="replace", null_replacement="")


def _frag(mask_absent: np.ndarray | pa.Array, values: pa.Array) -> pa.Array:
    """values, or null where absent."""
    return pc.if_else(
        mask_absent if isinstance(mask_absent, pa.Array) else pa.array(mask_absent),
        pa.scalar(None, pa.string()),
        values,
    )


def _null_where(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """values with nulls where mask is True."""
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), values)


def _put(values: pa.Array, mask: np.ndarray, replacements: pa.Array) -> pa.Array:
    if not mask.any():
        return values
    return pc.replace_with_mask(values, pa.array(mask), replacements)


def _n_defects(upto: int, rate_ppb: int) -> int:
    return upto * rate_ppb // 1_000_000_000


# --------------------------------------------------------------------------------------------
# One chunk
# --------------------------------------------------------------------------------------------


def _chunk(
    pools: _Pools,
    rng: np.random.Generator,
    chunk_index: int,
    n: int,
    n_defects: int,
    kinds: list[str],
    kind_p: np.ndarray,
    n_sprinkle: int = 0,
    sprinkle_rng: np.random.Generator | None = None,
) -> tuple[pa.Array, Counter]:
    fmt = pools.fmt

    # users: groups of 1-8 consecutive endpoints share a UserId, a name, a city
    sizes = rng.choice(np.arange(1, 9), size=n, p=[0.4, 0.28, 0.14, 0.08, 0.04, 0.03, 0.02, 0.01])
    ends = np.cumsum(sizes)
    n_users = int(np.searchsorted(ends, n)) + 1
    sizes = sizes[:n_users]
    sizes[-1] -= ends[n_users - 1] - n
    user_of_row = np.repeat(np.arange(n_users), sizes)
    gid = (chunk_index * CHUNK + 1 + np.arange(n_users, dtype=np.uint64)).astype(np.uint64)
    scrambled = (gid * np.uint64(387_420_489) + np.uint64(12_345)) % np.uint64(10**9)  # a bijection
    user_id_u = _join("u", pc.utf8_lpad(_ints(scrambled.astype(np.int64)), 9, "0"))
    city_u = rng.choice(len(CITIES), size=n_users, p=pools.city_p)
    first_u = rng.integers(0, len(FIRST), n_users)
    last_u = rng.integers(0, len(LAST), n_users)
    user_id = _take(user_id_u, user_of_row)
    city = city_u[user_of_row]
    first = first_u[user_of_row]
    last = last_u[user_of_row]

    channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_P)

    # defects: which rows, which kind
    defect_rows = np.sort(rng.choice(n, size=n_defects, replace=False))
    defect_kind = rng.choice(len(kinds), size=n_defects, p=kind_p)
    kind_of_row = np.full(n, -1, dtype=np.int64)
    kind_of_row[defect_rows] = defect_kind
    uniq, cnt = np.unique(defect_kind, return_counts=True)
    counts = Counter({kinds[k]: int(c) for k, c in zip(uniq, cnt, strict=True)})

    def is_kind(name: str) -> np.ndarray:
        return kind_of_row == kinds.index(name) if name in kinds else np.zeros(n, dtype=bool)

    # sprinkled structural defects: rows with no other defect, from their own stream
    sprinkled = np.zeros(n, dtype=bool)
    if n_sprinkle and sprinkle_rng is not None:
        free = np.flatnonzero(kind_of_row < 0)
        sprinkled[sprinkle_rng.choice(free, size=min(n_sprinkle, len(free)), replace=False)] = True
        counts[f"{fmt}_{'broken_quote' if fmt == 'csv' else 'bad_line'}"] += int(sprinkled.sum())

    # a bad E.164 is only bad on an SMS endpoint
    m_e164 = is_kind("bad_e164")
    channel[m_e164] = CH_SMS

    # --- Address ------------------------------------------------------------------------
    idx_email = np.flatnonzero(channel == CH_EMAIL)
    idx_phone = np.flatnonzero((channel == CH_SMS) | (channel == CH_VOICE))
    idx_gcm = np.flatnonzero(channel == CH_GCM)
    idx_apns = np.flatnonzero(channel == CH_APNS)
    idx_custom = np.flatnonzero(channel == CH_CUSTOM)
    idx_inapp = np.flatnonzero(channel == CH_INAPP)

    ne = len(idx_email)
    digits = rng.integers(0, 100, ne)
    emails = _join(
        _take(pools.first_ascii, first[idx_email]),
        _pick(pools.email_sep, rng, ne),
        _take(pools.last_ascii, last[idx_email]),
        _null_where(_ints(digits), digits < 60),
        "@",
        _take(pools.domain, rng.choice(len(DOMAINS), size=ne, p=DOMAIN_P)),
    )
    pc_city = city[idx_phone]
    lo, hi = pools.phone_lo[pc_city], pools.phone_hi[pc_city]
    national = lo + (rng.random(len(idx_phone)) * (hi - lo + 1)).astype(np.int64)
    phones = _join(_take(pools.phone_prefix, pc_city), _ints(national))
    fcm = _fcm_tokens(rng, len(idx_gcm))
    apns = _fixed_width(_random_chars(rng, len(idx_apns), 64, HEX))
    custom = _join(
        "https://hooks.example.com/pinpoint/",
        _fixed_width(_random_chars(rng, len(idx_custom), 16, HEX)),
    )
    inapp = _uuids(rng, len(idx_inapp))

    order = np.concatenate([idx_email, idx_phone, idx_gcm, idx_apns, idx_custom, idx_inapp])
    pieces = pa.concat_arrays([emails, phones, fcm, apns, custom, inapp])
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    address = _take(pieces, inverse)
    address = _put(address, m_e164, _pick(pools.bad_e164, rng, m_e164))

    # --- ChannelType ---------------------------------------------------------------------
    channel_type = _take(pools.channel, channel)
    m = is_kind("channel_lowercase")
    channel_type = _put(channel_type, m, _take(pools.channel_lower, channel[m]))
    m = is_kind("channel_unknown")
    channel_type = _put(channel_type, m, _pick(pools.bad_channel, rng, m))

    # --- Id, missing address -------------------------------------------------------------
    endpoint_id = _uuids(rng, n)
    m_missing = is_kind("missing_address")
    endpoint_id = _null_where(endpoint_id, m_missing)
    address = _null_where(address, m_missing)

    # --- OptOut, EffectiveDate -----------------------------------------------------------
    u = rng.random(n)
    optout = _null_where(_take(_arr(["NONE", "ALL"]), (u > 0.92).astype(np.int64)), u > 0.97)
    m = is_kind("optout_yes")
    optout = _put(optout, m, _pick(pools.bad_optout, rng, m))
    base_ms = 1_704_067_200_000  # 2024-01-01T00:00:00Z
    ms = base_ms + rng.integers(0, 2 * 365 * 86_400_000, n)
    iso = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").astype("S23")
    codes = np.empty((n, 24), dtype=np.uint8)
    codes[:, :23] = iso.view(np.uint8).reshape(n, 23)
    codes[:, 23] = ord("Z")
    eff = _null_where(_fixed_width(codes), rng.random(n) > 0.4)

    # --- Demographic ---------------------------------------------------------------------
    locale = _take(pools.locale, city)
    m = is_kind("bad_locale")
    locale = _put(locale, m, _pick(pools.bad_locale, rng, m))
    tz = _take(pools.tz, city)
    is_gcm, is_apns = channel == CH_GCM, channel == CH_APNS
    push = is_gcm | is_apns
    platform = _null_where(pc.if_else(pa.array(is_gcm), "android", "ios"), ~push)
    make = pc.if_else(pa.array(is_gcm), _pick(pools.make, rng, n), "apple")
    make = _null_where(make, ~push)
    app_version = _null_where(_pick(pools.app_version, rng, n), ~push)

    # --- Location ------------------------------------------------------------------------
    no_loc = rng.random(n) < 0.15
    m = is_kind("country_alpha3")
    no_loc &= ~m
    loc_city = _take(pools.city, city)
    country = _put(_take(pools.country, city), m, _take(pools.country3, city[m]))
    lat = _decimal((pools.lat_e4[city] + rng.integers(-400, 401, n)) // 10, 3)
    lon = _decimal((pools.lon_e4[city] + rng.integers(-400, 401, n)) // 10, 3)

    # --- Attributes, Metrics, UserAttributes ---------------------------------------------
    n_int = rng.choice(3, size=n, p=[0.45, 0.35, 0.2])
    i1 = _null_where(_pick(pools.interest, rng, n), n_int < 1)
    i2 = _null_where(_pick(pools.interest, rng, n), n_int < 2)
    has_company = rng.random(n) < 0.3
    m_long = is_kind("attr_too_long")
    has_company |= m_long
    company = _null_where(_pick(pools.company, rng, n), ~has_company)
    company = _put(company, m_long, _pick(pools.long_text, rng, m_long))
    if fmt == "csv" and sprinkled.any():
        assert sprinkle_rng is not None
        company = _put(company, sprinkled, _pick(pools.broken_quote, sprinkle_rng, sprinkled))
    purchases = _ints(np.minimum(rng.geometric(0.25, n) - 1, 250))
    m = is_kind("metric_nonnumeric")
    purchases = _put(purchases, m, _pick(pools.bad_metric, rng, m))
    ltv = _null_where(_decimal(rng.integers(0, 150_000, n), 2), rng.random(n) < 0.3)
    first_s, last_s = _take(pools.first, first), _take(pools.last, last)

    if fmt == "csv":
        full_name = _join('"', last_s, ", ", first_s, '"')
        # the last field carries its own comma, so a row can lack it (csv_missing_field)
        last_field = _frag(is_kind("csv_missing_field"), _join(",", ltv))
        loc = [_null_where(a, no_loc) for a in (loc_city, country, lat, lon)]
        cols = [
            endpoint_id,
            channel_type,
            address,
            optout,
            eff,
            user_id,
            full_name,
            locale,
            tz,
            platform,
            make,
            app_version,
            *loc,
            i1,
            i2,
            company,
            purchases,
        ]
        lines = _join(_join(*cols, sep=","), last_field, "\n")
        return lines, counts

    # ---- JSON: one fragment per key, null = absent; the first one always present ----------
    def kv(key: str, value: pa.Array, lead: str = ",") -> pa.Array:
        """',"key":"value"', or null (absent) where value is null."""
        frag = _join(f'{lead}"{key}":"', value, '"')
        return frag if value.null_count == 0 else _frag(pc.is_null(value), frag)

    kind_syntax = is_kind("json_syntax")
    syntax_variant = rng.integers(0, 3, n)
    open_ = pc.if_else(
        pa.array(kind_syntax & (syntax_variant == 2)), "{'ChannelType':", '{"ChannelType":'
    )
    close = pc.if_else(pa.array(kind_syntax & (syntax_variant == 0)), ",}\n", "}\n")
    close = pc.if_else(pa.array(kind_syntax & (syntax_variant == 1)), "\n", close)

    demo_extra = _join(kv("Platform", platform), kv("Make", make), kv("AppVersion", app_version))
    demographic = _join(
        ',"Demographic":{', kv("Locale", locale, lead=""), kv("Timezone", tz), demo_extra, "}"
    )
    location = _join(
        ',"Location":{"City":',
        loc_city,
        kv("Country", country),
        ',"Latitude":',
        lat,
        ',"Longitude":',
        lon,
        "}",
    )
    location = _frag(no_loc, location)

    i2_f = _frag(n_int < 2, _join(",", i2))
    interests = _frag(n_int == 0, _join('"interests":[', i1, i2_f, "]"))
    m_attr_str = is_kind("json_attr_string")
    interests = _put(
        interests,
        m_attr_str,
        _join(
            '"interests":',
            _take(pools.interest, rng.integers(0, len(INTERESTS), int(m_attr_str.sum()))),
        ),
    )
    has_interests = (n_int > 0) | m_attr_str
    company_f = _frag(
        ~has_company,
        _join(pc.if_else(pa.array(has_interests), ",", ""), '"company":[', company, "]"),
    )
    attributes = _frag(
        ~(has_interests | has_company), _join(',"Attributes":{', interests, company_f, "}")
    )
    ltv_f = _frag(pc.is_null(ltv), _join(',"lifetime_value":', ltv))
    metrics = _join(',"Metrics":{"purchases":', purchases, ltv_f, "}")
    if sprinkled.any():
        assert sprinkle_rng is not None
        tails = _pick(_arr(BAD_JSON_TAIL), sprinkle_rng, sprinkled)
        metrics = _put(metrics, sprinkled, _join(",", tails))
    user = _join(
        ',"User":{"UserId":"',
        user_id,
        '","UserAttributes":{"full_name":["',
        last_s,
        ", ",
        first_s,
        '"]}}',
    )
    lines = _join(
        open_,
        '"',
        channel_type,
        '"',
        kv("Address", address),
        kv("Id", endpoint_id),
        kv("OptOut", optout),
        kv("EffectiveDate", eff),
        user,
        demographic,
        location,
        attributes,
        metrics,
        close,
    )
    return lines, counts


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _kind_info(kind: str) -> tuple[str, str]:
    """(rule code, severity) of a defect kind, rule or sprinkled."""
    if kind in SPRINKLE_KINDS:
        return SPRINKLE_KINDS[kind][:2]
    return DEFECT_KINDS[kind][:2]


def generate(
    path: str | Path,
    rows: int,
    fmt: str = "csv",
    defect_rate: float = 0.01,
    seed: int = 1,
    structural_rate: float = 0.0,
) -> dict:
    """Write ``rows`` endpoint records to ``path``; return rows, bytes, sha256 and defects by kind.

    ``structural_rate`` sprinkles broken quotes (CSV) or invalid lines (JSON) on that share of
    further rows (see ``SPRINKLE_KINDS``).

    ``defects`` counts rows by defect kind; ``expected`` counts them by rule code and severity
    (what a validator should report); ``parseable_rows`` is rows minus structural defects that a
    plain parser rejects (csv_missing_field, json_syntax).
    """
    fmt = fmt.lower()
    if fmt not in ("csv", "json"):
        raise ValueError(f"format must be csv or json, not {fmt!r}")
    if not 0 <= defect_rate <= 1:
        raise ValueError("defect_rate must be between 0 and 1")
    if not 0 <= structural_rate <= 1 or defect_rate + structural_rate > 1:
        raise ValueError("structural_rate must be between 0 and 1 - defect_rate")
    pools = _Pools(fmt)
    kinds = [k for k, v in DEFECT_KINDS.items() if fmt in v[3]]
    kind_p = np.array([DEFECT_KINDS[k][2] for k in kinds])
    kind_p /= kind_p.sum()
    rate_ppb = round(defect_rate * 1_000_000_000)
    sprinkle_ppb = round(structural_rate * 1_000_000_000)
    counts: Counter = Counter()
    digest = hashlib.sha256()
    written = 0
    with open(path, "wb", buffering=0) as f:
        if fmt == "csv":
            head = (",".join(CSV_HEADER) + "\n").encode()
            f.write(head)
            digest.update(head)
            written += len(head)
        for k, start in enumerate(range(0, rows, CHUNK)):
            n = min(CHUNK, rows - start)
            nd = _n_defects(start + n, rate_ppb) - _n_defects(start, rate_ppb)
            rng = np.random.default_rng([seed, k])
            ns = _n_defects(start + n, sprinkle_ppb) - _n_defects(start, sprinkle_ppb)
            srng = np.random.default_rng([seed, k, 1]) if ns else None
            lines, c = _chunk(pools, rng, k, n, nd, kinds, kind_p, ns, srng)
            counts.update(c)
            offsets = np.frombuffer(
                lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
            )
            data = memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]
            f.write(data)
            digest.update(data)
            written += len(data)
    expected: Counter = Counter()
    for kind, c in counts.items():
        code, severity = _kind_info(kind)
        expected[f"{severity}:{code}"] += c
    return {
        "path": str(path),
        "format": fmt,
        "rows": rows,
        "bytes": written,
        "sha256": digest.hexdigest(),
        "seed": seed,
        "defect_rate": defect_rate,
        "structural_rate": structural_rate,
        "defect_rows": sum(counts.values()),
        "defects": dict(sorted(counts.items())),
        "expected": dict(sorted(expected.items())),
        "error_rows": sum(c for k, c in counts.items() if _kind_info(k)[1] == "error"),
        "warning_rows": sum(c for k, c in counts.items() if _kind_info(k)[1] == "warning"),
        "parseable_rows": rows
        - counts["csv_missing_field"]
        - counts["json_syntax"]
        - counts["json_bad_line"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--format", choices=["csv", "json"], default="csv")
    ap.add_argument("--defect-rate", type=float, default=0.01)
    ap.add_argument(
        "--structural-rate",
        type=float,
        default=0.0,
        help="share of further rows with a broken quote (CSV; real files: 0.00009) or an "
        "invalid line (JSON; real files: 0.001)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--stats", metavar="PATH", help="also write the statistics as JSON to PATH")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    stats = generate(
        args.output, args.rows, args.format, args.defect_rate, args.seed, args.structural_rate
    )
    dt = time.perf_counter() - t0
    stats["generate_seconds"] = round(dt, 3)
    if args.stats:
        Path(args.stats).write_text(json.dumps(stats, indent=1))
    mb = stats["bytes"] / 1e6
    print(
        f"{stats['path']}: {stats['rows']:,} rows, {stats['bytes']:,} bytes "
        f"({stats['bytes'] / max(stats['rows'], 1):.0f} B/row), {dt:.1f} s "
        f"({stats['rows'] / dt:,.0f} rows/s, {mb / dt:.0f} MB/s)",
        file=sys.stderr,
    )
    print(f"sha256 {stats['sha256']}", file=sys.stderr)
    print(
        f"defect rows: {stats['defect_rows']:,} ({stats['error_rows']:,} errors, "
        f"{stats['warning_rows']:,} warnings)",
        file=sys.stderr,
    )
    for kind, c in stats["defects"].items():
        code, severity = _kind_info(kind)
        print(f"  {kind:<20} {c:>9,}  {code} ({severity})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
