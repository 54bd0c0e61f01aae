"""The CSV reader: exact physical lines, quoted line breaks, broken quotes, widths, offsets."""

from __future__ import annotations

import io

import numpy as np
import pytest

from validator.read_csv import Columns, parse_header, read_piece, scan


def read_all(data: bytes, block_size: int | None = None):
    import validator.blocks as blocks

    header_end = data.index(b"\n") + 1
    cols = Columns.from_header(parse_header(data[:header_end]))
    stream = io.BytesIO(data)
    stream.seek(header_end)
    rows, problems, spans = [], [], []
    old = blocks.BLOCK_SIZE
    try:
        if block_size:
            blocks.BLOCK_SIZE = block_size
        reader = None
        for batch, reader in read_piece(  # noqa: B007 - the last reader is kept
            stream, -1, cols, offset=header_end, line=1, keep_spans=True
        ):
            for i, row in enumerate(batch.table.to_pylist()):
                rows.append((int(batch.lines[i]), int(batch.starts[i]), int(batch.ends[i]), row))
            problems += [(p.line, p.code) for p in batch.problems]
        if reader is not None:
            spans = [np.concatenate(x).tolist() for x in zip(*reader.spans, strict=True)]
    finally:
        blocks.BLOCK_SIZE = old
    return rows, sorted(problems), spans


DATA = (
    b"Id,ChannelType,Address,Attributes.a,Attributes.a\n"
    b"1,SMS,+1206,x,y\n"  # line 2
    b'2,EMAIL,"a,b@c.com","q""x",\n'  # line 3: quoted comma, doubled quote
    b'3,SMS,"multi\nline",z,\n'  # lines 4-5: quoted line break
    b"\n"  # line 6: blank, not a record
    b'4,SMS,"unbalanced,z,w\n'  # line 7: broken quote
    b"5,SMS,+1,a,b\n"  # line 8: must not be swallowed
    b"6,SMS,+1,a\n"  # line 9: one field short
    b"7,SMS,+1,a\tb,\n"  # line 10: tab in value
    b'8,SMS,x"y,a,\n'  # line 11: stray quote
    b"9,EMAIL,e@x.com,,"
)  # line 12: no final newline


@pytest.mark.parametrize("block_size", [None, 7, 16, 64])
def test_lines_and_problems_are_exact_whatever_the_block_size(block_size):
    rows, problems, spans = read_all(DATA, block_size)
    assert [(line, row["Id"]) for line, _, _, row in rows] == [
        (2, "1"),
        (3, "2"),
        (4, "3"),
        (8, "5"),
        (10, "7"),
        (12, "9"),
    ]
    assert problems == [
        (4, "CSV_NEWLINE_IN_VALUE"),
        (7, "CSV_QUOTE"),
        (9, "CSV_ROW_WIDTH"),
        (10, "CSV_TAB_IN_VALUE"),
        (11, "CSV_QUOTE"),
    ]
    # Every record, sound or not, has its span; together they cover the data but blank lines.
    lines, starts, ends = spans
    assert lines == [2, 3, 4, 7, 8, 9, 10, 11, 12]
    covered = b"".join(DATA[s:e] for s, e in zip(starts, ends, strict=True))
    assert covered == DATA[DATA.index(b"\n") + 1 :].replace(b"\n\n", b"\n")


def test_values_are_parsed_with_quotes_and_repeated_attribute_headers():
    rows, _, _ = read_all(DATA)
    by_id = {row["Id"]: row for *_, row in rows}
    assert by_id["1"]["Attributes.a"] == ["x", "y"]
    assert by_id["2"]["Address"] == "a,b@c.com"
    assert by_id["2"]["Attributes.a"] == ['q"x', None]
    assert by_id["3"]["Address"] == "multi\nline"
    assert by_id["9"]["Attributes.a"] == [None, None]


def test_byte_ranges_point_at_the_records():
    rows, _, _ = read_all(DATA)
    for _, start, end, row in rows:
        assert DATA[start:end].startswith(row["Id"].encode() + b",")


def test_crlf_lines_are_records_and_keep_their_numbers():
    data = b"ChannelType,Address\r\nSMS,+1\r\n\r\nEMAIL,a@b.co\r\n"
    rows, problems, _ = read_all(data)
    assert [(line, row["Address"]) for line, _, _, row in rows] == [(2, "+1"), (4, "a@b.co")]
    assert problems == []


def test_an_unbalanced_quote_costs_one_line_even_at_the_end_of_the_file():
    data = b'ChannelType,Address\nSMS,"+1\nSMS,+2\nSMS,+3'
    rows, problems, _ = read_all(data)
    assert [line for line, *_ in rows] == [3, 4]
    assert problems == [(2, "CSV_QUOTE")]


def test_a_quoted_value_longer_than_the_bound_is_a_broken_quote():
    body = b"x" * 70_000
    data = b'ChannelType,Address\nSMS,"' + body + b"\nSMS,+2\n" + b'SMS,"' + b"\n"
    rows, problems, _ = read_all(data)
    assert [line for line, *_ in rows] == [3]
    assert problems == [(2, "CSV_QUOTE"), (4, "CSV_QUOTE")]


def test_invalid_utf8_fails_only_its_record():
    data = b"ChannelType,Address\nSMS,+1\nEMAIL,caf\xe9@x.fr\nSMS,+3\n"
    rows, problems, _ = read_all(data)
    assert [line for line, *_ in rows] == [2, 4]
    assert problems == [(3, "FILE_NOT_UTF8")]


def test_the_full_scan_counts_fields_outside_quotes():
    # A quoted line break sends the block through the full scan, which counts fields itself.
    buf = b'a,"b,c",d\n"x""y",z,\n"p\nq",r,s\nt,u\n'
    s = scan(buf, True, 3)
    assert s.rec_fields is not None
    assert s.rec_fields.tolist() == [3, 3, 3, 2]
    assert s.rec_kind.tolist() == [0, 0, 0, 3]  # OK, OK, OK, WIDTH_BAD
    assert s.rec_first.tolist() == [0, 1, 2, 4]


def test_the_scan_can_leave_widths_to_the_parser():
    s = scan(b'a,"b,c",d\nt,u\n', True, 3, count_fields=False)
    assert s.rec_fields.tolist() == [3, 3]
    assert s.rec_first.tolist() == [0, 1]
