"""The MAIL/RCPT address parser's fast path (smtp_common.AdmittedSMTP) answers exactly as aiosmtpd's own,
for plain addresses and for everything it hands over to aiosmtpd (quoted parts, literals, comments)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given
from hypothesis import strategies as st

from typoguard.servers.smtp import AdmittedSMTP

PIECES = ["a", "Bob.Smith", "x+tag", "a_b", "é", "a..b", '"q q"', "", "@", ".", "<", ">", " ", "\t",
          "(c)", '"', "\\", "b.c", "navy.mil", "[10.0.0.1]", "-x", "SIZE=10240", "BODY=8BITMIME", "SMTPUTF8",
          "=", ";", ","]  # fmt: skip


@pytest.fixture(scope="module")
def parsers() -> Iterator[tuple[SMTP, AdmittedSMTP]]:
    loop = asyncio.new_event_loop()
    yield SMTP(object(), loop=loop), AdmittedSMTP(object(), loop=loop)
    loop.close()


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("<bob@navy.mil>", ("bob@navy.mil", "")),
        ("<bob@navy.mil> SIZE=10240 BODY=8BITMIME", ("bob@navy.mil", "SIZE=10240 BODY=8BITMIME")),
        ("<bob@navy.mil> (a comment)", ("bob@navy.mil", "")),
        ('<"bob smith"@navy.mil>', ('"bob smith"@navy.mil', "")),
        ("<bob@[10.0.0.1]>", ("bob@[10.0.0.1]", "")),
        ("<bob@navy.mil> <x@y.z>", ("bob@navy.mil", "<x@y.z>")),
    ],
)
def test_known_answers(parsers: tuple[SMTP, AdmittedSMTP], arg: str, expected: tuple[str, str]) -> None:
    _, ours = parsers
    assert ours._getaddr(arg) == expected


@given(st.lists(st.sampled_from(PIECES), max_size=10), st.booleans())
def test_same_answer_as_aiosmtpd(parsers: tuple[SMTP, AdmittedSMTP], pieces: list[str], angle: bool) -> None:
    theirs, ours = parsers
    text = "".join(pieces)
    arg = (f"<{text}" if angle else text).strip()
    if angle and "@" in text:  # most generated arguments are then plain paths, some with parameters
        local, _, rest = text.partition("@")
        arg = f"<{local}@{rest.split(' ', 1)[0]}>{' ' + rest.split(' ', 1)[1] if ' ' in rest else ''}".strip()
    assert outcome(ours, arg) == outcome(theirs, arg)


def outcome(parser: SMTP, arg: str) -> object:
    """The answer, or the exception (aiosmtpd's parser raises IndexError for ``<a@b`` - the session's
    exception handler answers it - and the fast path must hand it over unchanged)."""
    try:
        return parser._getaddr(arg)
    except Exception as exc:  # compared, not handled
        return type(exc)
