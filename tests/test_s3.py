"""S3 sources against real S3 API servers on 127.0.0.1 (moto and SeaweedFS, see s3_servers.py).

Every test that talks to a server runs once per server; the environment is emptied first
(``aws_env``), so nothing here can reach the real AWS.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import random
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import botocore.exceptions as bx
import pytest
from s3_servers import LIST_ONLY, NO_ACCESS, S3Server, closed_port

from validator import s3
from validator.errors import ConfigError, SourceError, UsageError
from validator.settings import AwsSettings
from validator.source import SourceFile, list_sources, open_binary

TREE = {
    "data/a.csv": b"Id,Address,ChannelType\n1,+12065550100,SMS\n",
    "data/b.json": b'{"Address":"a@example.com","ChannelType":"EMAIL"}\n',
    "data/sub/": b"",  # a folder marker, as the console makes them
    "data/sub.csv": b"Id,Address,ChannelType\n6,+12065550106,SMS\n",  # before data/sub/ in S3
    "data/sub/c.csv": b"Id,Address,ChannelType\n2,+12065550101,SMS\n3,+12065550102,SMS\n",
    "data/sub/deeper/": b"",
    "data/sub/deeper/d.csv": b"Id,Address,ChannelType\n4,+12065550103,SMS\n",
    "data/sub/deeper/e.ndjson": b'{"Address":"e@example.com","ChannelType":"EMAIL"}\n',
    "data/sub/notes.txt": b"not endpoint data\n",
    "data/z.jsonl": b'{"Address":"z@example.com","ChannelType":"EMAIL"}\n',
    "data2/x.csv": b"Id,Address,ChannelType\n9,+12065550109,SMS\n",  # a sibling "folder"
    "raw/export": b"Id,Address,ChannelType\n5,+12065550105,SMS\n",  # no extension
}
DATA_FILES = sorted(k for k in TREE if k.startswith("data/") and not k.endswith("/"))

pytestmark = pytest.mark.s3


def put_tree(client: Any, bucket: str, tree: dict[str, bytes]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), tree.items()
            )
        )


def count_calls(client: Any, operation: str) -> list[int]:
    """A list that grows by one for each ``operation`` call the client makes."""
    calls: list[int] = []
    client.meta.events.register(f"after-call.s3.{operation}", lambda **_: calls.append(1))
    return calls


def settings_for(server: S3Server, **kwargs: Any) -> AwsSettings:
    return AwsSettings(endpoint_url=server.endpoint_url, **kwargs)


@pytest.fixture(scope="module")
def tree_bucket(s3_server: S3Server) -> str:
    """A bucket holding TREE, shared by the tests that only read it."""
    bucket = s3_server.make_bucket("tree")
    put_tree(s3_server.client(), bucket, TREE)
    return bucket


# --- URLs, without a server ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/data", ("bucket", "data")),
        ("s3://bucket/data/", ("bucket", "data/")),
        ("s3://my.bucket-1/a b/ü.csv", ("my.bucket-1", "a b/ü.csv")),
    ],
)
def test_parse_url(url: str, expected: tuple[str, str]) -> None:
    assert s3.parse_url(url) == expected


@pytest.mark.parametrize(
    "url", ["s3://", "s3:///key", "http://bucket/key", "s3://bad bucket/k", "s3://bucket?x/k"]
)
def test_parse_url_rejects_malformed(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        s3.parse_url(url)
    assert caught.value.exit_code == 252
    assert url in str(caught.value)


def test_warning_only_for_a_prefix_without_slash() -> None:
    one = [SourceFile(display="s3://b/data", size=1, kind="s3", bucket="b", key="data")]
    assert s3.url_warnings("s3://b/data/") == []
    assert s3.url_warnings("s3://b") == []
    assert s3.url_warnings("s3://b/data", one) == []  # names one object exactly
    [(source, code, message)] = s3.url_warnings("s3://b/data")
    assert (source, code) == ("s3://b/data", "S3_PREFIX_NOT_FOLDER")
    assert "s3://b/data/" in message


def test_settings_and_files_pickle() -> None:
    settings = AwsSettings(
        endpoint_url="http://127.0.0.1:9", profile="p", region="eu-west-1", no_sign_request=True
    )
    f = SourceFile(display="s3://b/k.csv", size=3, kind="s3", bucket="b", key="k.csv", format="CSV")
    assert pickle.loads(pickle.dumps((settings, f))) == (settings, f)


# --- listing ---------------------------------------------------------------------------------


def test_prefix_lists_nested_objects_over_several_pages(s3_env: S3Server, tree_bucket: str) -> None:
    client = s3.make_client(settings_for(s3_env))
    pages = count_calls(client, "ListObjectsV2")
    files = s3.list_source(f"s3://{tree_bucket}/data/", client=client, page_size=2)
    assert [f.key for f in files] == DATA_FILES  # key order; folder markers left out
    assert len(pages) >= 5  # 10 keys (markers included), 2 a page
    for f in files:
        assert f.display == f"s3://{tree_bucket}/{f.key}"
        assert (f.kind, f.bucket, f.size) == ("s3", tree_bucket, len(TREE[f.key]))
    assert {f.key: f.format for f in files} == {
        "data/a.csv": "CSV",
        "data/b.json": "JSON",
        "data/sub.csv": "CSV",
        "data/sub/c.csv": "CSV",
        "data/sub/deeper/d.csv": "CSV",
        "data/sub/deeper/e.ndjson": "JSON",
        "data/sub/notes.txt": None,
        "data/z.jsonl": "JSON",
    }


def test_declared_format_selects_and_skips_with_reasons(s3_env: S3Server, tree_bucket: str) -> None:
    listing = list_sources([f"s3://{tree_bucket}/data/"], "CSV", settings=settings_for(s3_env))
    assert listing.format == "CSV"
    assert [f.key for f in listing.selected] == [
        "data/a.csv",
        "data/sub.csv",  # S3 key order: '.' sorts before '/'
        "data/sub/c.csv",
        "data/sub/deeper/d.csv",
    ]
    skipped = {f.key: f.skip_reason for f in listing.files if not f.selected}
    assert skipped == {
        "data/b.json": "not CSV: a JSON file",
        "data/sub/deeper/e.ndjson": "not CSV: a JSON file",
        "data/sub/notes.txt": "not CSV: the extension is not one of .csv",
        "data/z.jsonl": "not CSV: a JSON file",
    }
    codes = [code for _, code, _ in listing.warnings]
    assert codes == ["FORMAT_MIXED"]  # a prefix ending in / draws no prefix warning

    as_json = list_sources([f"s3://{tree_bucket}/data/"], "JSON", settings=settings_for(s3_env))
    assert [f.key for f in as_json.selected] == [
        "data/b.json",
        "data/sub/deeper/e.ndjson",
        "data/z.jsonl",
    ]


def test_prefix_without_slash_matches_siblings_and_warns(
    s3_env: S3Server, tree_bucket: str
) -> None:
    url = f"s3://{tree_bucket}/data"
    listing = list_sources([url], "CSV", settings=settings_for(s3_env))
    assert "data2/x.csv" in [f.key for f in listing.selected]
    [warning] = [w for w in listing.warnings if w[1] == "S3_PREFIX_NOT_FOLDER"]
    source, _, message = warning
    assert source == url
    assert f"{url}/" in message
    assert f"s3://{tree_bucket}/data2/x.csv" in message  # shows what it caught


def test_exact_key_names_one_object(s3_env: S3Server, tree_bucket: str) -> None:
    client = s3.make_client(settings_for(s3_env))
    lists = count_calls(client, "ListObjectsV2")
    url = f"s3://{tree_bucket}/data/sub/c.csv"
    [f] = s3.list_source(url, client=client)
    assert (f.display, f.key, f.size, f.format) == (
        url,
        "data/sub/c.csv",
        len(TREE["data/sub/c.csv"]),
        "CSV",
    )
    assert lists == []  # HeadObject was enough
    listing = list_sources([url], "CSV", settings=settings_for(s3_env))
    assert [f.display for f in listing.selected] == [url]
    assert listing.warnings == []  # an exact key is no prefix


def test_exact_key_without_extension_is_read(s3_env: S3Server, tree_bucket: str) -> None:
    url = f"s3://{tree_bucket}/raw/export"
    listing = list_sources([url], "CSV", settings=settings_for(s3_env))
    assert [(f.display, f.selected, f.format) for f in listing.files] == [(url, True, None)]
    assert listing.warnings == []


def test_key_that_is_only_a_prefix_is_listed(s3_env: S3Server, tree_bucket: str) -> None:
    files = s3.list_source(f"s3://{tree_bucket}/data/sub/deep", settings=settings_for(s3_env))
    assert [f.key for f in files] == ["data/sub/deeper/d.csv", "data/sub/deeper/e.ndjson"]


def test_whole_bucket(s3_env: S3Server, tree_bucket: str) -> None:
    files = s3.list_source(f"s3://{tree_bucket}", settings=settings_for(s3_env))
    assert [f.key for f in files] == sorted(k for k in TREE if not k.endswith("/"))


def test_endpoint_from_environment(
    s3_env: S3Server, tree_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_env.endpoint_url)
    files = s3.list_source(f"s3://{tree_bucket}/data/sub/", settings=AwsSettings())
    assert len(files) == 4


def test_profile_from_config_files(
    s3_env: S3Server, tree_bucket: str, aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    (aws_env / "credentials").write_text(
        f"[pp]\naws_access_key_id = {s3_env.access_key}\n"
        f"aws_secret_access_key = {s3_env.secret_key}\n"
    )
    (aws_env / "config").write_text(
        f"[profile pp]\nregion = {s3_env.region}\nendpoint_url = {s3_env.endpoint_url}\n"
    )
    files = s3.list_source(f"s3://{tree_bucket}/data/sub/", settings=AwsSettings(profile="pp"))
    assert len(files) == 4


def test_more_than_one_default_page(s3_env: S3Server) -> None:
    if s3_env.name != "moto":
        pytest.skip("1,001 uploads are slow on SeaweedFS; small pages cover it there")
    bucket = s3_env.make_bucket("many")
    keys = [f"many/part-{i:05d}.csv" for i in range(1001)]
    put_tree(s3_env.client(), bucket, dict.fromkeys(keys, b"Id\n1\n"))
    client = s3.make_client(settings_for(s3_env))
    pages = count_calls(client, "ListObjectsV2")
    files = s3.list_source(f"s3://{bucket}/many/", client=client)
    assert [f.key for f in files] == keys
    assert len(pages) == 2  # 1,000 then 1


# --- reading ---------------------------------------------------------------------------------

BIG = random.Random(20240601).randbytes(3 * 1024 * 1024 + 12345)


@pytest.fixture(scope="module")
def big_object(s3_server: S3Server) -> SourceFile:
    bucket = s3_server.make_bucket("big")
    s3_server.client().put_object(Bucket=bucket, Key="big/data.csv", Body=BIG)
    [f] = s3.list_source(f"s3://{bucket}/big/data.csv", client=s3_server.client())
    assert f.size == len(BIG)
    return f


@pytest.mark.parametrize(
    "start", [0, 1, s3.READ_BUFFER - 1, s3.READ_BUFFER + 7, len(BIG) - 10, len(BIG)]
)
def test_read_from_offset(s3_env: S3Server, big_object: SourceFile, start: int) -> None:
    with s3.open_object(big_object, start, settings=settings_for(s3_env)) as fh:
        assert fh.tell() == start
        assert fh.read() == BIG[start:]


def test_read_in_odd_chunks_across_range_requests(
    s3_env: S3Server, big_object: SourceFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "RANGE_CHUNK", 700_001)  # several GETs for one object
    start = 1_000_003
    got = bytearray()
    with open_binary(big_object, start, settings=settings_for(s3_env)) as fh:
        while chunk := fh.read(65_537):
            got += chunk
    assert bytes(got) == BIG[start:]


def test_reader_is_a_buffered_binary_file(s3_env: S3Server, big_object: SourceFile) -> None:
    with s3.open_object(big_object, 5, settings=settings_for(s3_env)) as fh:
        assert fh.readable() and fh.seekable()
        buf = bytearray(10)
        assert fh.readinto(buf) == 10
        assert bytes(buf) == BIG[5:15]
        wrapped = io.BufferedReader(fh)  # as pyarrow or csv would wrap
        assert wrapped.read(100) == BIG[15:115]
        fh.seek(2_000_000)
        assert fh.read(3) == BIG[2_000_000:2_000_003]
    assert fh.closed


def test_compressed_object_is_not_decompressed(s3_env: S3Server) -> None:
    bucket = s3_env.make_bucket("gz")
    payload = gzip.compress(b"Id,Address\n1,+12065550100\n")
    s3_env.client().put_object(Bucket=bucket, Key="in/data.csv.gz", Body=payload)
    [f] = s3.list_source(f"s3://{bucket}/in/data.csv.gz", settings=settings_for(s3_env))
    with s3.open_object(f, 0, settings=settings_for(s3_env)) as fh:
        assert fh.read() == payload


def _read_in_worker(f: SourceFile, start: int, settings: AwsSettings) -> bytes:
    with s3.open_object(f, start, settings=settings) as fh:
        return fh.read(1000)


def test_worker_process_builds_its_own_client(s3_env: S3Server, big_object: SourceFile) -> None:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        got = pool.submit(_read_in_worker, big_object, 123, settings_for(s3_env)).result(60)
    assert got == BIG[123:1123]


# --- errors ----------------------------------------------------------------------------------


def assert_one_line(exc: BaseException, server: S3Server | None = None) -> str:
    message = str(exc)
    assert "\n" not in message
    assert "Traceback" not in message
    if server is not None:
        assert server.secret_key not in message and server.access_key not in message
    assert exc.__cause__ is not None  # chained from the AWS error
    return message


@pytest.mark.parametrize("key", ["data/", "data", "data/a.csv"])
def test_no_such_bucket(s3_env: S3Server, key: str) -> None:
    with pytest.raises(SourceError) as caught:
        s3.list_source(
            f"s3://no-such-bucket-pp-{int(time.time())}/{key}", settings=settings_for(s3_env)
        )
    assert caught.value.exit_code == 254
    message = assert_one_line(caught.value, s3_env)
    assert "s3://no-such-bucket-pp-" in message and "no such bucket" in message


def test_nothing_below_a_prefix(s3_env: S3Server, tree_bucket: str) -> None:
    with pytest.raises(SourceError) as caught:
        s3.list_source(f"s3://{tree_bucket}/nothing/here/", settings=settings_for(s3_env))
    assert caught.value.exit_code == 254
    assert f"no object at or below s3://{tree_bucket}/nothing/here/" in str(caught.value)


def test_only_folder_markers(s3_env: S3Server) -> None:
    bucket = s3_env.make_bucket("markers")
    put_tree(s3_env.client(), bucket, {"empty/": b"", "empty/sub/": b""})
    with pytest.raises(SourceError, match=r"no object at or below .*folder marker"):
        s3.list_source(f"s3://{bucket}/empty/", settings=settings_for(s3_env))


def test_no_such_key_when_reading(s3_env: S3Server, tree_bucket: str) -> None:
    gone = SourceFile(
        display=f"s3://{tree_bucket}/data/gone.csv",
        size=10,
        kind="s3",
        bucket=tree_bucket,
        key="data/gone.csv",
        format="CSV",
    )
    with pytest.raises(SourceError) as caught:
        open_binary(gone, 0, settings=settings_for(s3_env))
    assert caught.value.exit_code == 254
    message = assert_one_line(caught.value, s3_env)
    assert f"s3://{tree_bucket}/data/gone.csv" in message and "no such object" in message


def test_access_denied_listing(
    s3_env: S3Server, tree_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not s3_env.enforces_permissions:
        pytest.skip(f"{s3_env.name} does not enforce permissions")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", NO_ACCESS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", NO_ACCESS[1])
    with pytest.raises(SourceError) as caught:
        s3.list_source(f"s3://{tree_bucket}/data/", settings=settings_for(s3_env))
    assert caught.value.exit_code == 254
    message = assert_one_line(caught.value)
    assert NO_ACCESS[0] not in message and NO_ACCESS[1] not in message
    assert f"s3://{tree_bucket}/data/" in message and "access denied" in message


def test_access_denied_reading(
    s3_env: S3Server, tree_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not s3_env.enforces_permissions:
        pytest.skip(f"{s3_env.name} does not enforce permissions")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LIST_ONLY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LIST_ONLY[1])
    listing = list_sources([f"s3://{tree_bucket}/data/"], "CSV", settings=settings_for(s3_env))
    f = listing.selected[0]  # listed: the identity may list
    with pytest.raises(SourceError) as caught:
        open_binary(f, 0, settings=settings_for(s3_env))
    message = assert_one_line(caught.value)
    assert LIST_ONLY[0] not in message and LIST_ONLY[1] not in message
    assert f.display in message and "access denied" in message


@pytest.mark.parametrize("which", ["unknown key", "wrong secret"])
def test_credentials_refused(
    s3_env: S3Server, tree_bucket: str, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not s3_env.enforces_permissions:
        pytest.skip(f"{s3_env.name} does not check credentials")
    key, secret = (
        ("AKIAUNKNOWNKEY000000", "whatever-secret")
        if which == "unknown key"
        else (s3_env.access_key, "not-the-secret")
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with pytest.raises(SourceError) as caught:
        s3.list_source(f"s3://{tree_bucket}/data/", settings=settings_for(s3_env))
    message = assert_one_line(caught.value)
    assert key not in message and secret not in message
    assert f"s3://{tree_bucket}/data/" in message
    assert "AWS_ACCESS_KEY_ID" in message  # says what to check


@pytest.mark.parametrize("key", ["data/", "data/a.csv"])  # listing, and HeadObject first
def test_no_credentials(
    s3_env: S3Server, tree_bucket: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigError) as caught:
        s3.list_source(f"s3://{tree_bucket}/{key}", settings=settings_for(s3_env))
    assert caught.value.exit_code == 253
    message = assert_one_line(caught.value)
    assert "no AWS credentials" in message and f"s3://{tree_bucket}/{key}" in message
    assert "--profile" in message


def test_no_sign_request_needs_no_credentials(
    s3_env: S3Server, tree_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    settings = settings_for(s3_env, no_sign_request=True)
    if s3_env.enforces_permissions:  # anonymous requests go out, and are refused
        with pytest.raises(SourceError, match="access denied"):
            s3.list_source(f"s3://{tree_bucket}/data/", settings=settings)
    else:
        assert len(s3.list_source(f"s3://{tree_bucket}/data/", settings=settings)) == 8


@pytest.mark.parametrize("how", ["option", "environment"])
def test_unknown_profile(s3_env: S3Server, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "environment":
        monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
        settings = settings_for(s3_env)
    else:
        settings = settings_for(s3_env, profile="no-such-profile")
    with pytest.raises(ConfigError) as caught:
        s3.list_source("s3://bucket/data/", settings=settings)
    assert caught.value.exit_code == 253
    message = assert_one_line(caught.value)
    assert "'no-such-profile'" in message and "--profile" in message


def test_bad_region(aws_env: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        s3.make_client(AwsSettings(region="not a region!"))
    assert caught.value.exit_code == 253
    assert "--region" in str(caught.value)


def test_bad_endpoint_url(aws_env: Path) -> None:
    with pytest.raises(UsageError) as caught:
        s3.make_client(AwsSettings(endpoint_url="not a url"))
    assert caught.value.exit_code == 252


def test_unreachable_endpoint(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        s3.list_source(
            "s3://bucket/data/", settings=AwsSettings(endpoint_url=f"http://127.0.0.1:{port}")
        )
    assert time.monotonic() - started < 15
    assert caught.value.exit_code == 254
    message = assert_one_line(caught.value, s3_env)
    assert f"http://127.0.0.1:{port}" in message and "s3://bucket/data/" in message
    assert "--endpoint-url" in message

    listed = SourceFile(
        display="s3://bucket/a.csv", size=10, kind="s3", bucket="bucket", key="a.csv"
    )
    with pytest.raises(SourceError, match=f"s3://bucket/a.csv: could not connect .*:{port}"):
        open_binary(listed, 3, settings=AwsSettings(endpoint_url=f"http://127.0.0.1:{port}"))


def test_users_own_client_is_used(s3_env: S3Server, tree_bucket: str) -> None:
    client = s3_env.client()
    heads = count_calls(client, "HeadObject")
    gets = count_calls(client, "GetObject")
    listing = list_sources([f"s3://{tree_bucket}/data/a.csv"], "CSV", s3_client=client)
    with open_binary(listing.selected[0], 3, s3_client=client) as fh:
        assert fh.read() == TREE["data/a.csv"][3:]
    assert (len(heads), len(gets)) == (1, 1)


def test_users_own_client_reads_every_piece_and_split_writes_with_it(
    s3_env: S3Server, tree_bucket: str
) -> None:
    """``s3_client=`` alone (no endpoint in settings or the environment): the listing, the
    planner, every piece on the pool's threads and split's writes all use that client."""
    import validator

    client = s3_env.client()
    gets = count_calls(client, "GetObject")
    report = validator.preflight(
        f"s3://{tree_bucket}/data/", format="CSV", s3_client=client, pieces=4, workers=2
    )
    assert report.to_dict()["TotalProcessed"] == 5  # a, sub, sub/c (2), sub/deeper/d
    assert len(gets) >= 4
    out = s3_env.make_bucket("own-client-out")
    uploads = count_calls(client, "CompleteMultipartUpload")
    result = validator.split(
        f"s3://{tree_bucket}/data/", f"s3://{out}/split/", format="CSV", s3_client=client
    )
    assert len(uploads) == len(result.written)  # every piece and the manifest, whole


# --- translate, without a server -------------------------------------------------------------


def client_error(code: str, status: int, retries: int = 0) -> bx.ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": retries},
    }
    return bx.ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("exc", "cls", "words"),
    [
        (client_error("NoSuchBucket", 404), SourceError, "s3://b/k.csv: no such bucket 'b'"),
        (client_error("NoSuchKey", 404), SourceError, "s3://b/k.csv: no such object"),
        (client_error("404", 404), SourceError, "no such object"),
        (client_error("AccessDenied", 403), SourceError, "access denied"),
        (client_error("403", 403), SourceError, "access denied"),
        (
            client_error("SlowDown", 503, retries=2),
            SourceError,
            "throttling requests (SlowDown) after 3 attempts",
        ),
        (client_error("Throttling", 400), SourceError, "throttling"),
        (client_error("InvalidAccessKeyId", 403), SourceError, "does not know the access key"),
        (client_error("SignatureDoesNotMatch", 403), SourceError, "signature"),
        (client_error("ExpiredToken", 400), SourceError, "expired"),
        (
            client_error("InternalError", 500),
            SourceError,
            "S3 answered with an error (InternalError",
        ),
        (
            bx.EndpointConnectionError(endpoint_url="https://u:p@s3.example.test:444/b/k?x=1"),
            SourceError,
            "could not connect to S3 at https://s3.example.test:444;",
        ),
        (bx.ConnectTimeoutError(endpoint_url="http://10.9.9.9/b"), SourceError, "did not answer"),
        (bx.NoCredentialsError(), ConfigError, "no AWS credentials"),
        (
            bx.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            ConfigError,
            "AWS_SECRET_ACCESS_KEY is missing",
        ),
        (bx.ProfileNotFound(profile="x"), ConfigError, "profile 'x'"),
        (bx.ResponseStreamingError(error="reset"), SourceError, "reading from S3 failed"),
        (
            OSError("s3.Reader failed to read 10 bytes after 5 attempts"),
            SourceError,
            "reading from S3 failed",
        ),
    ],
)
def test_translate(exc: BaseException, cls: type, words: str) -> None:
    got = s3.translate(exc, "b", "k.csv")
    assert type(got) is cls
    assert words in str(got)
    assert "\n" not in str(got) and "u:p" not in str(got)


def test_translate_unwraps_smart_open() -> None:
    inner = client_error("AccessDenied", 403)
    wrapped = OSError("unable to access bucket: 'b' key: 'k' version: None error: ...")
    wrapped.backend_error = inner  # type: ignore[attr-defined]  # what smart_open attaches
    assert "access denied" in str(s3.translate(wrapped, "b", "k"))
    try:
        try:
            raise inner
        except bx.ClientError as exc:
            raise OSError("wrapped") from exc
    except OSError as outer:
        assert "access denied" in str(s3.translate(outer, "b", "k"))


# --- end to end: the engine and the CLI on S3 ------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DATA = Path(__file__).resolve().parent / "data"


def job_tree() -> dict[str, bytes]:
    """Files with failures, warnings and duplicate Ids across files, nested, of both formats.
    Listed in the same order by a folder walk and by S3 (see the test after next)."""
    defects = (EXAMPLES / "endpoints.csv").read_bytes()
    return {
        "job/a-endpoints.csv": defects,
        "job/notes.txt": b"not endpoint data\n",
        "job/sub/aws.csv": (DATA / "aws_docs_example.csv").read_bytes(),
        "job/sub/endpoints.ndjson": (EXAMPLES / "endpoints.ndjson").read_bytes(),
        "job/sub/zz/more.csv": defects,
    }


def upload_and_write(server: S3Server, tree: dict[str, bytes], folder: Path) -> str:
    bucket = server.make_bucket("job")
    put_tree(server.client(), bucket, tree)
    for key, body in tree.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(body)
    return bucket


def comparable(report: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The members that must not depend on where the files are, with ``prefix`` cut out of
    every source name."""

    def cut(text: str) -> str:
        return text.replace(prefix, "<job>")

    return {
        **{
            k: report[k]
            for k in (
                "JobStatus",
                "TotalPieces",
                "CompletedPieces",
                "FailedPieces",
                "TotalProcessed",
                "TotalFailures",
                "FailuresByCode",
                "TotalWarnings",
            )
        },
        "Failures": [cut(f) for f in report["Failures"]],
        "Warnings": [cut(w) for w in report["Warnings"]],
        "Files": sorted(
            (cut(f["Source"]), f["Size"], f["Status"], f.get("Reason")) for f in report["Files"]
        ),
    }


