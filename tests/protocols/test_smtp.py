"""protocols/smtp.py: what an SMTP reply line may hold, and dot-stuffing (RFC 5321), without I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typoguard.protocols.smtp import (
    MAX_REPLY_LINE,
    dot_stuff,
    dot_unstuff,
    printable_ascii,
    repaired_reply,
    reply_problem,
    smtp_text,
)


def test_reply_text_is_one_line_of_printable_ascii_cut_with_an_ellipsis() -> None:
    assert printable_ascii("bob@ärmy.ml\x00\r\n") == "bob@?rmy.ml???"
    assert smtp_text("bob@ärmy.ml\x00") == "bob@?rmy.ml?"
    assert smtp_text("x" * 1000) == "x" * 397 + "..."
    assert smtp_text("y" * 20, 10) == "yyyyyyy..." and smtp_text("y" * 10, 10) == "y" * 10


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"", "empty"),
        (b"hello", "no reply code"),
        (b"250 " + b"x" * 600, "longer than 510"),
        (b"250 a\r\nb", "a line end inside"),
        (b"250 a\x00b", "a control character"),
        (b"250 caf\xc3\xa9", "not ASCII"),
    ],
)
def test_what_is_no_reply_line(line: bytes, problem: str) -> None:
    assert (reply_problem(line) or "").startswith(problem)


def test_a_reply_with_an_intact_code_is_repaired_and_one_without_is_not() -> None:
    assert reply_problem(b"250 2.0.0 Ok") is None and reply_problem(b"250") is None
    assert reply_problem(b"250 caf\xc3\xa9", utf8=True) is None  # SMTPUTF8
    assert repaired_reply(b'500 Error: command "\xc3\xa9\x01" not recognized') == (
        b'500 Error: command "??" not recognized'
    )
    long = repaired_reply(b"550 " + "é".encode() * 600)
    assert long is not None and len(long) == MAX_REPLY_LINE and long.endswith(b"...")
    assert reply_problem(long) is None
    assert repaired_reply(b"hello") is None and repaired_reply(b"250 a\r\nb") is None


def test_dot_stuffing() -> None:
    assert dot_stuff(b".hidden\n..two\r\nplain\r.x") == b"..hidden\r\n...two\r\nplain\r\n..x\r\n"
    assert dot_stuff(b"") == b""
    assert dot_unstuff(b"..hidden\r\n...two\r\nplain\r\n") == b".hidden\r\n..two\r\nplain\r\n"


@given(st.lists(st.lists(st.sampled_from([b".", b"..", b"a", b" "]), max_size=6).map(b"".join), max_size=5))
def test_unstuffing_undoes_stuffing(lines: list[bytes]) -> None:
    body = b"".join(line + b"\r\n" for line in lines)
    assert dot_unstuff(dot_stuff(body)) == body
