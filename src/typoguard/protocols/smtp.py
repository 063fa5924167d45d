"""SMTP without I/O (RFC 5321): what a reply line may hold, and the message body's dot-stuffing.

One of each, for every part that speaks SMTP: the decision's refusal texts and headers (``typoguard.decide``,
for Postfix, the relay and a milter alike), the reply writer of the SMTP servers (``servers.smtp``), the
relay's session with its next hop and the sink's answers.
"""

from __future__ import annotations

import re
from typing import Final

# RFC 5321 4.2: a reply line is a code 2xx-5xx, then a space (the last line) or a hyphen and printable text,
# or the code alone; 512 octets at most with its CRLF (4.5.3.1.5). UTF-8 text only in an SMTPUTF8
# transaction (RFC 6531 3.7.4.2).
REPLY_LINE: Final = re.compile(rb"[2-5][0-5][0-9](?:[ -][\x20-\x7e]*)?")
MAX_REPLY_LINE: Final = 510
# What a reply's text may take when an MTA puts its own words in front of it (Postfix: "<rcpt>: Recipient
# address rejected: "), well within a line.
MAX_REPLY_TEXT: Final = 400
_PERIOD: Final = re.compile(rb"(?m)^\.")
_LINE_ENDS: Final = re.compile(rb"\r\n|\r|\n")


def printable_ascii(text: str) -> str:
    """``text`` with every character but printable ASCII (space to tilde) written as "?": what an SMTP
    reply or a header line can carry outside SMTPUTF8, whatever a peer sent."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)


def smtp_text(text: str, limit: int = MAX_REPLY_TEXT) -> str:
    """One line of printable ASCII (``printable_ascii``), at most ``limit`` characters: a longer one is cut
    and ends in "..."."""
    if not (text.isascii() and text.isprintable()):  # (printable_ascii, inlined: once per refusal)
        text = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def reply_problem(line: bytes, *, utf8: bool = False) -> str | None:
    """Why ``line`` (without its CRLF) must not go out as an SMTP reply line, or None when it may."""
    if not line:
        return "empty"
    if REPLY_LINE.fullmatch(line[:4]) is None:
        return "no reply code (2xx-5xx, then a space or a hyphen)"
    if len(line) > MAX_REPLY_LINE:
        return f"longer than {MAX_REPLY_LINE} octets"
    if REPLY_LINE.fullmatch(line) is not None:
        return None
    if b"\r" in line or b"\n" in line:
        return "a line end inside"
    if line.isascii():
        return "a control character"
    if not utf8:
        return "not ASCII (and no SMTPUTF8)"
    try:
        text = line[4:].decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    return None if text.isprintable() else "a control character"


def repaired_reply(line: bytes) -> bytes | None:
    """A reply line with an intact code but odd text (``reply_problem`` found one): the code is its meaning,
    so the text is made printable ASCII and the line cut to ``MAX_REPLY_LINE`` octets. None when the line
    has no code or holds a line end: no reply can be made of it."""
    if REPLY_LINE.fullmatch(line[:4]) is None or b"\r" in line or b"\n" in line:
        return None
    text = smtp_text(line[4:].decode("utf-8", "replace"), MAX_REPLY_LINE - 4)
    return line[:4] + text.encode("ascii")


def dot_stuff(body: bytes) -> bytes:
    """``body`` as DATA sends it (RFC 5321 4.5.2): CRLF line ends, a second dot before each line starting
    with one, ending in CRLF (the end mark ``.`` CRLF is the caller's)."""
    out = _PERIOD.sub(b"..", _LINE_ENDS.sub(b"\r\n", body))
    return out if out.endswith(b"\r\n") or not out else out + b"\r\n"


def dot_unstuff(wire: bytes) -> bytes:
    """The body a client meant, from the CRLF-ended lines it sent after DATA (without the end mark): the
    dot it put before each line starting with one is taken away."""
    return (b"\r\n" + wire).replace(b"\r\n..", b"\r\n.")[2:]
