"""Write a realistic Postfix syslog of about N megabytes, for ``bench_audit``.

Each message is the usual sequence of lines (smtpd connect/client, cleanup message-id, qmgr from=, one or
more delivery lines, qmgr removed, smtpd disconnect), with 3 % NOQUEUE rejections, 2 % deferrals that are
retried and 1 % bounces. About 0.5 % of recipients are at look-alikes of the protected domains; senders
come from a pool of 300, so some keep mailing the same look-alike. Deterministic for a given seed.

    python -m benchmarks.gen_postfix_log OUT.log [MEGABYTES]
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROTECTED = ("army.mil", "navy.mil", "state.gov", "gmail.com", "outlook.com")
LOOKALIKES = ("army.ml", "navy.ml", "state.gv", "gmial.com", "outlok.com", "armymil.com", "gmail.co")
_HEX = "0123456789ABCDEF"


def _domains(rng: random.Random, n: int) -> list[str]:
    syll = ("ka", "lo", "mi", "ser", "tor", "van", "quel", "bri", "dex", "nor", "pal", "zen", "ru", "fi")
    tlds = ("com", "org", "net", "de", "fr", "co.uk", "io", "nl", "se", "it")
    names = {
        f"{''.join(rng.choice(syll) for _ in range(rng.randint(2, 4)))}.{rng.choice(tlds)}" for _ in range(n)
    }
    return sorted(names)


@dataclass
class _World:
    rng: random.Random
    external: list[str]
    users: list[str]
    senders: list[str]
    truth: dict[tuple[str, str], str] = field(default_factory=dict)  # (queue id, look-alike rcpt) -> outcome


def _delivery(w: _World, ts: str, qid: str, pid: int, qmgr_line: str) -> list[str]:
    r = w.rng.random()
    domain = w.rng.choice(LOOKALIKES) if r < 0.005 else w.rng.choice(PROTECTED if r < 0.3 else w.external)
    rcpt = f"{w.rng.choice(w.users)}@{domain}"
    head = f"{ts} mail postfix/smtp[{pid + 2}]: {qid}: to=<{rcpt}>"
    delays = f"delay={w.rng.random():.2f}, delays=0.01/0/0.1/0.2"
    relay = f"relay=mx.{domain}[192.0.2.{pid % 250}]:25"
    out = []
    s = w.rng.random()
    if domain in LOOKALIKES:
        w.truth[(qid, rcpt)] = "bounced" if s < 0.01 else "delivered"
    if s < 0.02:
        out.append(
            f"{head}, relay=none, {delays}, dsn=4.4.1, status=deferred"
            f" (connect to mx.{domain}[192.0.2.1]:25: Connection timed out)\n"
        )
        out.append(qmgr_line)  # qmgr logs from= again when the retry starts
    if s < 0.01:
        out.append(
            f"{head}, {relay}, {delays}, dsn=5.1.1, status=bounced (host mx.{domain}[192.0.2.1] said:"
            f" 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown (in reply to RCPT TO command))\n"
        )
    else:
        out.append(
            f"{head}, {relay}, {delays}, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {pid:X}{qid})\n"
        )
    return out


def _message(w: _World, ts: str, qn: int) -> list[str]:
    pid = 1000 + (qn % 500)
    qid = f"{qn:X}{_HEX[qn % 16]}{_HEX[(qn >> 4) % 16]}"
    ip = f"10.{qn % 250}.{(qn >> 8) % 250}.{qn % 7 + 1}"
    sender = w.rng.choice(w.senders)
    if w.rng.random() < 0.03:  # refused at RCPT time (not by typoguard)
        rcpt = f"{w.rng.choice(w.users)}@{w.rng.choice(w.external)}"
        return [
            f"{ts} mail postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 <{rcpt}>:"
            f" Relay access denied; from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<ws{pid}>\n"
        ]
    n = 1 if w.rng.random() < 0.8 else w.rng.randint(2, 4)
    size = w.rng.randint(800, 90000)
    qmgr = f"{ts} mail postfix/qmgr[900]: {qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)\n"
    lines = [
        f"{ts} mail postfix/smtpd[{pid}]: connect from unknown[{ip}]\n",
        f"{ts} mail postfix/smtpd[{pid}]: {qid}: client=unknown[{ip}]\n",
        f"{ts} mail postfix/cleanup[{pid + 1}]: {qid}: message-id=<{qn}.{pid}@mail.army.mil>\n",
        qmgr,
    ]
    for _ in range(n):
        lines.extend(_delivery(w, ts, qid, pid, qmgr))
    lines.append(f"{ts} mail postfix/qmgr[900]: {qid}: removed\n")
    lines.append(
        f"{ts} mail postfix/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt={n} data=1 quit=1"
        " commands=5\n"
    )
    return lines


def generate(
    path: Path, megabytes: float, seed: int = 1, truth: dict[tuple[str, str], str] | None = None
) -> int:
    """Write the log; returns the number of bytes written. ``truth`` receives, per message and look-alike
    recipient, the outcome an audit must report."""
    rng = random.Random(seed)
    users = [f"user{i}" for i in range(400)]
    w = _World(
        rng,
        _domains(rng, 3000),
        users,
        [f"{rng.choice(users)}@{rng.choice(PROTECTED[:3])}" for _ in range(300)],
    )
    target = int(megabytes * 1_000_000)
    written, qn, day, sec = 0, 0x1000000, 1, 0
    chunk: list[str] = []
    with path.open("w", encoding="ascii") as f:
        while written < target:
            sec += rng.randint(0, 3)
            if sec >= 86400:
                sec, day = sec - 86400, day % 28 + 1
            qn += 1
            chunk.extend(
                _message(w, f"Nov {day:2d} {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}", qn)
            )
            if len(chunk) > 20000:
                text = "".join(chunk)
                f.write(text)
                written += len(text)
                chunk.clear()
        text = "".join(chunk)
        f.write(text)
        written += len(text)
    if truth is not None:
        truth.update(w.truth)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0])
    n = generate(out, float(args[1]) if len(args) > 1 else 1024.0)
    print(f"wrote {n / 1e6:.0f} MB to {out}")


if __name__ == "__main__":
    main()
