"""buffers.py: the column-wide helpers the rules stand on. The pattern kernels give exactly
the regex's answer, number text parses as Arrow's cast does, and the buffer readers agree with
pyarrow on sliced, null-holding and chunked arrays."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validator.buffers import (
    DATE_TIME_PATTERN,
    E164_PATTERN,
    ListParts,
    in_pool,
    matches,
    parse_numbers,
    text_nbytes,
    text_present,
    valid_np,
)
from validator.schema import load_schema


def test_validity_and_sizes_read_from_sliced_buffers() -> None:
    arr = pa.array(["a", None, "", "héllo", None, "xyz", "b"] * 3, pa.string())
    for part in (arr, arr.slice(3), arr.slice(5, 9), pa.chunked_array([arr.slice(1, 4), arr])):
        values = part.to_pylist()
        assert valid_np(part).tolist() == [v is not None for v in values]
        assert text_nbytes(part).tolist() == [len(v.encode()) if v else 0 for v in values]
        assert text_present(part).tolist() == [bool(v) for v in values]


@pytest.mark.parametrize(
    "rows",
    [
        [["a", "b"], ["c", None], None, ["d", "e"]],  # a CSV's repeated header: 2 items a row
        [["a"], [], None, ["b", "c", None, "dd"]],  # JSON arrays of any length
    ],
)
def test_list_parts_sum_per_row(rows: list[list[str | None] | None]) -> None:
    chunk = pa.array(rows, pa.list_(pa.string()))
    for part in (chunk, chunk.slice(1)):
        lists = ListParts(part)
        weights = text_nbytes(lists.values)
        want = [sum(len(v) for v in r if v) if r else 0 for r in part.to_pylist()]
        assert lists.sums(weights).tolist() == want
        assert lists.valid.tolist() == [r is not None for r in part.to_pylist()]


def test_in_pool_short_and_long_columns_alike() -> None:
    pool = frozenset({"SMS", "EMAIL", "PUSH"})
    short = pa.array(["SMS", "sms", None, "PUSH"])
    assert in_pool(pool, short).tolist() == [True, False, False, True]
    long = pa.array(["SMS", "sms", None, "PUSH"] * 100)
    assert in_pool(pool, long).tolist() == [True, False, False, True] * 100


def test_numbers_parse_around_bad_text() -> None:
    pattern = load_schema().number_text_pattern
    text = pa.array(["1.5"] * 10 + ["x"] + ["2"] * 10 + [None, "", "3e2"])
    values = parse_numbers(text, pattern)
    expected = [1.5] * 10 + [math.nan] + [2.0] * 10 + [math.nan, math.nan, 300.0]
    assert np.array_equal(values, np.array(expected), equal_nan=True)


# -- pattern kernels: exactly the regex -----------------------------------------------------------


def _same_as_regex(pattern: str, values: list[str | None]) -> None:
    arr = pa.array(values, pa.string())
    for part in (arr, arr.slice(1), arr.slice(0, max(len(arr) - 1, 0))):
        want = pc.fill_null(pc.match_substring_regex(part, pattern), False).to_pylist()
        got = matches(pattern, part).tolist()
        rows = zip(part.to_pylist(), got, want, strict=True)
        assert got == want, [(v, g, w) for v, g, w in rows if g != w]


def _near(
    matching: st.SearchStrategy[str], alphabet: str, size: int
) -> st.SearchStrategy[str | None]:
    """Strings that match, strings of the pattern's own characters, and matches edited: a
    character cut, one put in, text before or after."""
    chars = st.sampled_from(alphabet)
    noise = st.text(chars, max_size=size)
    at = st.integers(0, size)
    return st.one_of(
        matching,
        noise,
        st.none(),
        st.tuples(matching, at).map(lambda t: t[0][: t[1]] + t[0][t[1] + 1 :]),
        st.tuples(matching, at, chars).map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]),
        st.tuples(noise, matching, noise).map("".join),
        st.tuples(matching, noise, matching).map("".join),
    )


E164_CHARS = "+0123456789 -().\n\ta\u0663\uff10é"  # Arabic-Indic and full-width digits
E164_LIKE = st.tuples(st.sampled_from("123456789"), st.text("0123456789", max_size=16)).map(
    lambda t: "+" + t[0] + t[1]
)  # some one or two digits too long


@settings(max_examples=300, deadline=None)
@given(st.lists(_near(E164_LIKE, E164_CHARS, 18), max_size=40))
def test_e164_kernel_is_the_regex(values: list[str | None]) -> None:
    _same_as_regex(E164_PATTERN, values)


def test_pattern_kernels_at_their_edges() -> None:
    edges = [
        "",
        "+",
        "+1",
        "+0",
        "+12345678901234",
        "+123456789012345",
        "+1234567890123456",
        "1",
        "++1",
        "+1+",
        "+1\n",
        "\n+1",
        "+١٢",
        "+1٢",
        "+１",
        None,
        "+9" * 8,
        "+12a",
        "+ 1",
    ]
    _same_as_regex(E164_PATTERN, edges)


TWO_DIGITS = {"M": (1, 12), "D": (1, 31), "h": (0, 23), "m": (0, 59)}
EDGES = [
    "00",
    "01",
    "09",
    "10",
    "12",
    "13",
    "19",
    "20",
    "23",
    "24",
    "29",
    "30",
    "31",
    "32",
    "59",
    "60",
    "99",
    "0",
    "1",
    "001",
    "a1",
    "1 ",
]
SEPARATORS = ["-", ":", "T", ".", ",", "+", "Z", "", " ", "t", "::"]


@st.composite
def _date_time_like(draw: st.DrawFn) -> str:
    """A date-time with at most one part wrong: a field at or past its range, a separator
    swapped, moved or dropped, a fraction up to past the longest the kernel takes."""

    def field(kind: str) -> tuple[str, str]:
        low, high = TWO_DIGITS[kind]
        return kind, f"{draw(st.integers(low, high)):02d}"

    parts = [
        ("9", draw(st.text("0123456789", min_size=4, max_size=4))),
        ("-", "-"),
        field("M"),
        ("-", "-"),
        field("D"),
    ]
    if draw(st.booleans()):
        parts += [("T", "T"), field("h"), (":", ":"), field("m")]
        if draw(st.booleans()):
            parts += [(":", ":"), field("m")]
            if draw(st.booleans()):
                digits = draw(st.text("0123456789", min_size=1, max_size=30))
                parts += [(".", draw(st.sampled_from(".,"))), ("f", digits)]
        zone = draw(st.sampled_from(["", "Z", "~hh", "~hhmm", "~hh:mm"]))
        if zone == "Z":
            parts.append(("Z", "Z"))
        elif zone:
            parts += [("~", draw(st.sampled_from("+-"))), field("h")]
            parts += ([(":", ":")] if ":" in zone else []) + ([field("m")] if "mm" in zone else [])
    wrong = draw(st.integers(-1, len(parts) - 1))
    if wrong >= 0:
        kind, _ = parts[wrong]
        bad = draw(st.sampled_from(EDGES if kind in TWO_DIGITS else [*SEPARATORS, "1", "é"]))
        parts[wrong] = (kind, bad)
    return "".join(value for _, value in parts)


DATE_CHARS = "0123456789-:T.,+Z ét"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_date_time_like(), min_size=10, max_size=40),
    st.lists(_near(_date_time_like(), DATE_CHARS, 26), max_size=10),
)
def test_date_time_kernel_is_the_regex(values: list[str], edited: list[str | None]) -> None:
    _same_as_regex(DATE_TIME_PATTERN, values)
    _same_as_regex(DATE_TIME_PATTERN, values + edited)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_date_time_like(), min_size=10, max_size=40),
    st.lists(_near(_date_time_like(), DATE_CHARS, 26), max_size=10),
)
def test_date_time_kernel_is_the_regex_in_the_basic_format(
    values: list[str], edited: list[str | None]
) -> None:
    """The same generated texts without their '-' and ':' (the basic format, and texts that
    mix the two when only some go): the kernel's shapes of both formats are the regex."""
    basic = [v.replace("-", "").replace(":", "") for v in values]
    some = [v.replace("-", "", 2) for v in values] + [v.replace(":", "") for v in values]
    _same_as_regex(DATE_TIME_PATTERN, basic)
    _same_as_regex(DATE_TIME_PATTERN, basic + some + edited)


