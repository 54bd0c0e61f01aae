"""Job-wide rules that span records: 15 endpoints per user id, duplicate ids, 250 attribute names.

``JobRules`` owns the rules themselves (their state, limits and messages); the fold hands it
each piece's hashed keys in source order and gets back the problems to report.

Keys are hashed to 64 bits, column-wide, so the state held for a whole job is sorted numpy
arrays sized by the number of distinct keys, never the strings themselves. Pieces are folded
in source order, so the counts are exact for the job whichever way it was split or run.
(Two different keys share a 64-bit hash with odds of about n²/2⁶⁵: 7·10⁻⁷ for 5 million ids.)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from validator import schema
from validator.model import PackKeys, PieceKeys, PieceResult, Problem

_P = np.uint64(0x100000001B3)  # odd multiplier of the polynomial hash


_POW_LEN = 1 << 12
_POW = np.empty(_POW_LEN, np.uint64)
_POW[0] = 1
with np.errstate(over="ignore"):
    for _i in range(1, _POW_LEN):
        _POW[_i] = _POW[_i - 1] * _P


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the polynomial hash over all 64 bits."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(30))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h = h ^ (h >> np.uint64(27))
        h = h * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


_FAST_WIDTH = 256
_FILTER_BITS = 25  # KeyCounts' filter: 2**25 bits (4 MiB), ~14 % false hits at 5M keys
_COLUMN_LOOP = 8  # words per string up to which the padded path sums a column at a time
_SALT = np.uint64(0x632BE59BD9B4E019)


def _hash_padded(array: pa.Array, lengths: np.ndarray, longest: int) -> np.ndarray | None:
    """The same sums as the general path, over strings padded to one width: a 2-D array of
    words instead of gathers, summed a word column at a time. Strings that all have the same
    length (ids, UUIDs) are read straight from the value buffer, without padding them first.
    None when padding does not give one byte width (non-ASCII)."""
    n = len(array)
    width = (longest + 7) // 8 * 8
    words = _same_length_words(array, lengths, longest, width)
    uniform = words is not None  # every string has all k words, or none
    if words is None:
        padded = pc.utf8_rpad(pc.fill_null(array, ""), width=width, padding="\x00")
        bufs = padded.buffers()
        offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=padded.offset * 4)
        if int(offsets[-1]) - int(offsets[0]) != n * width or bufs[2] is None:
            return None
        words = np.frombuffer(
            bufs[2], dtype="<u8", count=n * width // 8, offset=int(offsets[0])
        ).reshape(n, width // 8)
    nw = (lengths + 7) // 8
    k = width // 8
    with np.errstate(over="ignore"):
        if k > _COLUMN_LOOP:  # long strings: one 2-D pass beats a loop of 1-D ones
            weighted = (words ^ _SALT) * _POW[:k]
            weighted[np.arange(k)[None, :] >= nw[:, None]] = 0
            return weighted.sum(axis=1, dtype=np.uint64)
        shortest = k if uniform else int(nw.min())
        h = np.zeros(n, np.uint64)
        for j in range(k):
            column = (words[:, j] ^ _SALT) * _POW[j]
            if j >= shortest:
                column[nw <= j] = 0  # past the end of the shorter strings
            h += column
        if uniform:
            h[nw == 0] = 0  # null and empty strings sum no word
        return h


def _same_length_words(
    array: pa.Array, lengths: np.ndarray, longest: int, width: int
) -> np.ndarray | None:
    """The words of strings that all have ``longest`` bytes or none (null or empty), zero-padded
    to ``width``: one copy of the value bytes, no kernel call. None otherwise."""
    n = len(array)
    full = lengths == longest
    count = int(np.count_nonzero(full))
    if count + int(np.count_nonzero(lengths == 0)) != n:
        return None
    bufs = array.buffers()
    start = int(np.frombuffer(bufs[1], dtype=np.int32, count=1, offset=array.offset * 4)[0])
    raw = np.frombuffer(bufs[2], dtype=np.uint8, count=count * longest, offset=start)
    if width == longest and count == n:
        return raw.view("<u8").reshape(n, width // 8)
    padded = np.zeros((n, width), np.uint8)
    if count == n:
        padded[:, :longest] = raw.reshape(n, longest)
    else:
        padded[full, :longest] = raw.reshape(count, longest)
    return padded.view("<u8")


def hash_strings(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of every string in ``array`` (nulls hash as the empty string).

    Strings are read eight bytes at a time (unaligned little-endian words over the value
    buffer), each word weighted by a power of an odd multiplier by its place in the string,
    summed per string with ``reduceat`` and finished with splitmix64.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_large_string(array.type):
        off_type: type = np.int64
    else:
        array = array.cast(pa.string()) if not pa.types.is_string(array.type) else array
        off_type = np.int32
    n = len(array)
    if n == 0:
        return np.empty(0, np.uint64)
    bufs = array.buffers()
    itemsize = np.dtype(off_type).itemsize
    offsets = np.frombuffer(
        bufs[1], dtype=off_type, count=n + 1, offset=array.offset * itemsize
    ).astype(np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    starts = offsets[:-1] - lo
    lengths = np.diff(offsets)
    h = np.zeros(n, np.uint64)
    longest = int(lengths.max())
    if hi > lo and bufs[2] is not None and longest <= _FAST_WIDTH:
        fast = _hash_padded(array, lengths, longest)
        if fast is not None:
            h = fast
            longest = -1
    if hi > lo and bufs[2] is not None and longest >= 0:
        # The value bytes, padded so that a word may start at any byte.
        raw = np.zeros(hi - lo + 8, np.uint8)
        raw[: hi - lo] = np.frombuffer(bufs[2], dtype=np.uint8, count=hi - lo, offset=lo)
        # words_at[i] is the little-endian word of the eight bytes from byte i (unaligned).
        words_at = np.ndarray(shape=(hi - lo + 1,), dtype="<u8", buffer=raw.data, strides=(1,))
        nonempty = lengths > 0
        nw = (lengths[nonempty] + 7) // 8  # words per string
        first_word = np.cumsum(nw) - nw
        total = int(nw.sum())
        k = np.arange(total, dtype=np.int64) - np.repeat(first_word, nw)  # word number in string
        pos = np.repeat(starts[nonempty], nw) + 8 * k
        words = words_at[pos]
        # Mask the bytes past the end of each string in its last word.
        last = first_word + nw - 1
        tail = (lengths[nonempty] - 8 * (nw - 1)).astype(np.uint64)
        with np.errstate(over="ignore"):
            mask = np.where(
                tail == 8,
                np.uint64(0xFFFFFFFFFFFFFFFF),
                (np.uint64(1) << (tail * np.uint64(8))) - np.uint64(1),
            )
            words[last] &= mask
            weighted = (words ^ _SALT) * _POW[np.minimum(k, _POW_LEN - 1)]
            h[nonempty] = np.add.reduceat(weighted, first_word)
    with np.errstate(over="ignore"):
        h = h ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    return _mix(h)


_PART_BITS = 4  # the partitions of a large state: by the top bits of the hash
_PART_BOUNDS = np.arange(1, 1 << _PART_BITS, dtype=np.uint64) << np.uint64(64 - _PART_BITS)
_SPILL = 1 << 19  # keys: a run this large leaves the merge tree for the partitions


def _merge(
    k1: np.ndarray, c1: np.ndarray, k2: np.ndarray, c2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs of distinct keys as one; a key in both adds its counts. The smaller run
    is scattered into the larger one's places: the two runs and the result are all the memory it
    takes (no argsort, no concatenated copy). The counts of the larger run are updated in place
    (a run is replaced by the merge, never read again)."""
    if len(k1) < len(k2):
        k1, c1, k2, c2 = k2, c2, k1, c1
    if not len(k2):
        return k1, c1
    pos = np.searchsorted(k1, k2)
    both = np.zeros(len(k2), bool)
    inside = pos < len(k1)
    both[inside] = k1[pos[inside]] == k2[inside]
    if both.any():
        c1[pos[both]] += c2[both]  # distinct keys: no index twice
    fresh = ~both
    n_new = int(np.count_nonzero(fresh))
    if not n_new:
        return k1, c1
    dst = pos[fresh] + np.arange(n_new)  # each new key's place in the merged run
    n = len(k1) + n_new
    keys = np.empty(n, k1.dtype)
    counts = np.empty(n, np.int32)
    new = np.zeros(n, bool)
    new[dst] = True
    keys[dst] = k2[fresh]
    counts[dst] = c2[fresh]
    old = ~new
    del new
    keys[old] = k1
    counts[old] = c1
    return keys, counts


