"""The one redaction: every message printed and every report or log file written passes here.

Masked, whatever a server echoes back or a user mistypes:

- the credential values in use: the access key id, secret key and session token from the
  standard variables, and those of every boto3 session the tool builds (a profile's, an SSO
  role's...), registered by :func:`register_session`;
- any ``user:password@`` in a URL (``--endpoint-url http://AKIA...:secret@host``), and the user
  and password themselves wherever else they appear;
- anything shaped like an AWS access key id (``AKIA...``, ``ASIA...``).

Records copied by ``split`` (pieces and rejects) are the user's own bytes and are not changed:
they must reproduce the input exactly.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import IO, Any
from urllib.parse import unquote

MASK = "****"
# Values shorter than this are not credentials anyone uses, and masking them would garble text.
MIN_SECRET = 4
_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA|ABIA|ACCA)[A-Z0-9]{12,}\b")
# scheme://user:password@ (the password may be empty; the user may hold anything but / @ space)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s@]*)@")

_MAYBE = re.compile(rb"@|AKIA|ASIA|AROA|AIDA|ABIA|ACCA")

_lock = threading.Lock()
_registered: set[str] = set()


def register(*values: str | None) -> None:
    """Mask these values from now on in this process (credentials met while running)."""
    with _lock:
        for v in values:
            if v and len(v) >= MIN_SECRET:
                _registered.add(v)
                if unquote(v) != v:
                    _registered.add(unquote(v))


def register_session(session: Any) -> None:
    """Register the credentials a boto3 session resolves to (never fails: masking is extra)."""
    try:
        creds = session.get_credentials()
        if creds is None:
            return
        frozen = creds.get_frozen_credentials()
        register(frozen.access_key, frozen.secret_key, frozen.token)
    except Exception:  # resolving fails later, where it is reported
        return


def register_url(url: str | None) -> None:
    """Register the user and password of ``scheme://user:password@host`` URLs in ``url``."""
    if not url:
        return
    for m in _USERINFO.finditer(url):
        user, _, password = m.group(2).partition(":")
        register(user, password)


def _secrets() -> list[str]:
    values = set(_registered)
    for name in _ENV:
        v = os.environ.get(name)
        if v and len(v) >= MIN_SECRET:
            values.add(v)
    return sorted(values, key=len, reverse=True)  # a longer value first: no half-masked key


def text(message: str) -> str:
    """``message`` with every credential value and URL userinfo masked."""
    out = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", message)
    for s in _secrets():
        if s in out:
            out = out.replace(s, MASK)
    return _ACCESS_KEY_ID.sub(MASK, out)


def data(raw: bytes) -> bytes:
    """The same for bytes (UTF-8 text the tool writes: failure logs, reasons, the manifest)."""
    if not raw:
        return raw
    if not _MAYBE.search(raw) and not any(s.encode() in raw for s in _secrets()):
        return raw
    return text(raw.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


class Writer:
    """A binary file that masks each ``write`` (a whole line or document at a time)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner

    def write(self, raw: bytes | bytearray | memoryview) -> int:
        self.inner.write(data(bytes(raw)))
        return len(raw)

    def flush(self) -> None:
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def echo(message: str, *, err: bool = False) -> None:
    """Print one message (a report, an error line) on stdout or stderr, masked."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text(message) + "\n")
    stream.flush()