def test_date_time_kernel_at_its_edges() -> None:
    good = [
        "2019-08-23T10:54:35.220Z",
        "2019-08-23",
        "2019-08-23T10:54",
        "2019-08-23T10:54:35",
        "2019-08-23T10:54:35+02:00",
        "2019-08-23T10:54:35-0530",
        "2019-08-23T10:54:35,5Z",
        "2000-02-29T00:00Z",
        "2019-12-31T23:59:59.999999999-23:59",
        "0000-01-01T00:00+00",
        "2019-01-01T00:00:00." + "1" * 40 + "Z",
        "2019-01-01T00:00-0100",
    ]
    bad = [
        "2019-00-10",
        "2019-10-00",
        "2019-10-32",
        "2019-13-01",
        "2019-08-23T24:00",
        "2019-08-23T10:60",
        "2019-08-23T10:54:60",
        "2019-08-23T10:54:35.",
        "2019-08-23T",
        "2019-08-23T10:54Z+",
        "2019-08-23T10:54+24",
        "2019-08-23T10:54+01:60",
        "2019-08-23Z",
        "2019-08-23T10:54:35-",
        "2019-08-23T10:54:35.5-05:",
        "2019-08-23T10:54-",
        "2019-8-23",
        "2019-08-23T10:54:35.220Z\n",
        "２019-08-23",
        "2019-08-23T10:54:35 ",
        "2019-08-2",
        "2019-08-23T10:54:35.1.2Z",
        "2019-08-23T10:54:35+0",
        "2019-08-23T10:54:35,-5Z",
        "2019-08-23T10:54:35-5Z",
        "2019-08-23T10:54,05",
        "2019-08-23T10:54:35,05:00",
    ]
    _same_as_regex(DATE_TIME_PATTERN, good + bad + [None])
    assert pc.match_substring_regex(pa.array(good), DATE_TIME_PATTERN).to_pylist() == [True] * 12
    basic_good = [
        "20171011T150548Z",
        "20190823",
        "20190823T1054",
        "20190823T105435",
        "20190823T105435.220Z",
        "20190823T105435,5+0200",
        "20190823T105435-05",
        "00000101T0000+00",
        "20190101T000000." + "1" * 40 + "Z",
    ]
    basic_bad = [
        "20190823T105435+02:00",
        "20190823T10:54",
        "2019-08-23T1054",
        "20190823T105",
        "20190823T10543",
        "20190823T105435.",
        "20190823T105435+0",
        "20190823T105435+020",
        "20190823T105460",
        "20190823T1060",
        "20190823T2400",
        "20190823T",
        "2019082",
        "20191301",
        "20190800",
        "20190832",
    ]
    _same_as_regex(DATE_TIME_PATTERN, basic_good + basic_bad + [None])
    found = pc.match_substring_regex(pa.array(basic_good + basic_bad), DATE_TIME_PATTERN)
    assert found.to_pylist() == [True] * len(basic_good) + [False] * len(basic_bad)
    # one length for every value, as a batch of one format: the bytes as one matrix
    _same_as_regex(DATE_TIME_PATTERN, ["2019-08-23T10:54:35.220Z", "2019-08-23T10:54:35.220X"])


