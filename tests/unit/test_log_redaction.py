"""observability's one redaction of text that may hold a credential, and the libraries' loggers held at WARNING
(tests/integration/test_logging.py runs both through the handler)."""

from __future__ import annotations

import logging
import secrets

import pytest
from guest_token import observability

ACCESS_TOKEN = secrets.token_urlsafe(48)


def test_library_loggers_are_quiet_in_this_process_too() -> None:
    # The handler module is imported (conftest): whatever the root logger's level, theirs is WARNING.
    for name in observability.LIBRARY_LOGGERS:
        assert logging.getLogger(name).level == logging.WARNING, name
        assert logging.getLogger(f"{name}.anything").getEffectiveLevel() == logging.WARNING, name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invalid header value b'Bearer abc.def-ghi\\r\\nX: 1'", "Invalid header value b'[credentials] 1'"),
        ("header: basic ZGVtbzpzZWNyZXQ=, next", "header: [credentials], next"),
        (f"token {ACCESS_TOKEN} refused", "token [redacted] refused"),
        ("session 3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b gone", "session [redacted] gone"),
        ("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt [redacted]"),
        # Words, dotted names and short values are left as they are: the message must still say something.
        ("HTTPSConnectionPool(host='api.example', port=443)", "HTTPSConnectionPool(host='api.example', port=443)"),
        ("module 'guest_token.sources' has no attribute 'x'", "module 'guest_token.sources' has no attribute 'x'"),
        ("no\r\nnewline\x00", "no??newline?"),
    ],
    ids=["bearer", "basic", "token", "uuid", "jwt", "host", "dotted-name", "unprintable"],
)
def test_redacted_replaces_credentials_and_token_like_runs(text, expected):
    assert observability.redacted(text) == expected


def test_redacted_leaves_no_piece_of_a_credential_at_the_cut():
    # The credential straddles the cut: it is replaced first, so no piece of it is left at the end.
    text = "word " * (observability.MAX_LOGGED_CHARS // 5 - 2) + f"Bearer {ACCESS_TOKEN}"
    shown = observability.redacted(text)
    words = "word " * (observability.MAX_LOGGED_CHARS // 5 - 2)
    # The count is of the text as redacted: what was cut off is a stand-in's end, never the credential's.
    assert shown == f"{words}[credentia...({len(words) + len('[credentials]')} chars)"
    assert not any(ACCESS_TOKEN[start : start + 12] in shown for start in range(len(ACCESS_TOKEN) - 11))
    assert observability.redacted(None) is None


@pytest.mark.parametrize(
    "spell",
    [
        lambda code: "".join(f"\\u{ord(char):04x}" for char in code),  # a JSON string's escapes, as Genesys may echo
        lambda code: "".join(f"&#{ord(char)};" for char in code),  # HTML character references
        lambda code: "".join(f"&#x{ord(char):X};" for char in code),
        lambda code: "".join(f"\\x{ord(char):02x}" for char in code),
        lambda code: "".join(f"%{ord(char):02X}" for char in code),
    ],
    ids=["json", "html-decimal", "html-hex", "python", "percent"],
)
def test_a_secret_echoed_escaped_is_still_masked(spell) -> None:
    code = secrets.token_urlsafe(24)
    text = f'Genesys said: invalid code "{spell(code)}" for this deployment'
    shown = observability.redacted(text, {code: "[authorization code]"}) or ""
    assert "[authorization code]" in shown
    alnum = "".join(char for char in code if char.isalnum())
    # No SECRET_WINDOW run of the code's letters and digits survives, in the text or once it is decoded.
    for start in range(len(alnum) - observability.SECRET_WINDOW + 1):
        piece = alnum[start : start + observability.SECRET_WINDOW]
        assert piece not in shown and spell(piece) not in shown
