"""One redaction: no credential value in use, and no user:password@ of a URL, reaches a printed
message, the report, --failures-out or a split's written reports, whatever a server echoes back
(tests/fault_proxy.py echoes the request's headers and a secret into its error) or a user
mistypes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import Fault, FaultProxy

from validator import cli, redact

HEADER = "Id,ChannelType,Address\n"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENvalue0123456789"


def test_the_values_masked(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t/with+chars")
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    text = (
        "key AKIAEXAMPLEKEY000001 secret s3cr3t/with+chars token "
        f"{TOKEN} url https://bob:hunter22@example.com/x and ASIAOTHERKEY00000001"
    )
    assert redact.text(text) == (
        "key **** secret **** token **** url https://****@example.com/x and ****"
    )
    assert redact.data(text.encode()) == redact.text(text).encode()
    redact.register_url("http://carol:pa55word@127.0.0.1:9000")
    assert redact.text("pa55word, carol") == "****, ****"
    assert redact.text("nothing to hide") == "nothing to hide"


@pytest.mark.s3
def test_a_server_echoing_credentials_is_masked_everywhere(s3_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)  # sent as X-Amz-Security-Token
    client = s3_env.client()
    bucket = s3_env.make_bucket("echo")
    client.put_object(
        Bucket=bucket, Key="in/a.csv", Body=(HEADER + "1,SMS,+12065550100\n").encode()
    )
    secrets = [s3_env.access_key, s3_env.secret_key, TOKEN]
    with FaultProxy(s3_env.endpoint_url) as proxy:
        proxy.add(
            Fault(
                "*",  # every request: SeaweedFS would refuse the made-up session token
                status=400,
                code="InvalidArgument",
                message=f"bad request signed with {s3_env.secret_key}",
                echo_headers=True,
                times=None,
            )
        )
        code = cli.run(["validate", f"s3://{bucket}/in/", "--endpoint-url", proxy.endpoint_url])
    out, err = capsys.readouterr()
    assert code == 254
    assert "bad request signed with ****" in err  # the server's words, masked
    assert "Credential=****/" in err  # the Authorization header it echoed
    assert len(err.splitlines()) == 1
    for s in secrets:
        assert s not in out + err


def test_credentials_in_the_data_are_masked_in_the_report_and_failures_out(
    tmp_path, capsys, monkeypatch
):
    """A record holding the secret (pasted into a file by mistake): the report and every file
    the tool writes about it mask it; the split's pieces and rejects copy the data unchanged."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    src = tmp_path / "in.csv"
    src.write_text(HEADER + f"1,SMS,{secret}\n2,SMS,+12065550100\n")
    args = ["split", str(src), "--to", str(tmp_path / "out"), "--valid-only"]
    args += [
        "--rejects",
        str(tmp_path / "rejects.csv"),
        "--failures-out",
        str(tmp_path / "f.jsonl"),
    ]
    assert cli.run(args) == 0  # the failed record went to the rejects: the gate passes
    out, err = capsys.readouterr()
    assert err == "" and secret not in out
    assert "Address: '****' is not E.164" in json.loads(out)["Failures"][0]
    problems = (tmp_path / "f.jsonl").read_text()
    assert secret not in problems and "'****'" in problems
    for written in ("out/manifest.txt", "rejects.csv.reasons.jsonl"):
        assert secret not in (tmp_path / written).read_text()
    # The records themselves are the user's bytes: copied exactly.
    assert (tmp_path / "rejects.csv").read_text() == HEADER + f"1,SMS,{secret}\n"


@pytest.mark.s3
def test_user_and_password_in_the_endpoint_url(s3_env, capsys):
    """--endpoint-url http://AKIA...:secret@127.0.0.1:port: whatever comes back, neither the
    user nor the password is printed."""
    user, password = "AKIAUSERINURL0000001", "pass-in-the-url"
    bucket = s3_env.make_bucket("url")
    with FaultProxy(s3_env.endpoint_url) as proxy:
        port = proxy.endpoint_url.rsplit(":", 1)[1]
        url = f"http://{user}:{password}@127.0.0.1:{port}"
        proxy.add(
            Fault("*", status=403, code="AccessDenied", message=url, echo_headers=True, times=None)
        )
        code = cli.run(["validate", f"s3://{bucket}/in/", "--endpoint-url", url])
        out, err = capsys.readouterr()
    assert code == 254 and len(err.splitlines()) == 1
    assert user not in out + err and password not in out + err
    # A mistyped one (no host) is a usage error, and says so without the password either.
    code = cli.run(["validate", "s3://b/in/", "--endpoint-url", f"http://{user}:{password}@"])
    out, err = capsys.readouterr()
    assert code == 252 and len(err.splitlines()) == 1
    assert user not in err and password not in err


def test_a_profiles_credentials_are_masked(aws_env: Path, tmp_path, capsys):
    """Credentials from a profile (not the environment) are masked once the session has them."""
    key, secret = "AKIAPROFILEKEY000001", "profile-secret-value-1234"
    (aws_env / "credentials").write_text(
        f"[p1]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
    )
    (aws_env / "config").write_text("[profile p1]\nregion = us-east-1\n")
    from validator import s3
    from validator.settings import AwsSettings

    s3.make_client(AwsSettings(profile="p1"))
    assert redact.text(f"echo {secret} and {key}") == "echo **** and ****"


def test_report_members_carry_no_userinfo(tmp_path, capsys):
    """A source path typed with a user:password@ URL in it is masked in the report too."""
    src = tmp_path / "in.csv"
    src.write_text(HEADER + "1,SMS,+12065550100\n")
    code = cli.run(["validate", str(src), "--query", "'see https://u:pw1234@h/'"])
    out: Any
    out, _ = capsys.readouterr()
    assert code == 0
    assert "pw1234" not in out and "https://****@h/" in out
