"""Content sensitivity detectors: what counts, what does not, and that only counts come out."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typoguard.content import CATEGORIES, scan_message, scan_text
from typoguard.content.identifiers import luhn_ok, ssn_is_valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SECRET//NOFORN\nplan\n", {"classified": 1}),
        ("TOP SECRET\nthe plan", {"classified": 1}),
        ("(S//NF) troops move at dawn", {"classified": 1}),
        ("CUI//SP-PRVCY\nroster", {"cui": 1}),
        ("(U//FOUO) roster attached", {"cui": 1}),
        ("This is For Official Use Only.", {"cui": 1}),
        ("SSN: 123-45-6780", {"ssn": 1}),
        ("social security number 234567890", {"ssn": 1}),
        ("card 4111 1111 1111 1111 exp 12/27", {"payment_card": 1}),
        ("amex 3782-822463-10005", {"payment_card": 1}),
        ("Passport No. 123456789", {"passport": 1}),
        ("P<USASMITH<<JOHN<<<<<<<<<<<<<<<<<<<<<<<<<<<", {"passport": 1}),
        ("password: Tr0ub4dor&3", {"credential": 1}),
        ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", {"credential": 1}),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", {"credential": 1}),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", {"credential": 1}),
        ("Itinerary:\nDL 4032 IAD-BKO 14:35\nAF 123 BKO to CDG 23:10\n", {"itinerary": 2}),
        ("Your flight UA 918 departs 09:40 from gate C7", {"itinerary": 1}),
    ],
)
def test_detects(text: str, expected: dict[str, int]) -> None:
    assert scan_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "We keep a secret recipe. The confidential report is ready.",
        "UNCLASSIFIED",
        "Call 555-123-4567 about order 4111-1111.",
        "SSN 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567, 078-05-1120",  # never issued / ads
        "card 4111 1111 1111 1112",  # Luhn fails
        "card 1234 5678 9012 3456",  # no network
        "The password policy is strict. Password: see below",
        "Meet at 10:30, room AB1234, flight of stairs on the left",  # no segment
        "My passport is in the drawer",
    ],
)
def test_does_not_count(text: str) -> None:
    assert scan_text(text) == {}


def test_ssn_and_luhn_rules() -> None:
    assert ssn_is_valid("123", "45", "6780")
    assert not ssn_is_valid("123", "45", "6789")  # the placeholder of every form
    assert not ssn_is_valid("900", "45", "6789") and not ssn_is_valid("123", "45", "0000")
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_message_parts_decoded_and_attachments_counted() -> None:
    msg = EmailMessage()
    msg["Subject"] = "=?utf-8?q?SECRET//NOFORN?="
    msg.set_content("My SSN is 123-45-6780\n", charset="utf-8", cte="base64")
    msg.add_attachment("card 4111111111111111\n", filename="card.txt")
    msg.add_attachment(b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="x.pdf")
    report = scan_message(msg.as_bytes())
    assert report.counts == {"classified": 1, "ssn": 1, "payment_card": 1}
    assert report.unscanned_parts == 1 and not report.truncated


def test_a_charset_the_email_package_trips_over_is_still_scanned() -> None:
    """An RFC 2231 charset parameter on a non-ASCII body made the ``email`` package raise TypeError: the
    relay's scan failed and the message went by the ``on_error`` rule instead of being scanned."""
    raw = b"Content-Type: text/plain; charset*=utf-8''x\r\n\r\ncaf\xc3\xa9\r\nSECRET//NOFORN\r\n"
    assert scan_message(raw).counts == {"classified": 1}
    multi = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; "
             b"charset*=utf-8''x\r\n\r\ncaf\xc3\xa9\r\nSECRET//NOFORN\r\n--b--\r\n")  # fmt: skip
    assert scan_message(multi).counts == {"classified": 1}


def test_budget_and_garbage() -> None:
    big = b"Subject: x\r\n\r\n" + b"a" * 5000 + b"\r\nSSN 123-45-6780\r\n"
    report = scan_message(big, max_bytes=1000)
    assert report.truncated and "ssn" not in report.counts
    assert scan_message(b"\xff\xfe\x00garbage\r\n\r\n\xc3(").counts == {}


def test_multiparts_nested_deeper_than_the_email_package_recurses_are_still_scanned() -> None:
    depth = 2_000  # the package recursed once per level: RecursionError at ~1,000
    raw = (
        b"Subject: forms\r\nMIME-Version: 1.0\r\n"
        + b"".join(
            b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth)
        )
        + b"Content-Type: text/plain\r\n\r\nMy SSN is 123-45-6780.\r\n"
        + b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    )
    assert scan_message(raw).counts == {"ssn": 1}


