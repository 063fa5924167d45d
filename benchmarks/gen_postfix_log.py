"""Write a realistic Postfix syslog of about N megabytes, for ``bench_audit``.

Each message is the usual sequence of lines (smtpd connect/client, cleanup message-id, qmgr from=, one or
more delivery lines from smtp, some over TLS, qmgr removed, smtpd disconnect), with 3 % NOQUEUE rejections,
2 % deferrals that are retried and 1 % bounces. A share of the recipients (``lookalike_share``, 30 % by
default) are at look-alikes of the protected domains; of those, some are refused at RCPT time by
typoguard's policy service (old and new wordings of its text), some bounce with typoguard's text from a
downstream hop, and some go through a ``discard:`` transport. Senders come from a pool of 300, so some
keep mailing the same look-alike. Deterministic for a given seed.

    python -m benchmarks.gen_postfix_log OUT.log [MEGABYTES [LOOKALIKE_SHARE]]
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROTECTED = ("army.mil", "navy.mil", "state.gov", "gmail.com", "outlook.com")
_INTENDED = {
    "army.ml": "army.mil",
    "navy.ml": "navy.mil",
    "state.gv": "state.gov",
    "gmial.com": "gmail.com",
    "outlok.com": "outlook.com",
    "armymil.com": "army.mil",
    "gmail.co": "gmail.com",
}
LOOKALIKES = tuple(_INTENDED)
_HEX = "0123456789ABCDEF"
# What typoguard's policy service answered, as Postfix logs it: the first wording (before issue 15), the
# plain one that replaced it, and a site's own template (which keeps 5.1.2).
_TYPOGUARD_TEXTS = (
    "550 5.1.2 <{r}>: Recipient address rejected: <{r}>: {d} looks like {i} (suffix swapped);"
    " did you mean {u}@{i}?",
    "550 5.1.2 <{r}>: Recipient address rejected: Not sent: {d} is not {i}. Did you mean {u}@{i}?"
    " Nothing was delivered.",
    "550 5.1.2 <{r}>: Recipient address rejected: Please check the address, {d} is not our partner",
)


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
    share: float = 0.3  # of recipients at look-alikes
    truth: dict[tuple[str, str], str] = field(default_factory=dict)  # (queue id, look-alike rcpt) -> outcome
    message_ids: dict[str, str] = field(default_factory=dict)  # queue id -> Message-ID (look-alike mail)


def _recipient_domain(w: _World) -> str:
    r = w.rng.random()
    if r < w.share:
        return w.rng.choice(LOOKALIKES)
    return w.rng.choice(PROTECTED if r < w.share + 0.3 * (1 - w.share) else w.external)


def _delivery(w: _World, ts: str, qid: str, pid: int, qmgr_line: str) -> list[str]:
    domain = _recipient_domain(w)
    user = w.rng.choice(w.users)
    rcpt = f"{user}@{domain}"
    delays = f"delay={w.rng.random():.2f}, delays=0.01/0/0.1/0.2"
    s = w.rng.random()
    lookalike = domain in LOOKALIKES
    if lookalike and s > 0.99:  # the site's transport table sends this look-alike nowhere
        w.truth[(qid, rcpt)] = "discarded"
        return [
            f"{ts} mail postfix/discard[{pid + 3}]: {qid}: to=<{rcpt}>, relay=none, {delays}, dsn=2.0.0,"
            f" status=sent ({domain})\n"
        ]
    head = f"{ts} mail postfix/smtp[{pid + 2}]: {qid}: to=<{rcpt}>"
    relay = f"relay=mx.{domain}[192.0.2.{pid % 250}]:25"
    out = []
    if s < 0.3:
        out.append(
            f"{ts} mail postfix/smtp[{pid + 2}]: Trusted TLS connection established to"
            f" mx.{domain}[192.0.2.{pid % 250}]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384"
            " (256/256 bits)\n"
        )
    if lookalike:
        w.truth[(qid, rcpt)] = "bounced" if s < 0.01 else "rejected-by-typoguard" if s > 0.98 else "delivered"
    if s < 0.02:
        out.append(
            f"{head}, relay=none, {delays}, dsn=4.4.1, status=deferred"
            f" (connect to mx.{domain}[192.0.2.1]:25: Connection timed out)\n"
        )
        out.append(qmgr_line)  # qmgr logs from= again when the retry starts
    if lookalike and s > 0.98:  # the smarthost runs typoguard: its refusal comes back as a bounce
        text = w.rng.choice(_TYPOGUARD_TEXTS).format(r=rcpt, d=domain, i=_INTENDED[domain], u=user)
        out.append(
            f"{head}, relay=smarthost.example[192.0.2.9]:25, {delays}, dsn=5.1.2, status=bounced"
            f" (host smarthost.example[192.0.2.9] said: {text.replace(': Recipient address rejected', '')}"
            " (in reply to RCPT TO command))\n"
        )
    elif s < 0.01:
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
    refused = w.rng.random()
    if refused < 0.03:  # refused at RCPT time (not by typoguard)
        rcpt = f"{w.rng.choice(w.users)}@{w.rng.choice(w.external)}"
        return [
            f"{ts} mail postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 <{rcpt}>:"
            f" Relay access denied; from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<ws{pid}>\n"
        ]
    if refused < 0.03 + 0.03 * w.share:  # refused at RCPT time by typoguard's policy service
        user, domain = w.rng.choice(w.users), w.rng.choice(LOOKALIKES)
        rcpt = f"{user}@{domain}"
        text = w.rng.choice(_TYPOGUARD_TEXTS).format(r=rcpt, d=domain, i=_INTENDED[domain], u=user)
        w.truth[(f"NOQUEUE-{qn}", rcpt)] = "rejected-by-typoguard"
        return [
            f"{ts} mail postfix/smtpd[{pid}]: connect from unknown[{ip}]\n",
            f"{ts} mail postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip}]: {text};"
            f" from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<ws{pid}>\n",
            f"{ts} mail postfix/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt=0/1 quit=1"
            " commands=3/4\n",
        ]
    n = 1 if w.rng.random() < 0.8 else w.rng.randint(2, 4)
    size = w.rng.randint(800, 90000)
    qmgr = f"{ts} mail postfix/qmgr[900]: {qid}: from=<{sender}>, size={size}, nrcpt={n} (queue active)\n"
    msgid = f"{qn}.{pid}@mail.army.mil"
    lines = [
        f"{ts} mail postfix/smtpd[{pid}]: connect from unknown[{ip}]\n",
        f"{ts} mail postfix/smtpd[{pid}]: {qid}: client=unknown[{ip}], sasl_method=PLAIN,"
        f" sasl_username={sender.split('@')[0]}\n",
        f"{ts} mail postfix/cleanup[{pid + 1}]: {qid}: message-id=<{msgid}>\n",
        qmgr,
    ]
    known = len(w.truth)
    for _ in range(n):
        lines.extend(_delivery(w, ts, qid, pid, qmgr))
    if len(w.truth) > known:
        w.message_ids[qid] = msgid
    lines.append(f"{ts} mail postfix/qmgr[900]: {qid}: removed\n")
    lines.append(
        f"{ts} mail postfix/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt={n} data=1 quit=1"
        " commands=5\n"
    )
    return lines


def generate(
    path: Path,
    megabytes: float,
    seed: int = 1,
    truth: dict[tuple[str, str], str] | None = None,
    *,
    lookalike_share: float = 0.3,
    message_ids: dict[str, str] | None = None,
) -> int:
    """Write the log; returns the number of bytes written. ``truth`` receives, per message (queue id, or
    ``NOQUEUE-n`` for a refusal at RCPT time) and look-alike recipient, the outcome an audit must report;
    ``message_ids`` the Message-ID of every queued message with a look-alike recipient."""
    rng = random.Random(seed)
    users = [f"user{i}" for i in range(400)]
    w = _World(
        rng,
        _domains(rng, 3000),
        users,
        [f"{rng.choice(users)}@{rng.choice(PROTECTED[:3])}" for _ in range(300)],
        share=lookalike_share,
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
    if message_ids is not None:
        message_ids.update(w.message_ids)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0])
    share = float(args[2]) if len(args) > 2 else 0.3
    n = generate(out, float(args[1]) if len(args) > 1 else 1024.0, lookalike_share=share)
    print(f"wrote {n / 1e6:.0f} MB to {out}")


if __name__ == "__main__":
    main()