def test_same_report_from_s3_and_local_folder(s3_env: S3Server, tmp_path: Path) -> None:
    import validator

    tree = job_tree()
    bucket = upload_and_write(s3_env, tree, tmp_path)
    local = validator.preflight(f"{tmp_path}/job/", format="CSV").to_dict()
    remote = validator.preflight(
        f"s3://{bucket}/job/", format="CSV", settings=settings_for(s3_env)
    ).to_dict()
    assert remote["TotalFailures"] > 0 and remote["TotalWarnings"] > 0
    assert comparable(remote, f"s3://{bucket}/job/") == comparable(local, f"{tmp_path}/job/")
    assert remote["Failures"][0].startswith(f"s3://{bucket}/job/a-endpoints.csv:")


def test_prefix_warning_in_report(s3_env: S3Server, tree_bucket: str) -> None:
    import validator

    url = f"s3://{tree_bucket}/data/sub/deeper/d"  # a prefix: one object, not named exactly
    report = validator.preflight(url, format="CSV", settings=settings_for(s3_env)).to_dict()
    assert report["JobStatus"] == "COMPLETED"  # a warning, not a failure
    assert report["FailuresByCode"] == {}
    [warning] = [w for w in report["Warnings"] if w.endswith("[S3_PREFIX_NOT_FOLDER]")]
    assert warning.startswith(f"{url}: no trailing /")
    strict = validator.preflight(url, format="CSV", strict=True, settings=settings_for(s3_env))
    assert strict.to_dict()["JobStatus"] == "FAILED"