@given(st.binary(max_size=2000))
def test_never_raises_and_reports_only_counts(raw: bytes) -> None:
    report = scan_message(raw)
    data = report.to_dict()
    assert set(data["counts"]) <= set(CATEGORIES)
    assert all(isinstance(v, int) and v > 0 for v in data["counts"].values())


MARKING_PIECES = ["SECRET", "TOP SECRET", "CONFIDENTIAL", "//NOFORN", "NOFORN", "/ORCON", "REL TO USA",
                  "(TS)", "(S//NF)", "(C//REL TO USA, GBR)", "(U//FOUO)", "CUI", "CUI//SP-PRVCY", "(CUI)",
                  "FOUO", "For Official Use Only", "controlled unclassified information",
                  "for offıcial use only", "LAW ENFORCEMENT SENSITIVE", "LIMITED DISTRIBUTION", "Report",
                  "USA",
                  "ok", " ", "  ", "\t", "\n", "\r\n", "> ", "/", "(", ")", "x", "ı", "ſ"]  # fmt: skip


@given(st.lists(st.sampled_from(MARKING_PIECES), max_size=30))
def test_markings_on_anchor_lines_count_as_on_the_whole_text(pieces: list[str]) -> None:
    """Only lines with an anchor are given to the marking patterns: the counts are those of the whole text."""
    from typoguard.content.markings import _CLASSIFIED, _CUI, count_classified, count_cui
    from typoguard.content.prepared import Prepared

    text = "".join(pieces)
    assert count_classified(Prepared(text)) == sum(1 for _ in _CLASSIFIED.finditer(text))
    assert count_cui(Prepared(text)) == sum(1 for _ in _CUI.finditer(text))


ANCHOR_PIECES = ["SECRET", "secret", "Secret", "REL", "rel", "(S", "(s", "P<", "p<", "PRIVATE KEY",
                 "pass", "passport", "PASSWORD", "api_key", "api key", "secretoken", "pwd", "token", "flight",
                 "İ", "ı", "é", "K", "ß", "x", " ", "\n", "=", ":"]  # fmt: skip


def _all_starts(haystack: str, needle: str) -> list[int]:
    out, pos = [], haystack.find(needle)
    while pos >= 0:
        out.append(pos)
        pos = haystack.find(needle, pos + 1)
    return out


@given(st.lists(st.sampled_from(ANCHOR_PIECES), max_size=40))
def test_one_pass_anchors_are_where_find_finds_them(pieces: list[str]) -> None:
    """The one Aho-Corasick pass over the lower-case text finds every anchor where ``str.find`` does, and
    the keyword lines start where the credential keyword pattern's ``finditer`` over the text does."""
    from typoguard.content.credentials import _KEYWORD, _keyword_starts
    from typoguard.content.prepared import ANCHORS, Prepared

    text = "".join(pieces)
    p = Prepared(text)
    for anchor in ANCHORS:
        assert p.occurrences(anchor) == _all_starts(text, anchor)
        assert p.folded_occurrences(anchor.lower()) == _all_starts(text.lower(), anchor.lower())
    assert _keyword_starts(p) == [m.start() for m in _KEYWORD.finditer(text.lower())]


def test_every_detector_anchor_is_listed() -> None:
    from typoguard.content import credentials, itinerary, markings
    from typoguard.content.prepared import ANCHORS

    asked = (*markings._CLASSIFIED_ANCHORS, *markings._CUI_ANCHORS, *markings._CUI_WORDS,
             *credentials._KEYWORD_ANCHORS, *itinerary._ANCHORS, "PRIVATE KEY", "passport", "P<")  # fmt: skip
    assert set(asked) <= set(ANCHORS)


NUMBER_PIECES = ["1", "23", "456", "7890", "4111", "123-45-6780", "123 45 6780", " ", "-", "\t", "x", "\n",
                 "٣"]  # fmt: skip


@given(st.lists(st.sampled_from(NUMBER_PIECES), max_size=30))
def test_numbers_the_shape_rules_out_are_not_there(pieces: list[str]) -> None:
    """``long_numbers`` is False only where neither the card nor the formatted SSN pattern matches."""
    from typoguard.content.identifiers import _CARD, _SSN_FORMATTED
    from typoguard.content.prepared import Prepared

    text = "".join(pieces)
    if not Prepared(text).long_numbers:
        assert _CARD.search(text) is None and _SSN_FORMATTED.search(text) is None


BODIES = [
    b"",
    b"SECRET//NOFORN\r\nplan\r\n",
    b"password: Tr0ub4dor&3\r\n",
    "caf\u00e9 SSN 123-45-6780".encode(),
    "caf\u00e9".encode("latin-1"),
    b"=53ECRET//NOFORN\r\n",
]
FIELD_NAMES = ["Subject", "subject", "From", "Content-Type", "content-type", "Content-Transfer-Encoding",
               "X-Y", "From ", "", "Bad Name"]  # fmt: skip