def test_the_schema_patterns_have_their_kernels() -> None:
    patterns = {rule.pattern for rule in load_schema().value_rules if rule.pattern}
    assert {E164_PATTERN, DATE_TIME_PATTERN} <= patterns


# -- number text: Arrow's cast is the pattern -----------------------------------------------------


def test_arrow_cast_takes_exactly_the_number_pattern_over_its_characters() -> None:
    """What parse_numbers relies on to skip the pattern: every string of up to 5 of
    ``0 1 + - . e E`` casts to a double if and only if the pattern matches it."""
    pattern = load_schema().number_text_pattern
    texts = ["".join(p) for k in range(6) for p in itertools.product("01+-.eE", repeat=k)]
    arr = pa.array(texts)
    matches = pc.match_substring_regex(arr, pattern).to_numpy(zero_copy_only=False)
    pc.cast(arr.filter(pa.array(matches)), pa.float64())  # all of these parse
    for text in arr.filter(pa.array(~matches)).to_pylist():
        with pytest.raises(pa.ArrowInvalid):
            pc.cast(pa.array([text]), pa.float64())


NUMBER_TEXT = st.one_of(
    st.text("0123456789+-.eE", max_size=8),
    st.text("0123456789+-.eE ,xnaif\u0663", max_size=8),
    st.sampled_from(["1e999", "-0", "inf", "NaN", "+.5", "9" * 400, "", "1,5", " 7 "]),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(NUMBER_TEXT, max_size=30), st.integers(0, 3))
def test_numbers_parse_as_cast_where_the_pattern_matches(
    values: list[str | None], cut: int
) -> None:
    pattern = load_schema().number_text_pattern
    text = pa.array(values, pa.string()).slice(min(cut, len(values)))
    want = []
    for value in text.to_pylist():
        matched = value is not None and pc.match_substring_regex(pa.array([value]), pattern)[0]
        want.append(pc.cast(pa.array([value]), pa.float64())[0].as_py() if matched else math.nan)
    # what _numbers keeps: finite values (a NaN or Infinity spelling may cast, to no number)
    got = parse_numbers(text, pattern).copy()
    got[~np.isfinite(got)] = math.nan
    expected = np.array(want, np.float64)
    expected[~np.isfinite(expected)] = math.nan
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(expected))  # -0.0 stays -0.0