@dataclass
class KeyCounts:
    """How many times each hashed key has been seen so far in the job.

    The state is a few sorted runs of distinct keys with their counts, merged when a newer run
    grows to half the size of the one before (as a log-structured merge tree does), so adding
    a piece costs about its own size, not the size of the whole job so far. A run that grows
    to ``_SPILL`` keys is split by the top bits of its hashes into the partitions (``parts``),
    each one sorted run merged on its own: a merge then rewrites a sixteenth of the state at
    most, so the memory a merge takes on top of the state stays small at any job size.
    """

    runs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    parts: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    # One bit per slot of the hash's top FILTER_BITS bits, set for every key in a run: a key
    # whose bit is clear was never seen, without a binary search through the runs. With many
    # small pieces (thousands of part files) the searches cost more than the rest of the fold.
    seen_bits: np.ndarray = field(
        default_factory=lambda: np.zeros(1 << (_FILTER_BITS - 3), np.uint8)
    )

    def __len__(self) -> int:
        return sum(len(k) for k, _ in self.runs) + sum(len(k) for k, _ in self.parts)

    def _maybe_seen(self, keys: np.ndarray) -> np.ndarray:
        slot = keys >> np.uint64(64 - _FILTER_BITS)
        bits = self.seen_bits[(slot >> np.uint64(3)).astype(np.intp)]
        return (bits >> (slot & np.uint64(7)).astype(np.uint8)) & np.uint8(1) == 1

    def _mark(self, keys: np.ndarray) -> None:
        """Set the filter bits of ``keys`` (ascending, so their bytes of the filter are too:
        one OR per byte touched, not an unbuffered ``ufunc.at`` per key)."""
        if not len(keys):
            return
        slot = keys >> np.uint64(64 - _FILTER_BITS)
        byte = (slot >> np.uint64(3)).astype(np.intp)
        bits = np.left_shift(np.uint8(1), (slot & np.uint64(7)).astype(np.uint8))
        first = np.flatnonzero(np.concatenate(([True], byte[1:] != byte[:-1])))
        self.seen_bits[byte[first]] |= np.bitwise_or.reduceat(bits, first)

    def _seen_sorted(self, sorted_keys: np.ndarray) -> np.ndarray:
        """For keys in ascending order, how many times each was seen before (sorted queries
        walk each run nearly in order, instead of a cache miss per binary-search step); only
        the keys the filter does not rule out are looked up."""
        before = np.zeros(len(sorted_keys), np.int64)
        if not (self.runs or self.parts) or not len(sorted_keys):
            return before
        maybe = np.flatnonzero(self._maybe_seen(sorted_keys))
        if not len(maybe):
            return before
        queries = sorted_keys[maybe]

        def look(
            run_keys: np.ndarray, run_counts: np.ndarray, q: np.ndarray, at: np.ndarray
        ) -> None:
            if not len(run_keys):
                return
            pos = np.searchsorted(run_keys, q)
            pos_c = np.minimum(pos, len(run_keys) - 1)
            hit = run_keys[pos_c] == q
            if hit.any():
                before[at[hit]] += run_counts[pos_c[hit]]

        for run_keys, run_counts in self.runs:
            look(run_keys, run_counts, queries, maybe)
        if self.parts:
            cuts = [0, *np.searchsorted(queries, _PART_BOUNDS).tolist(), len(queries)]
            for (run_keys, run_counts), (a, b) in zip(
                self.parts, itertools.pairwise(cuts), strict=True
            ):
                if b > a:
                    look(run_keys, run_counts, queries[a:b], maybe[a:b])
        return before

    def count(self, keys: np.ndarray, add: bool = True) -> np.ndarray:
        """Count the keys of one piece, in source order; return each one's ordinal in the job:
        1 for a key's first sighting, 2 for its second... (``add=False``: only look)."""
        n = len(keys)
        if not n:
            return np.empty(0, np.int64)
        sorted_keys = np.sort(keys)
        group_start = np.empty(n, bool)
        group_start[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=group_start[1:])
        before_sorted = self._seen_sorted(sorted_keys)
        starts = np.flatnonzero(group_start)
        sizes = np.diff(np.append(starts, n))
        if add:
            self._add_run(sorted_keys[starts], sizes)
        if len(starts) == n and not before_sorted.any():
            return np.ones(n, np.int64)  # every key new and once (ids, nearly always)
        # Where each key went in the sort, equal keys in source order: sort (group, index).
        order = np.argsort(keys)
        group = np.cumsum(group_start) - 1
        combined = (group.astype(np.int64) << 32) | order.astype(np.int64)
        combined.sort()
        order = combined & 0xFFFFFFFF
        idx = np.arange(n)
        rank_sorted = idx - np.repeat(starts, sizes)
        ordinals = np.empty(n, np.int64)
        ordinals[order] = before_sorted + rank_sorted + 1
        return ordinals

    def fold(self, distinct: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Count a piece's distinct keys (ascending) with their counts in the piece; return
        how many times each was seen before."""
        before = self._seen_sorted(distinct)
        if len(distinct):
            self._add_run(distinct, counts)
        return before

    def ordinals(self, keys: np.ndarray) -> np.ndarray:
        """The ordinals ``count`` would give, without counting the keys."""
        return self.count(keys, add=False)

    def add(self, keys: np.ndarray) -> None:
        if len(keys):
            uniq, cnt = np.unique(keys, return_counts=True)
            self._add_run(uniq, cnt)

    def _add_run(self, uniq: np.ndarray, cnt: np.ndarray) -> None:
        self._mark(uniq)
        self.runs.append((uniq, cnt.astype(np.int32)))  # a copy: the run owns its counts
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            (k2, c2), (k1, c1) = self.runs.pop(), self.runs.pop()
            self.runs.append(_merge(k1, c1, k2, c2))
        while self.runs and len(self.runs[0][0]) >= _SPILL:  # the oldest run is the largest
            self._spill(*self.runs.pop(0))

    def _spill(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """A large run merged into the partitions, one partition at a time."""
        if not self.parts:
            empty = (np.empty(0, np.uint64), np.empty(0, np.int32))
            self.parts = [empty] * (1 << _PART_BITS)
        cuts = [0, *np.searchsorted(keys, _PART_BOUNDS).tolist(), len(keys)]
        for i, (a, b) in enumerate(itertools.pairwise(cuts)):
            if b > a:
                k, c = self.parts[i]
                self.parts[i] = _merge(k, c, keys[a:b], counts[a:b].copy())


def partition_of(hashes: np.ndarray, parts: int) -> np.ndarray:
    """Which of ``parts`` partitions each hash falls in, by its top bits: partition ``j`` holds
    the hashes in ``[j, j + 1) * 2**64 / parts``, so a key lives in one partition only and the
    partitions of a sorted array are contiguous ranges of it."""
    with np.errstate(over="ignore"):
        return ((hashes >> np.uint64(32)) * np.uint64(parts)) >> np.uint64(32)


def partition_keys(keys: PieceKeys, parts: int) -> list[PieceKeys]:
    """One piece's keys as ``parts`` PieceKeys by the top bits of the hash (``partition_of``),
    each still sorted and with its keyed records in source order."""
    if parts == 1:
        return [keys]
    of_distinct = partition_of(keys.distinct, parts)  # ascending: distinct is sorted
    bounds = np.searchsorted(of_distinct, np.arange(parts + 1, dtype=np.uint64)).tolist()
    of_row = partition_of(keys.hashes, parts)
    order = np.argsort(of_row, kind="stable")  # rows by partition, source order within each
    row_bounds = np.searchsorted(of_row[order], np.arange(parts + 1, dtype=np.uint64)).tolist()
    out = []
    for j in range(parts):
        lo, hi = bounds[j], bounds[j + 1]
        rows = order[row_bounds[j] : row_bounds[j + 1]]
        out.append(
            PieceKeys(
                keys.distinct[lo:hi],
                keys.counts[lo:hi],
                keys.hashes[rows],
                keys.records[rows],
                keys.lines[rows],
                keys.push[rows],
            )
        )
    return out


class KeyRules:
    """USER_ENDPOINTS and DUPLICATE_ID over hashed keys, piece by piece in source order.

    One instance sees either every key of the job (the fold on one machine) or every key of
    one partition of the hash space (``flag_partition`` on a cluster's worker): a key lives in
    one partition only, so its ordinals, and the records flagged, are the same either way.
    """

    def __init__(self) -> None:
        rules = schema.load()
        self.users = KeyCounts()
        self.ids = KeyCounts()
        self.per_user = rules.limit("endpoints_per_user")
        self.severity = rules.severity

    @staticmethod
    def _over(counts: KeyCounts, keys: PieceKeys, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Keyed records whose ordinal in the job passes ``limit``, and those ordinals."""
        before = counts.fold(keys.distinct, keys.counts)
        flagged = before + keys.counts > limit
        if not flagged.any():
            return np.empty(0, np.int64), np.empty(0, np.int64)
        # The keyed records of the flagged keys (few): each hash looked up among those only.
        hot = np.flatnonzero(flagged)
        hot_keys = keys.distinct[hot]
        pos = np.minimum(np.searchsorted(hot_keys, keys.hashes), len(hot) - 1)
        rows = np.flatnonzero(hot_keys[pos] == keys.hashes)
        k = hot[pos[rows]]
        # Rank of each row among the rows of its key, in source order.
        order = np.argsort(k, kind="stable")
        ks = k[order]
        start = np.concatenate(([True], ks[1:] != ks[:-1]))
        idx = np.arange(len(ks))
        rank = np.empty(len(ks), np.int64)
        rank[order] = idx - np.maximum.accumulate(np.where(start, idx, 0))
        ordinal = before[k] + rank + 1
        keep = ordinal > limit
        return rows[keep], ordinal[keep]

    def piece(self, users: PieceKeys, ids: PieceKeys) -> tuple[list[Problem], list[Problem]]:
        """Count one piece's keys; the problems of its records (users', Ids'), lines relative
        to the piece, each list in source order."""
        flagged_users, flagged_ids = self.flag(users, ids)
        return [p for _, p in flagged_users], [p for _, p in flagged_ids]

    def flag(
        self, users: PieceKeys, ids: PieceKeys
    ) -> tuple[list[tuple[int, Problem]], list[tuple[int, Problem]]]:
        """``piece``, each problem with its keyed record's row (to find a packed file's own)."""
        flagged_users = []
        rows, ordinal = self._over(self.users, users, self.per_user)
        for i, n in zip(rows.tolist(), ordinal.tolist(), strict=True):
            push = bool(users.push[i])
            problem = Problem(
                int(users.records[i]),
                int(users.lines[i]),
                "User.UserId",
                "USER_ENDPOINTS",
                f"endpoint number {n} for this user id; "
                f"Pinpoint allows {self.per_user} per user"
                + (
                    " and deactivates the oldest push endpoint" if push else " and rejects this one"
                ),
                self.severity("USER_ENDPOINTS", push=push),
            )
            flagged_users.append((i, problem))
        flagged_ids = []
        rows, ordinal = self._over(self.ids, ids, 1)
        for i, n in zip(rows.tolist(), ordinal.tolist(), strict=True):
            problem = Problem(
                int(ids.records[i]),
                int(ids.lines[i]),
                "Id",
                "DUPLICATE_ID",
                f"this Id was seen {n - 1} time(s) before in the job; the later definition wins",
                self.severity("DUPLICATE_ID"),
            )
            flagged_ids.append((i, problem))
        return flagged_users, flagged_ids


def own_keys(results: list[PieceResult]) -> list[tuple[PieceKeys, PieceKeys]]:
    """Each result's own (users, ids) keys: its ``users`` and ``ids``, or, for a packed file,
    its records' share of the pack's ``PackKeys`` (each pack's keys grouped by file once)."""
    shares: dict[int, tuple[list[PieceKeys], list[PieceKeys]]] = {}
    out = []
    for res in results:
        if res.pack is None:
            assert res.users is not None and res.ids is not None, "the keys were taken already"
            out.append((res.users, res.ids))
            continue
        keys, index = res.pack
        if id(keys) not in shares:
            files = int(max(keys.user_owner.max(initial=-1), keys.id_owner.max(initial=-1))) + 1
            shares[id(keys)] = (
                _by_owner(keys.users, keys.user_owner, files),
                _by_owner(keys.ids, keys.id_owner, files),
            )
        users, ids = shares[id(keys)]
        empty = PieceKeys.build([], [], [])
        out.append(
            (
                users[index] if index < len(users) else empty,
                ids[index] if index < len(ids) else empty,
            )
        )
    return out


def _by_owner(keys: PieceKeys, owner: np.ndarray, files: int) -> list[PieceKeys]:
    order = np.argsort(owner, kind="stable")  # each file's rows, in source order
    bounds = np.searchsorted(owner[order], np.arange(files + 1)).tolist()
    return [keys.subset(order[bounds[i] : bounds[i + 1]]) for i in range(files)]


# One piece's keys of one partition: (users, ids).
PartitionRun = tuple[PieceKeys, PieceKeys]


def split_keys(results: list[PieceResult], parts: int) -> list[list[PartitionRun]]:
    """The keys of a task's results by partition (``partition_keys``), for the partition tasks:
    ``[i][j]`` is what partition ``j`` gets from the ``i``-th result."""
    return [
        list(zip(partition_keys(users, parts), partition_keys(ids, parts), strict=True))
        for users, ids in own_keys(results)
    ]


# What a partition flags in one piece: (piece's position, users' problems, Ids' problems).
Flagged = tuple[int, list[Problem], list[Problem]]


def flag_partition(runs: Iterable[PartitionRun]) -> list[Flagged]:
    """The key rules over one partition: its run from every piece, in source order (a cluster's
    partition task). Returns only the pieces with a flagged record, by position in ``runs``."""
    rules = KeyRules()
    out = []
    for position, (users, ids) in enumerate(runs):
        flagged_users, flagged_ids = rules.piece(users, ids)
        if flagged_users or flagged_ids:
            out.append((position, flagged_users, flagged_ids))
    return out


def merge_flagged(partitions: Iterable[list[Flagged]], pieces: int) -> list[list[Problem]]:
    """Every partition's flagged records as each piece's key-rule problems, in the order one
    ``KeyRules`` over the whole job gives them: users' then Ids', each by record (a record has
    one user id and one Id, so it is flagged by one partition at most per kind)."""
    users: list[list[Problem]] = [[] for _ in range(pieces)]
    ids: list[list[Problem]] = [[] for _ in range(pieces)]
    for flagged in partitions:
        for position, u, i in flagged:
            users[position] += u
            ids[position] += i
    record = lambda p: p.record if p.record is not None else -1  # noqa: E731
    return [sorted(u, key=record) + sorted(i, key=record) for u, i in zip(users, ids, strict=True)]


class JobRules:
    """USER_ENDPOINTS, DUPLICATE_ID and ATTRIBUTES_TOO_MANY over a whole job, piece by piece.

    Pieces must come in source order: the 16th endpoint of a user and the second sighting of
    an Id are then the same records whichever way the job was cut or run. A piece whose key
    rules were already run elsewhere (``PieceResult.cross``: a cluster's partition tasks) brings
    their problems instead of its keys; the attribute names are always counted here. The
    results of a pack share their keys (``PieceResult.pack``): counted at the first of them to
    come, each one's problems handed out as it comes.
    """

    def __init__(self) -> None:
        self.keys = KeyRules()
        self.attribute_names: set[str] = set()
        self._pack: tuple[PackKeys, dict[int, list[Problem]]] | None = None  # the pack at hand

    def piece(self, res: PieceResult) -> list[Problem]:
        """Count one piece's keys and attribute names; the problems of its records."""
        self.attribute_names |= res.attribute_names
        if res.cross is not None:
            return list(res.cross)
        if res.pack is None:
            # A piece run as parts (validator.subtasks) has the keys of its later parts in
            # ``key_parts``: counted after, in order, as the next pieces' would be.
            assert res.users is not None and res.ids is not None
            out: list[Problem] = []
            for users, ids in [(res.users, res.ids), *res.key_parts]:
                flagged_users, flagged_ids = self.keys.piece(users, ids)
                out += flagged_users + flagged_ids
            return out
        keys, index = res.pack
        if self._pack is None or self._pack[0] is not keys:
            shares: dict[int, list[Problem]] = {}
            by_user, by_id = self.keys.flag(keys.users, keys.ids)
            for owners, flagged in ((keys.user_owner, by_user), (keys.id_owner, by_id)):
                for row, p in flagged:
                    shares.setdefault(int(owners[row]), []).append(p)
            self._pack = (keys, shares)
        return self._pack[1].pop(index, [])

    def job(self) -> list[tuple[str, str]]:
        """The job's own problems once every piece is in, as ``(code, message)``."""
        limit = schema.load().limit("custom_attributes_per_job")
        if len(self.attribute_names) <= limit:
            return []
        names = sorted(self.attribute_names)
        return [
            (
                "ATTRIBUTES_TOO_MANY",
                f"{len(names)} distinct custom attribute names across the job "
                f"(Attributes, Metrics and User.UserAttributes); Pinpoint allows "
                f"{limit}",
            )
        ]