FIELD_VALUES = ["hello", "", " =?utf-8?q?SECRET?= x", "text/plain", "TEXT/Plain; charset=UTF-8",
                'text/html; charset="ISO-8859-1"', "text/plain;\r\n\tformat=flowed; charset=latin1",
                "text/plain; charset*=utf-8''x", "text/plain; Charset = latin1",
                "text/plain; charset=nonesuch", 'text/plain; name="a;charset=x"', "text; charset=latin1",
                "multipart/mixed; boundary=x", "application/pdf", "7bit", "8BIT ", "base64",
                "quoted-printable", "caf\u00e9", "a\rb", "a\nb", "x\r\n y", "x\r\n\r\n y"]  # fmt: skip
FIELDS = st.tuples(st.sampled_from(FIELD_NAMES), st.sampled_from([":", ": ", ":\t", " :"]),
                   st.sampled_from(FIELD_VALUES),
                   st.sampled_from(["", "\r\n continued", "\r\n\tmore", "\n x"]))  # fmt: skip
HEADS = st.one_of(
    st.lists(FIELDS, max_size=6).map(lambda fs: "".join(f"{n}{c}{v}{more}\r\n" for n, c, v, more in fs)),
    st.lists(st.sampled_from([" x", "\tx", "\r\n", "\n", "Subject: a", "é"]), max_size=6).map("".join),
)  # fmt: skip


def _package_parts(raw: bytes) -> tuple[str | None, list[tuple[bytes, str | None] | None]]:
    """The Subject and the leaf parts (decoded payload and charset, None for a non-text part) as the
    ``email`` package reads them: what ``scan_message`` used for every message before its fast path."""
    import email

    msg = email.message_from_bytes(raw)
    subject = msg.get("Subject")
    parts: list[tuple[bytes, str | None] | None] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_content_maintype() != "text":
            parts.append(None)
            continue
        parts.append((part.get_payload(decode=True), part.get_content_charset()))
    return (None if subject is None else str(subject)), parts


def _reference_report(raw: bytes) -> object:
    from email.header import decode_header, make_header

    from typoguard.content import ContentReport

    subject, parts = _package_parts(raw)
    pieces, unscanned = [], 0
    if subject:
        try:
            pieces.append(str(make_header(decode_header(subject))))
        except (ValueError, LookupError, UnicodeError):
            pieces.append(subject)
    for part in parts:
        if part is None:
            unscanned += 1
            continue
        payload, charset = part
        try:
            pieces.append(payload.decode(charset or "utf-8", "replace"))
        except LookupError:
            pieces.append(payload.decode("utf-8", "replace"))
    text = "\n".join(pieces)
    return ContentReport(scan_text(text), len(text), False, unscanned)


def _same_as_the_package(raw: bytes) -> bool:
    """The fast path reads ``raw`` as the package does (or leaves it to the package); the same report."""
    from typoguard.content.scan import _fast_parts

    fast = _fast_parts(raw)
    if fast is not None:
        assert fast == _package_parts(raw)
    assert scan_message(raw) == _reference_report(raw)
    return fast is not None


@given(HEADS, st.sampled_from(BODIES))
def test_plain_messages_read_without_the_email_package_as_with_it(head: str, body: bytes) -> None:
    _same_as_the_package((head + "\r\n").encode() + body)


LEAF_HEADS = ["", "Content-Type: text/plain", "Content-Type: text/html; charset=\"utf-8\"",
              "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable",
              "Content-Transfer-Encoding: base64",
              "Content-Type: text/plain\r\nContent-Transfer-Encoding: Base64",
              "Content-Transfer-Encoding: quoted-printable ", "Content-Transfer-Encoding: x-uuencode",
              "Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64",
              "Content-Type: message/rfc822", "Content-Type: text/plain\n", "X-Note: hello"]  # fmt: skip
LEAF_BODIES = [b"SECRET//NOFORN\r\nplan", b"U0VDUkVULy9OT0ZPUk4K", b"U0VDUkVUL\r\ny9OT0ZPUk4K", b"U0VDUkVU",
               b"=53ECRET//NOFORN=\r\n\r\nnext", "caf\u00e9 SSN 123-45-6780".encode(), b"", b"--b\r\n--bX",
               b"x\ry", b"line\nline", b"Subject: not a header", b"x\n--b\r\ny"]  # fmt: skip
BOUNDARIES = ["b", "b1", '"a b "', '"=_Part_1.2/x"', "bX", '"b"']