def test_local_folder_order_matches_s3_key_order(s3_env: S3Server, tmp_path: Path) -> None:
    """S3 (and so Pinpoint) reads keys in the order of their bytes: 'a.csv', 'a/x.csv', then
    'b.csv'. A folder read in walk order, or a server listing folders first, would differ in
    duplicate-Id attribution and the order of Failures."""
    import validator

    defects = (EXAMPLES / "endpoints.csv").read_bytes()
    tree = {"job/a/x.csv": defects, "job/b.csv": defects, "job/a.csv": defects}
    bucket = upload_and_write(s3_env, tree, tmp_path)
    local = validator.preflight(f"{tmp_path}/job/", format="CSV").to_dict()
    remote = validator.preflight(
        f"s3://{bucket}/job/", format="CSV", settings=settings_for(s3_env)
    ).to_dict()
    assert comparable(remote, f"s3://{bucket}/job/") == comparable(local, f"{tmp_path}/job/")


def test_same_report_in_pieces_from_worker_processes(s3_env: S3Server, tmp_path: Path) -> None:
    import validator

    rows = [b"Id,ChannelType,Address,Metrics.visits\n"]
    rows += [
        b"ep-%07d,%s,+1206%07d,%d\n" % (i, b"sms" if i % 9973 == 0 else b"SMS", i, i % 50)
        for i in range(600_000)
    ]
    body = b"".join(rows)
    assert len(body) > 16 << 20  # past the engine's in-process threshold: workers start
    bucket = upload_and_write(s3_env, {"big/all.csv": body}, tmp_path)
    options: dict[str, Any] = {"format": "CSV", "pieces": 4, "workers": 2}
    local = validator.preflight(f"{tmp_path}/big/", **options).to_dict()
    remote = validator.preflight(
        f"s3://{bucket}/big/", settings=settings_for(s3_env), **options
    ).to_dict()
    assert remote["TotalPieces"] == 4 and remote["TotalProcessed"] == 600_000
    assert remote["TotalFailures"] == len(range(0, 600_000, 9973))
    assert comparable(remote, f"s3://{bucket}/big/") == comparable(local, f"{tmp_path}/big/")
    assert [p["ByteRange"] for p in remote["Pieces"]] == [p["ByteRange"] for p in local["Pieces"]]


