"""Cross-record state and the job-wide rules: the hash is one function whichever path computes
it; counts are exact; USER_ENDPOINTS, DUPLICATE_ID and ATTRIBUTES_TOO_MANY line for line."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import validator
import validator.crossrecord as cr
from validator.crossrecord import JobRules, KeyCounts, hash_strings
from validator.model import Piece, PieceKeys, PieceResult
from validator.source import SourceFile

HEADER = "Id,ChannelType,Address,User.UserId\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


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


def test_the_sixteenth_endpoint_of_a_user_fails_unless_it_is_push(tmp_path):
    rows = "".join(f"e{i},EMAIL,u{i}@example.com,same-user\n" for i in range(15))
    rows += "e15,EMAIL,u15@example.com,same-user\n"  # line 17: 16th, not push → error
    rows += "e16,GCM,token-16,same-user\n"  # line 18: 17th, push → warning
    src = write(tmp_path / "u.csv", HEADER + rows)
    d = validator.preflight(str(src), format="CSV").to_dict()
    assert d["TotalFailures"] == 1
    assert d["Failures"][0].startswith(f"{src}:17: User.UserId: ")
    assert d["Failures"][0].endswith("[USER_ENDPOINTS]")
    assert d["TotalWarnings"] == 1
    assert d["Warnings"][0].startswith(f"{src}:18: User.UserId: ")


def test_fifteen_endpoints_for_one_user_pass(tmp_path):
    rows = "".join(f"e{i},EMAIL,u{i}@example.com,same-user\n" for i in range(15))
    src = write(tmp_path / "u.csv", HEADER + rows)
    assert validator.preflight(str(src), format="CSV").job_status == "COMPLETED"


def test_duplicate_ids_are_warnings_and_strict_makes_them_failures(tmp_path):
    src = write(tmp_path / "d.csv", HEADER + "x,SMS,+1206,u1\ny,SMS,+1207,u2\nx,SMS,+1208,u3\n")
    d = validator.preflight(str(src), format="CSV").to_dict()
    assert d["JobStatus"] == "COMPLETED"
    assert d["Warnings"] == [
        f"{src}:4: Id: this Id was seen 1 time(s) before in the job; "
        "the later definition wins [DUPLICATE_ID]"
    ]
    strict = validator.preflight(str(src), format="CSV", strict=True).to_dict()
    assert strict["JobStatus"] == "FAILED"
    assert strict["TotalFailures"] == 1


@pytest.mark.parametrize("names,status", [(250, "COMPLETED"), (251, "FAILED")])
def test_custom_attribute_names_across_the_job(tmp_path, names, status):
    # Spread the names over two files so only the job-wide count can see them all.
    half = names // 2
    a = "Id,ChannelType,Address," + ",".join(f"Attributes.a{i}" for i in range(half)) + "\n"
    a += "1,SMS,+1206," + ",".join("v" for _ in range(half)) + "\n"
    b = "Id,ChannelType,Address," + ",".join(f"Metrics.m{i}" for i in range(names - half)) + "\n"
    b += "2,SMS,+1207," + ",".join("1" for _ in range(names - half)) + "\n"
    write(tmp_path / "job" / "a.csv", a)
    write(tmp_path / "job" / "b.csv", b)
    d = validator.preflight(str(tmp_path / "job"), format="CSV").to_dict()
    assert d["JobStatus"] == status
    assert d["TotalFailures"] == 0
    assert bool(d["JobFailures"]) == (status == "FAILED")
    if d["JobFailures"]:
        assert d["JobFailures"][0].endswith("[ATTRIBUTES_TOO_MANY]")


def _piece_keys(keys: list[str], push: list[bool] | None = None) -> PieceKeys:
    hashes = hash_strings(pa.array(keys))
    n = len(keys)
    records = np.arange(n)
    return PieceKeys.build(
        [hashes], [records], [records + 1], [np.array(push, bool)] if push else None
    )


def test_job_rules_count_across_pieces_in_the_order_given():
    piece = Piece(0, SourceFile("f.csv", 1, "local"), 0, -1)
    rules = JobRules()
    first = PieceResult(piece, users=_piece_keys(["u"] * 10), ids=_piece_keys(["a", "b"]))
    assert rules.piece(first) == []
    second = PieceResult(
        piece,
        users=_piece_keys(["u"] * 7, push=[False] * 6 + [True]),
        ids=_piece_keys(["b", "c", "a", "a"]),
        attribute_names={"Attributes.x"},
    )
    problems = rules.piece(second)
    got = [(p.record, p.line, p.field, p.code, p.severity) for p in problems]
    assert got == [
        (5, 6, "User.UserId", "USER_ENDPOINTS", "error"),  # the 16th endpoint of "u"
        (6, 7, "User.UserId", "USER_ENDPOINTS", "warning"),  # the 17th, a push endpoint
        (0, 1, "Id", "DUPLICATE_ID", "warning"),
        (2, 3, "Id", "DUPLICATE_ID", "warning"),
        (3, 4, "Id", "DUPLICATE_ID", "warning"),
    ]
    assert [p.message for p in problems] == [
        "endpoint number 16 for this user id; Pinpoint allows 15 per user and rejects this one",
        "endpoint number 17 for this user id; Pinpoint allows 15 per user "
        "and deactivates the oldest push endpoint",
        "this Id was seen 1 time(s) before in the job; the later definition wins",
        "this Id was seen 1 time(s) before in the job; the later definition wins",
        "this Id was seen 2 time(s) before in the job; the later definition wins",
    ]
    assert rules.job() == []
    rules.attribute_names |= {f"Metrics.m{i}" for i in range(250)}
    assert rules.job() == [
        (
            "ATTRIBUTES_TOO_MANY",
            "251 distinct custom attribute names across the job (Attributes, Metrics and "
            "User.UserAttributes); Pinpoint allows 250",
        )
    ]


def _problems(ps: list) -> list[tuple]:
    return [(p.record, p.line, p.field, p.code, p.severity, p.message) for p in ps]


@pytest.mark.parametrize("parts", [1, 2, 7, 64])
def test_partitions_flag_what_one_count_of_the_whole_job_flags(parts: int):
    """The cluster's key path without a cluster: each piece's keys cut by hash into ``parts``,
    each partition's runs through its own KeyRules in source order, the flagged merged back:
    the same problems, in the same order, as KeyRules over every key."""
    rng = random.Random(parts)
    pieces = []
    for _ in range(12):
        n = rng.randrange(0, 400)
        users = [f"u{rng.randrange(30)}" for _ in range(n)]
        ids = [f"id{rng.randrange(3000)}" for _ in range(n)]
        pieces.append(
            (_piece_keys(users, push=[rng.random() < 0.3 for _ in users]), _piece_keys(ids))
        )
    whole = cr.KeyRules()
    want = [u + i for u, i in (whole.piece(users, ids) for users, ids in pieces)]
    assert sum(map(len, want)) > 500
    runs = [
        list(zip(cr.partition_keys(u, parts), cr.partition_keys(i, parts), strict=True))
        for u, i in pieces
    ]
    flagged = [cr.flag_partition([run[j] for run in runs]) for j in range(parts)]
    got = cr.merge_flagged(flagged, len(pieces))
    assert [_problems(g) for g in got] == [_problems(w) for w in want]
    # Every key in exactly one partition, each partition a contiguous range of the hash.
    for (users, _), run in zip(pieces, runs, strict=True):
        parts_of = [set(r[0].distinct.tolist()) for r in run]
        assert sum(map(len, parts_of)) == len(users.distinct)
        assert sum(len(r[0].records) for r in run) == len(users.records)
        highs = [max(p) for p in parts_of if p]
        assert highs == sorted(highs)


def test_a_partition_keeps_its_records_in_source_order():
    keys = _piece_keys(["a", "b", "c", "a", "d", "b"] * 3)
    for part in cr.partition_keys(keys, 3):
        assert part.records.tolist() == sorted(part.records.tolist())
        assert (part.distinct[part.which] == keys.distinct[keys.which][part.records]).all()


def test_key_counts_stay_exact_once_runs_spill_into_the_partitions(monkeypatch):
    """A large state leaves the merge tree for partitions by the top bits: ordinals, folds and
    lengths are still a dictionary's, with keys spread over every partition."""
    monkeypatch.setattr(cr, "_SPILL", 1000)
    rng = np.random.default_rng(5)
    counts = KeyCounts()
    reference: dict[int, int] = {}
    spread = np.uint64(0x9E3779B97F4A7C15)  # odd: the keys cover the whole 64-bit range
    for i in range(300):
        keys = rng.integers(0, 20000, size=int(rng.integers(0, 3000))).astype(np.uint64) * spread
        want = []
        for key in keys.tolist():
            reference[key] = reference.get(key, 0) + 1
            want.append(reference[key])
        if i % 3 == 0:
            distinct, n = np.unique(keys, return_counts=True)
            before = counts.fold(distinct, n)
            assert before.tolist() == [
                reference[k] - c for k, c in zip(distinct.tolist(), n.tolist(), strict=True)
            ]
        elif i % 3 == 1:
            assert counts.ordinals(keys).tolist() == want  # looking does not count
            counts.add(keys)
        else:
            assert counts.count(keys).tolist() == want
    assert len(counts) == len(reference)
    assert len(counts.parts) == 16 and all(len(k) > 1000 for k, _ in counts.parts)
    assert all((k[1:] > k[:-1]).all() for k, _ in counts.parts)