@st.composite
def mime(draw: st.DrawFn, depth: int = 0) -> tuple[str, bytes]:
    """(Content-Type line or other leaf head, body) of a generated entity: leaves, and multiparts of them
    with preambles, epilogues, nesting, and the odd delimiters the package still accepts."""
    if depth < 2 and draw(st.booleans()):
        quoted = draw(st.sampled_from(BOUNDARIES))
        boundary = quoted.strip('"').rstrip().encode()
        children = draw(st.lists(mime(depth + 1), min_size=1, max_size=3))
        out = draw(st.sampled_from([b"", b"This is a multi-part message.\r\n"]))
        for head, body in children:
            out += b"--" + boundary + draw(st.sampled_from([b"\r\n"] * 6 + [b"  \r\n", b"\n"]))
            out += (head + "\r\n\r\n").encode() if head else b"\r\n"
            out += body + b"\r\n"
        out += draw(
            st.sampled_from([b"--" + boundary + b"--", b"--" + boundary + b"--\r\nepilogue\r\n", b""])
        )
        kind = draw(st.sampled_from(["alternative", "mixed", "related", "digest"]))
        return f"Content-Type: multipart/{kind};\r\n\tboundary={quoted}", out
    return draw(st.sampled_from(LEAF_HEADS)), draw(st.sampled_from(LEAF_BODIES))


@settings(max_examples=500)
@given(mime(), st.sampled_from(["", "Subject: Report\r\n", "Subject: =?utf-8?q?SECRET?=\r\n"]))
def test_mime_messages_read_without_the_email_package_as_with_it(
    entity: tuple[str, bytes], subject: str
) -> None:
    head, body = entity
    raw = f"From: a@army.mil\r\n{subject}MIME-Version: 1.0\r\n{head}\r\n\r\n".encode() + body
    _same_as_the_package(raw)


@pytest.mark.parametrize(
    "body",
    [
        b"--b\r\n\r\nSECRET//NOFORN\r\n--b--\r\n",  # the simplest: taken by the fast path
        b"pre\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\n--b\r\n\r\nSECRET//NOFORN\r\n--b--",  # bare LF
        b"--b  \r\n\r\nSECRET//NOFORN\r\n--b--\r\n",  # transport padding
        b"--b\r\n\r\nSECRET//NOFORN\r\n--b\r\n",  # no close delimiter
        b"--b\r\n\r\nSECRET//NOFORN\r\n--bX\r\nmore\r\n--b--\r\n",  # a line that only starts like one
        b"--b\r\n--b\r\n\r\nSECRET//NOFORN\r\n--b--\r\n",  # delimiters in a row
        b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nSECRET//NOFORN\r\n--c--\r\n"
        b"--b\r\n\r\n(U//FOUO) x\r\n--b--\r\n",  # nested
    ],
)
def test_hand_made_multiparts_read_as_the_email_package_reads_them(body: bytes) -> None:
    raw = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + body
    _same_as_the_package(raw)
    assert scan_message(raw).counts.get("classified")


def test_outlook_style_mail_is_read_by_the_fast_path() -> None:
    from email.message import EmailMessage
    from email.policy import SMTP

    m = EmailMessage(policy=SMTP)
    m["From"], m["To"], m["Subject"] = "alice@army.mil", "joe@gmail.net", "Roster"
    m.set_content("SECRET//NOFORN\nThe roster caf\u00e9.\n", cte="quoted-printable")
    m.add_alternative(
        "<p>SECRET//NOFORN</p><p>The roster caf\u00e9.</p>", subtype="html", cte="quoted-printable"
    )
    m.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    raw = m.as_bytes()
    assert _same_as_the_package(raw)  # the fast path took it
    report = scan_message(raw)
    assert report.counts == {"classified": 2} and report.unscanned_parts == 1  # both alternatives scanned


SHAPE_PIECES = [*ANCHOR_PIECES, "0", "12", "A", "’", "\u00a0", "\f", "\x00", "?"]


@given(st.lists(st.sampled_from(SHAPE_PIECES), max_size=60))
def test_shape_and_long_words_of_any_text(pieces: list[str]) -> None:
    """Non-ASCII text is translated through bytes (one NUL per character): the same as a per-character map."""
    from typoguard.content.prepared import _GAPS, _SHAPE, Prepared

    text = "".join(pieces) * 3
    p = Prepared(text)
    assert p.shape == "".join(chr(_SHAPE[ord(c)]) if c.isascii() else "\0" for c in text)
    gaps = "".join(chr(_GAPS[ord(c)]) if c.isascii() else "\0" for c in text)
    words, pos = [], gaps.find("x" * 20)
    while pos >= 0:
        end = gaps.find(" ", pos)
        end = len(text) if end < 0 else end
        words.append(text[pos:end])
        pos = gaps.find("x" * 20, end)
    assert p.long_words(20) == words
