"""Write a realistic Postfix syslog of about N megabytes, for ``bench_audit``.

Each message is the usual sequence of lines (smtpd connect/client, cleanup message-id, qmgr from=,
one or more delivery lines, qmgr removed, smtpd disconnect), plus NOQUEUE rejections, deferrals that are
retried, and bounces. About 0.5 % of recipients are at look-alikes of the protected domains.
Deterministic for a given seed.

    python -m benchmarks.gen_postfix_log OUT.log [MEGABYTES]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

PROTECTED = ("army.mil", "navy.mil", "state.gov", "gmail.com", "outlook.com")
LOOKALIKES = ("army.ml", "navy.ml", "state.gv", "gmial.com", "outlok.com", "armymil.com", "gmail.co")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ALNUM = "0123456789ABCDEF"


def _domains(rng: random.Random, n: int) -> list[str]:
    syll = ("ka", "lo", "mi", "ser", "tor", "van", "quel", "bri", "dex", "nor", "pal", "zen", "ru", "fi")
    tlds = ("com", "org", "net", "de", "fr", "co.uk", "io", "nl", "se", "it")
    out = {
        f"{''.join(rng.choice(syll) for _ in range(rng.randint(2, 4)))}.{rng.choice(tlds)}" for _ in range(n)
    }
    return sorted(out)


def generate(path: Path, megabytes: float, seed: int = 1) -> int:
    """Write the log; returns the number of bytes written."""
    rng = random.Random(seed)
    external = _domains(rng, 3000)
    users = [f"user{i}" for i in range(400)]
    senders = [f"{rng.choice(users)}@{rng.choice(PROTECTED[:3])}" for _ in range(300)]
    target = int(megabytes * 1_000_000)
    written = 0
    qn = 0x1000000
    day, sec = 1, 0
    month = "Nov"
    chunk: list[str] = []
    with path.open("w", encoding="ascii") as f:
        while written < target:
            sec += rng.randint(0, 3)
            if sec >= 86400:
                sec, day = sec - 86400, day % 28 + 1
            ts = f"{month} {day:2d} {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
            pid = 1000 + (qn % 500)
            qn += 1
            qid = f"{qn:X}{_ALNUM[qn % 16]}{_ALNUM[(qn >> 4) % 16]}"
            ip = f"10.{qn % 250}.{(qn >> 8) % 250}.{qn % 7 + 1}"
            sender = rng.choice(senders)
            if rng.random() < 0.03:  # rejected at RCPT time by something else
                rcpt = f"{rng.choice(users)}@{rng.choice(external)}"
                chunk.append(
                    f"{ts} mail postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 "
                    f"<{rcpt}>: Relay access denied; from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<ws{pid}>\n"
                )
                continue
            chunk.append(f"{ts} mail postfix/smtpd[{pid}]: connect from unknown[{ip}]\n")
            chunk.append(f"{ts} mail postfix/smtpd[{pid}]: {qid}: client=unknown[{ip}]\n")
            chunk.append(
                f"{ts} mail postfix/cleanup[{pid + 1}]: {qid}: message-id=<{qn}.{pid}@mail.army.mil>\n"
            )
            n = 1 if rng.random() < 0.8 else rng.randint(2, 4)
            size = rng.randint(800, 90000)
            chunk.append(
                f"{ts} mail postfix/qmgr[900]: {qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)\n"
            )
            for _ in range(n):
                r = rng.random()
                domain = (
                    rng.choice(LOOKALIKES) if r < 0.005 else rng.choice(PROTECTED if r < 0.3 else external)
                )
                rcpt = f"{rng.choice(users)}@{domain}"
                relay = f"mx.{domain}[192.0.2.{qn % 250}]:25"
                delays = f"delay={rng.random():.2f}, delays=0.01/0/0.1/0.2"
                s = rng.random()
                if s < 0.02:
                    chunk.append(
                        f"{ts} mail postfix/smtp[{pid + 2}]: {qid}: to=<{rcpt}>, relay=none, {delays}, dsn=4.4.1, "
                        f"status=deferred (connect to mx.{domain}[192.0.2.1]:25: Connection timed out)\n"
                    )
                    chunk.append(
                        f"{ts} mail postfix/qmgr[900]: {qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)\n"
                    )
                if s < 0.01:
                    chunk.append(
                        f"{ts} mail postfix/smtp[{pid + 2}]: {qid}: to=<{rcpt}>, relay={relay}, {delays}, dsn=5.1.1, "
                        f"status=bounced (host mx.{domain}[192.0.2.1] said: 550 5.1.1 <{rcpt}>: "
                        "Recipient address rejected: User unknown (in reply to RCPT TO command))\n"
                    )
                else:
                    chunk.append(
                        f"{ts} mail postfix/smtp[{pid + 2}]: {qid}: to=<{rcpt}>, relay={relay}, {delays}, dsn=2.0.0, "
                        f"status=sent (250 2.0.0 Ok: queued as {qn:X})\n"
                    )
            chunk.append(f"{ts} mail postfix/qmgr[900]: {qid}: removed\n")
            chunk.append(
                f"{ts} mail postfix/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n"
            )
            if len(chunk) > 20000:
                text = "".join(chunk)
                f.write(text)
                written += len(text)
                chunk.clear()
        if chunk:
            text = "".join(chunk)
            f.write(text)
            written += len(text)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0])
    mb = float(args[1]) if len(args) > 1 else 1024.0
    n = generate(out, mb)
    print(f"wrote {n / 1e6:.0f} MB to {out}")


if __name__ == "__main__":
    main()