def cli(*args: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "validator", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_cli_validates_s3(s3_env: S3Server, tmp_path: Path) -> None:

    bucket = upload_and_write(s3_env, job_tree(), tmp_path)
    url = f"s3://{bucket}/job/"
    done = cli(
        "validate", url, "--format", "CSV", "--endpoint-url", s3_env.endpoint_url, "--no-progress"
    )
    assert done.returncode == 1, done.stderr  # the files hold failures
    report = json.loads(done.stdout)
    assert report["JobStatus"] == "FAILED"
    assert report["Definition"]["S3Url"] == url
    assert report["Failures"][0].startswith(f"{url}a-endpoints.csv:")
    clean = cli(
        "validate",
        f"s3://{bucket}/job/sub/aws.csv",
        "--endpoint-url",
        s3_env.endpoint_url,
        "--no-progress",
    )
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["TotalProcessed"] == 5


def assert_cli_error(done: Any, code: int, *words: str) -> None:
    assert done.returncode == code, done.stderr
    if code == 254 and done.stdout:  # S3's error as JSON, for a pipeline (cli._error_document)
        assert set(json.loads(done.stdout)) == {"Error"}
    else:
        assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0]


def test_cli_configuration_errors(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "s3://some-bucket/job/"
    unknown = cli(
        "validate",
        url,
        "--format",
        "CSV",
        "--endpoint-url",
        s3_env.endpoint_url,
        "--profile",
        "no-such-profile",
    )
    assert_cli_error(unknown, 253, "'no-such-profile'", "--profile")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    none = cli("validate", url, "--format", "CSV", "--endpoint-url", s3_env.endpoint_url)
    assert_cli_error(none, 253, "no AWS credentials", url)


def test_cli_source_errors(s3_env: S3Server, tree_bucket: str) -> None:
    missing = f"s3://no-such-bucket-pp-{int(time.time())}/job/"
    assert_cli_error(
        cli("validate", missing, "--format", "CSV", "--endpoint-url", s3_env.endpoint_url),
        254,
        "no such bucket",
        missing,
    )
    nothing = f"s3://{tree_bucket}/no/such/prefix/"
    # Nothing below a prefix is an empty job, as an empty local folder is: JOB_EMPTY, exit 1.
    empty = cli("validate", nothing, "--format", "CSV", "--endpoint-url", s3_env.endpoint_url)
    assert (empty.returncode, empty.stderr) == (1, "")
    assert json.loads(empty.stdout)["JobFailures"] == [
        f"{nothing}: no CSV file to read: no object at or below {nothing}; check the bucket, "
        "the key or prefix, and --endpoint-url or --region [JOB_EMPTY]"
    ]
    port = closed_port()
    assert_cli_error(
        cli(
            "validate",
            f"s3://{tree_bucket}/data/",
            "--format",
            "CSV",
            "--endpoint-url",
            f"http://127.0.0.1:{port}",
        ),
        254,
        f"http://127.0.0.1:{port}",
        "--endpoint-url",
    )


def test_cli_access_denied(
    s3_env: S3Server, tree_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not s3_env.enforces_permissions:
        pytest.skip(f"{s3_env.name} does not enforce permissions")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LIST_ONLY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LIST_ONLY[1])
    done = cli(
        "validate",
        f"s3://{tree_bucket}/data/",
        "--format",
        "CSV",
        "--endpoint-url",
        s3_env.endpoint_url,
    )
    assert_cli_error(done, 254, "access denied", f"s3://{tree_bucket}/data/")
    assert LIST_ONLY[1] not in done.stderr and LIST_ONLY[0] not in done.stderr
