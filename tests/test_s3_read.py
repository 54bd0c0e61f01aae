"""Reading an S3 object in byte ranges of its own, read ahead on a thread (validator/s3.py).

Against the real servers of ``s3_servers.py``: the bytes are exact from any start, every GET asks
for a range of its own (consecutive, bounded, never past the end), the read-ahead stays bounded,
and a reader closed early stops its thread and leaves no GET behind.
"""

from __future__ import annotations

import itertools
import random
import threading
from typing import Any

import pytest
from s3_servers import S3Server

from validator import s3
from validator.settings import AwsSettings
from validator.source import SourceFile

pytestmark = pytest.mark.s3

DATA = random.Random(7).randbytes(2 * 1024 * 1024 + 4321)
FIRST, CHUNK = 64 * 1024, 256 * 1024


@pytest.fixture(scope="module")
def obj(s3_server: S3Server) -> SourceFile:
    bucket = s3_server.make_bucket("ranges")
    s3_server.client().put_object(Bucket=bucket, Key="r/data.csv", Body=DATA)
    [f] = s3.list_source(f"s3://{bucket}/r/data.csv", client=s3_server.client())
    return f


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "FIRST_CHUNK", FIRST)
    monkeypatch.setattr(s3, "READ_AHEAD_CHUNK", CHUNK)


def ranges_asked(client: Any) -> list[tuple[int, int]]:
    asked: list[tuple[int, int]] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        a, _, b = params["Range"].removeprefix("bytes=").partition("-")
        asked.append((int(a), int(b) + 1))

    client.meta.events.register("provide-client-params.s3.GetObject", note)
    return asked


def client_for(server: S3Server) -> Any:
    return s3.make_client(AwsSettings(endpoint_url=server.endpoint_url))


def read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("s3-read-ahead")]


@pytest.mark.parametrize("start", [0, 1, FIRST - 1, FIRST + 5, 1_000_003, len(DATA) - 1])
def test_every_get_is_a_range_of_its_own_and_the_bytes_are_exact(
    s3_env: S3Server, obj: SourceFile, small_ranges: None, start: int
) -> None:
    client = client_for(s3_env)
    asked = ranges_asked(client)
    got = bytearray()
    with s3.open_object(obj, start, client=client) as fh:
        while chunk := fh.read(100_003):
            got += chunk
        assert fh.tell() == len(DATA)
    assert bytes(got) == DATA[start:]
    # consecutive ranges from the start to the end, none past it, each at most CHUNK
    assert asked[0][0] == start and asked[-1][1] == len(DATA)
    assert all(b == a2 for (_, b), (a2, _) in itertools.pairwise(asked))
    assert max(b - a for a, b in asked) <= CHUNK
    assert asked[0][1] - asked[0][0] == min(FIRST, len(DATA) - start)
    assert read_ahead_threads() == []


def test_a_head_read_makes_one_small_get_and_no_thread(
    s3_env: S3Server, obj: SourceFile, small_ranges: None
) -> None:
    client = client_for(s3_env)
    asked = ranges_asked(client)
    with s3.open_object(obj, 0, client=client) as fh:
        assert fh.read(1000) == DATA[:1000]
        assert read_ahead_threads() == []
    assert asked == [(0, FIRST)]


def test_a_reader_closed_early_stops_its_thread_and_read_ahead_is_bounded(
    s3_env: S3Server, obj: SourceFile, small_ranges: None
) -> None:
    client = client_for(s3_env)
    asked = ranges_asked(client)
    fh = s3.open_object(obj, 0, client=client)
    assert fh.read(FIRST + 10) == DATA[: FIRST + 10]  # into the second range: the thread runs
    for _ in range(200):  # let it run ahead as far as it may
        if len(asked) >= 4:
            break
        threading.Event().wait(0.01)
    fh.close()
    assert read_ahead_threads() == []
    # the range in hand, one waiting and one being fetched: never the whole object
    assert len(asked) <= 4
    assert asked[-1][1] < len(DATA)


def test_seek_and_readline_across_ranges(
    s3_env: S3Server, small_ranges: None, s3_server: S3Server
) -> None:
    bucket = s3_server.make_bucket("lines")
    body = b"".join(b"%d,%s\n" % (i, b"x" * (i % 977)) for i in range(3000))
    s3_server.client().put_object(Bucket=bucket, Key="l.csv", Body=body)
    [f] = s3.list_source(f"s3://{bucket}/l.csv", client=s3_server.client())
    with s3.open_object(f, 0, client=client_for(s3_env)) as fh:
        lines = list(iter(fh.readline, b""))
        assert b"".join(lines) == body and len(lines) == 3000
        fh.seek(FIRST * 3 + 17)
        assert fh.read(50) == body[FIRST * 3 + 17 : FIRST * 3 + 67]
        fh.seek(10)
        assert fh.readline() == body[10 : body.index(b"\n", 10) + 1]
