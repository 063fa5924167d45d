"""typoguard learn: Postfix log parsing (syslog, RFC 3339, maillog_file; plain and gzip) and learning."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from click.testing import CliRunner

from typoguard.audit.learn import deliveries, learn_files, parse_time
from typoguard.cli import main

SYSLOG = """\
Nov 26 16:47:37 mx postfix/smtpd[100]: 4F9D195432C: client=localhost[127.0.0.1]
Nov 26 16:47:38 mx postfix/qmgr[101]: 4F9D195432C: from=<alice@army.mil>, size=344, nrcpt=2 (queue active)
Nov 26 16:47:39 mx postfix/smtp[102]: 4F9D195432C: to=<bob@partner.org>, relay=mx.partner.org[1.2.3.4]:25, \
delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 Ok)
Nov 26 16:47:39 mx postfix/smtp[102]: 4F9D195432C: to=<carol@partner.org>, relay=none, delay=1, \
dsn=4.4.1, status=deferred (connect timed out)
Nov 26 16:47:40 mx postfix/smtp[102]: 4F9D195432C: to=<x@army.ml>, relay=mx.army.ml[5.6.7.8]:25, \
status=sent (250 Ok)
Nov 26 16:47:41 mx postfix/qmgr[101]: 4F9D195432C: removed
Nov 26 16:47:42 mx postfix/smtp[102]: 5A0E295432D: to=<dave@partner.org>, relay=x, status=bounced (550 no)
"""

RFC3339 = """\
2026-11-26T16:47:38.123456+00:00 mx postfix/qmgr[101]: 4Nk2Xb1QZgz9sTk: from=<eve@navy.mil>, size=1, nrcpt=1
2026-11-26T16:47:39.5+00:00 mx postfix/smtp[102]: 4Nk2Xb1QZgz9sTk: to=<frank@other.org>, \
relay=r, status=sent (ok)
"""

# Postfix's own maillog_file (postlogd): syslog-like, microseconds; a multi-instance name.
MAILLOG_FILE = """\
Nov 26 16:47:38.362613 mx postfix-out/qmgr[101]: 7B1C2D3E4F: from=<gina@army.mil>, size=1, \
nrcpt=1 (queue active)
Nov 26 16:47:39.000001 mx postfix-out/lmtp[102]: 7B1C2D3E4F: to=<hal@third.org>, orig_to=<h@third.org>, \
relay=r, status=sent (ok)
"""


def test_syslog_only_sent_counts() -> None:
    now = time.mktime((2026, 12, 1, 0, 0, 0, 0, 0, -1))
    found = list(deliveries(SYSLOG.splitlines(), year=2026, now=now))
    assert [(d.sender, d.recipient) for d in found] == [
        ("alice@army.mil", "bob@partner.org"),
        ("alice@army.mil", "x@army.ml"),
    ]
    assert found[0].time == time.mktime((2026, 11, 26, 16, 47, 39, 0, 0, -1))


def test_rfc3339_and_maillog_file_formats() -> None:
    now = time.mktime((2026, 12, 1, 0, 0, 0, 0, 0, -1))
    (d,) = deliveries(RFC3339.splitlines(), year=2026, now=now)
    assert (d.sender, d.recipient, d.time) == ("eve@navy.mil", "frank@other.org", 1795711659.5)
    (m,) = deliveries(MAILLOG_FILE.splitlines(), year=2026, now=now)
    assert (m.sender, m.recipient) == ("gina@army.mil", "hal@third.org")
    assert abs(m.time - time.mktime((2026, 11, 26, 16, 47, 39, 0, 0, -1)) - 0.000001) < 1e-6


def test_a_december_line_read_in_january_is_last_year() -> None:
    now = time.mktime((2027, 1, 2, 0, 0, 0, 0, 0, -1))
    t = parse_time("Dec 31 23:00:00 mx postfix/smtp[1]: ...", year=2027, now=now)
    assert t == time.mktime((2026, 12, 31, 23, 0, 0, 0, 0, -1))


def test_learn_files_plain_gzip_and_truncated_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "mail.log"
    plain.write_text(SYSLOG)
    gz = tmp_path / "mail.log.1.gz"
    gz.write_bytes(gzip.compress(RFC3339.encode()))
    big = "".join(
        f"Nov 26 10:00:00 mx postfix/qmgr[1]: A{i:09X}: from=<s@army.mil>, size=1\n"
        f"Nov 26 10:00:01 mx postfix/smtp[2]: A{i:09X}: to=<r{i}@fourth.org>, relay=r, status=sent (ok)\n"
        for i in range(3000)
    ).encode()
    truncated = tmp_path / "mail.log.2.gz"
    whole = gzip.compress(big)
    truncated.write_bytes(whole[: len(whole) // 2])
    flushed = []
    report = learn_files(
        [plain, gz, truncated],
        is_suffix_typo=lambda r: r.endswith("@army.ml"),
        flush=flushed.append,
        flush_every=100,
    )
    assert report.files == 3 and report.skipped_suffix_typo == 1
    assert len(report.errors) == 1 and "mail.log.2.gz" in report.errors[0]
    assert 0 < report.learned - 2 < 3000  # learned what was readable of the truncated file
    assert len(flushed) > 1  # bounded: counts go out in chunks
    domains: dict[str, float] = {}
    for t in flushed:
        for k, v in t.domains.data.items():
            domains[k] = domains.get(k, 0) + v[0]
    assert domains["partner.org"] == 1 and domains["other.org"] == 1 and "army.ml" not in domains


def test_learn_command_never_learns_a_suffix_typo(tmp_path: Path) -> None:
    cfg = tmp_path / "typoguard.toml"
    cfg.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\n')
    log = tmp_path / "mail.log"
    log.write_text(SYSLOG * 50)
    result = CliRunner().invoke(main, ["learn", "--config", str(cfg), str(log)])
    assert result.exit_code == 0, result.output
    assert "50 suffix typos never learned" in result.output
    out = CliRunner().invoke(main, ["correspondents", "list", "--config", str(cfg), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert '"partner.org"' in out.output and "army.ml" not in out.output
