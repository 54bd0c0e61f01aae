"""Cross-record state: the hash is one function whichever path computes it; counts are exact."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

import validator.crossrecord as cr
from validator.crossrecord import KeyCounts, hash_strings


def test_hash_ignores_where_a_string_sits_in_its_array():
    a = pa.array(["abc", "", "abc", None, "xabc", "abc" * 100, "abcdefgh", "abcdefgh\x00"])
    h = hash_strings(a)
    assert h[0] == h[2]
    assert h[1] == h[3]  # null and empty are both "no key"; callers drop them
    assert len({int(x) for x in h[[0, 4, 5, 6, 7]]}) == 5
    assert (hash_strings(a.slice(2)) == h[2:]).all()
    assert (hash_strings(pa.chunked_array([a.slice(0, 3), a.slice(3)])) == h).all()


@pytest.mark.parametrize("alphabet", ["ab\x00", "abcdefghij0123456789-", "aé€"])
def test_padded_and_general_paths_agree(monkeypatch, alphabet):
    rng = random.Random(7)
    values = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(2000)
    ] + [None, ""]
    arr = pa.array(values)
    fast = hash_strings(arr)
    monkeypatch.setattr(cr, "_FAST_WIDTH", -1)
    general = hash_strings(arr)
    assert (fast == general).all()
    distinct = {v or "" for v in values}
    assert len(set(fast.tolist())) == len(distinct)


@pytest.mark.parametrize("width", [1, 7, 8, 10, 36, 64, 65])
@pytest.mark.parametrize("holes", [False, True])
def test_same_length_and_column_paths_agree_with_the_general_path(monkeypatch, width, holes):
    """Ids of one length (UUIDs, padded numbers) are hashed straight from the value buffer, a
    word column at a time; the hash is the general path's, with nulls and empties among them,
    in a slice, and for long strings (the 2-D pass)."""
    rng = random.Random(width)
    values: list[str | None] = [
        "".join(rng.choice("0123456789abcdef-") for _ in range(width)) for _ in range(500)
    ]
    if holes:
        values[3], values[100], values[-1] = None, "", None
    arr = pa.array(values)
    fast = hash_strings(arr)
    sliced = hash_strings(arr.slice(5, 300))
    monkeypatch.setattr(cr, "_FAST_WIDTH", -1)
    general = hash_strings(arr)
    assert (fast == general).all()
    assert (sliced == general[5:305]).all()
    monkeypatch.setattr(cr, "_COLUMN_LOOP", 0)
    monkeypatch.setattr(cr, "_FAST_WIDTH", 256)
    assert (hash_strings(arr) == general).all()


def test_key_counts_match_a_dictionary_over_many_pieces():
    rng = np.random.default_rng(1)
    counts = KeyCounts()
    reference: dict[int, int] = {}
    for _ in range(60):
        keys = rng.integers(0, 4000, size=int(rng.integers(0, 2500))).astype(np.uint64)
        want = []
        for key in keys.tolist():
            reference[key] = reference.get(key, 0) + 1
            want.append(reference[key])
        if len(want) % 2:
            assert counts.ordinals(keys).tolist() == want  # looking does not count
            counts.add(keys)
        else:
            assert counts.count(keys).tolist() == want
    assert len(counts) == len(reference)
    assert len(counts.runs) <= 12  # merged as it grows, not one run per piece


def test_fold_is_exact_through_the_filter_false_hits_included():
    """The bit filter only rules keys out: keys sharing a filter slot with a seen key (the same
    top bits) are still looked up and counted exactly, over many small pieces."""
    rng = np.random.default_rng(3)
    seen: dict[int, int] = {}
    counts = KeyCounts()
    base = rng.integers(0, 2**63, 300, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    for _ in range(400):
        keys = base[rng.integers(0, 300, 50)] ^ rng.integers(0, 4, 50).astype(np.uint64)
        distinct, n = np.unique(keys, return_counts=True)
        before = counts.fold(distinct, n)
        assert before.tolist() == [seen.get(int(k), 0) for k in distinct]
        for k, c in zip(distinct.tolist(), n.tolist(), strict=True):
            seen[k] = seen.get(k, 0) + c
    fresh = np.array([k ^ (1 << 20) for k in list(seen)[:20]], np.uint64)  # same slot, unseen
    assert counts.fold(np.unique(fresh), np.ones(len(np.unique(fresh)), np.int64)).sum() == 0
