"""``typoguard relay``: an SMTP filtering smart host (aiosmtpd) for Exchange, Microsoft 365 and other MTAs.

Before-queue proxy: every client session gets its own session with the next hop, and every command is
answered only once the next hop answered it::

    client            typoguard relay                                  next hop (MTA)
    MAIL FROM   ->    allowed network or SMTP AUTH?  ->  MAIL FROM  ->  reply passed back (4xx if down)
    RCPT TO     ->    typoguard.decide (the one decision the Postfix policy service gives too):
                        reject -> "550 5.1.2 <bob@army.ml>: ... did you mean bob@army.mil?" (not proxied)
                        hold/warn/allow -> RCPT TO  ->  reply passed back
    DATA        ->    content scan (categories and counts); flagged or first-time external recipients
                      with sensitive content are held, or as configured (core.content_rules); then
                        held  -> quarantine (fsync'd) + RSET next hop -> 250 "held as TG..."
                        else  -> Received + X-Typoguard-Warning headers + the message as it came
                                 -> DATA -> the next hop's reply passed back (250 only after it took it)

No loss by construction: the client hears 250 only when the next hop (or the fsync'd quarantine) has the
message; a next hop that is down or fails mid-transaction gives 451 4.4.1, so the client keeps the message
and retries. A failure inside typoguard follows ``[relay] on_error``: ``tempfail`` (451, retried) or
``accept`` (the recipient passes unchecked). Bad input gets aiosmtpd's 5xx replies; it never ends the
server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import ahocorasick_rs
import orjson
from aiosmtpd.smtp import Envelope, Session, syntax

from typoguard.config import Config
from typoguard.content import ContentReport, scan_message
from typoguard.core.content_rules import ContentRules
from typoguard.core.names import domain_of
from typoguard.core.verdict import Action
from typoguard.decide import Decider, Decision
from typoguard.errors import ConfigError, TypoguardError
from typoguard.held.quarantine import Quarantine
from typoguard.obs import JsonLog
from typoguard.protocols.smtp import dot_stuff, dot_unstuff, smtp_text
from typoguard.relay.auth import Authenticator, hash_password, load_users, verify_password
from typoguard.relay.next_hop import NextHop, NextHopDown, NextHopSettings
from typoguard.senders import InternalSenders
from typoguard.servers import Reloads, building_beside_the_loop, event_loop, print_banner, systemd_notify
from typoguard.servers.smtp import SHUTTING_DOWN, AdmittedSMTP, SMTPService, quiet_aiosmtpd

if TYPE_CHECKING:
    from typoguard.store.live import StoreParts

NEXT_HOP_DOWN: Final = "451 4.4.1 Next hop unavailable, message not accepted; try again later"
TEMPFAIL: Final = "451 4.3.0 typoguard: temporary failure, please try again later"
BUSY: Final = b"421 4.3.2 Too many connections, try again later\r\n"
SMUGGLING: Final = "554 5.6.0 Message refused: a lone dot between bare CR or LF line ends (SMTP smuggling)"
DRAIN_SECONDS: Final = 30.0
NOT_KNOWN_SECONDS: Final = 60.0  # an external domain not (yet) known to the store is asked again after this
MAX_PAIRS: Final = 100_000  # known (sender domain, recipient domain) pairs held in memory
INLINE_SCAN_BYTES: Final = 64 * 1024  # larger messages are scanned in a thread (the loop keeps answering)


# --------------------------------------------------------------------------- one transaction
@dataclass
class Recipient:
    address: str
    action: Action  # allow / warn / hold: what the relay does at RCPT (rejected ones are not kept)
    header: str = ""  # an X-Typoguard-Warning line, for warn
    decision: Decision | None = None  # the RCPT decision when it flagged the recipient (warn or hold)
    # An *allow* decision is logged only once the content check is done: the store learns correspondents
    # from allowed decisions, and this message's own must not make its recipient look "known" to the
    # first-contact rule. A recipient the content check escalates gets the DATA decision instead.
    pending: bytes | None = None


@dataclass
class Transaction:
    recipients: list[Recipient] = field(default_factory=list)
    hold_reasons: list[str] = field(default_factory=list)


class RelayHandler:
    """aiosmtpd hooks: MAIL and RCPT are decided here and proxied; DATA is scanned, held or delivered."""

    def __init__(self, relay: RelayServer) -> None:
        self.relay = relay

    async def handle_EHLO(  # noqa: N802 - aiosmtpd hook name
        self, server: RelaySMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's EHLO reply with PIPELINING (RFC 2920): a client may send MAIL, its RCPTs and DATA in
        one go. aiosmtpd reads them in turn and the relay answers each as before; it saves the client
        (Exchange Online across the internet) two round trips per message."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(  # noqa: N802 - aiosmtpd hook name
        self, server: RelaySMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        relay = self.relay
        if not (session.authenticated or server.client_ok):
            return "530 5.7.0 Authentication required" if relay.auth else "554 5.7.1 Relay access denied"
        relay.flush_pending(server.txn)
        server.txn = Transaction()
        try:
            await server.hop.open()
            if server.hop.in_transaction:
                await server.hop.command(b"RSET")
            server.hop.mail_soon(address, options)  # its reply is awaited by the first RCPT
        except NextHopDown as exc:
            relay.log.event("warning", "next_hop_down", stage="MAIL", error=str(exc))
            return NEXT_HOP_DOWN
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: RelaySMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        relay = self.relay
        if len(envelope.rcpt_tos) >= relay.config.relay.max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            decided = relay.decide(envelope.mail_from or "", address, server)
        except Exception as exc:  # a bug in deciding: the declared fail-safe, never a guess
            relay.log.event("error", "decision_failed", error=f"{type(exc).__name__}: {exc}")
            if relay.config.relay.on_error == "tempfail":
                return TEMPFAIL
            decided = Recipient(address, Action.ALLOW)
        if isinstance(decided, str):
            return decided  # the policy's refusal (5xx), not proxied
        try:
            reply = await server.hop.rcpt(address, options)  # (the sender's refusal, if it was refused)
        except NextHopDown as exc:
            relay.log.event("warning", "next_hop_down", stage="RCPT", error=str(exc))
            return NEXT_HOP_DOWN
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            server.txn.recipients.append(decided)
        return reply

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: RelaySMTP, session: Session, envelope: Envelope
    ) -> str:
        relay = self.relay
        raw = envelope.original_content or b""
        txn, server.txn = server.txn, Transaction()
        try:
            outcome = await relay.judge_content(raw, envelope.mail_from or "", txn, server)
        except Exception as exc:
            relay.flush_pending(txn)
            relay.log.event("error", "content_check_failed", error=f"{type(exc).__name__}: {exc}")
            if relay.config.relay.on_error == "tempfail":
                await server.hop.abandon()
                return TEMPFAIL
            outcome = ("deliver", None)
        relay.flush_pending(txn)
        verdict, report = outcome
        if verdict.startswith("5"):
            await server.hop.abandon()
            return verdict
        if verdict == "hold":
            return await self._hold(server, envelope, raw, txn, report)
        headers = relay.added_headers(server, session, txn)
        try:
            return await server.hop.finish_data(headers, server.wire_body or dot_stuff(raw))
        except NextHopDown as exc:
            relay.log.event("warning", "next_hop_down", stage="DATA", error=str(exc))
            return NEXT_HOP_DOWN

    async def _hold(
        self,
        server: RelaySMTP,
        envelope: Envelope,
        raw: bytes,
        txn: Transaction,
        report: ContentReport | None,
    ) -> str:
        relay = self.relay
        details = {
            "client": server.client_ip,
            "auth": str(server.session.auth_data or "") if server.session else "",
            "reasons": txn.hold_reasons,
            # the RCPT decisions' log records as they are (JSON already: spliced in, not parsed again)
            "decisions": [
                orjson.Fragment(r.decision.record) for r in txn.recipients if r.decision and r.decision.record
            ],
            "content": report.to_dict() if report is not None else None,
            "node": relay.instance,
        }
        try:
            qid = await asyncio.to_thread(
                relay.quarantine.put, raw, envelope.mail_from or "", list(envelope.rcpt_tos),
                mail_options=envelope.mail_options, details=details,
            )  # fmt: skip
        except OSError as exc:
            relay.log.event("error", "quarantine_failed", error=str(exc))
            await server.hop.abandon()
            return "451 4.3.0 Cannot keep the message for review now; try again later"
        await server.hop.abandon()
        relay.log.event(
            "info", "held", queue_id=qid, recipients=len(envelope.rcpt_tos), size=len(raw),
            content=dict(report.counts) if report else {},
        )  # fmt: skip
        return f"250 2.0.0 Ok: held for review as {qid}"

    async def handle_RSET(  # noqa: N802 - aiosmtpd hook name
        self, server: RelaySMTP, session: Session, envelope: Envelope
    ) -> str:
        self.relay.flush_pending(server.txn)
        server.txn = Transaction()
        await server.hop.abandon()
        return "250 2.0.0 Ok"

    async def handle_exception(self, error: Exception) -> str:
        self.relay.log.event("error", "session_error", error=f"{type(error).__name__}: {error}")
        return "451 4.3.0 Local error, try again later"


class RelaySMTP(AdmittedSMTP):
    """One client session and its next-hop session; refused with 421 beyond ``max_sessions``."""

    def __init__(self, relay: RelayServer) -> None:
        cfg = relay.config.relay
        super().__init__(
            relay.handler,
            hostname=relay.hostname,
            ident="typoguard relay",
            tls_context=relay.tls_context,
            require_starttls=cfg.require_tls,
            timeout=cfg.command_timeout,
            data_size_limit=cfg.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            authenticator=relay.auth,
            auth_required=False,
            auth_require_tls=True,
            command_call_limit={"RCPT": cfg.max_recipients + 10, "*": 1000},
            loop=asyncio.get_running_loop(),
        )
        self.relay = relay
        self.service_log = relay.log
        self.hop = NextHop(relay.hop_settings)
        self.txn = Transaction()
        self.wire_body = b""  # the current message as the client sent it (dot-stuffed)
        self.client_ip = ""
        self.client_ok = False  # in [relay] allowed_networks (asked once: the address is the session's)

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        relay = self.relay
        if relay.draining or len(relay.sessions) >= relay.config.relay.max_sessions:
            self.refuse(transport, SHUTTING_DOWN if relay.draining else BUSY)
            return False
        self.client_ip = self.peer_ip(transport)
        self.client_ok = relay.client_allowed(self.client_ip)
        relay.sessions.add(self)
        return True

    def release(self) -> None:
        self.relay.sessions.discard(self)
        self.relay.flush_pending(self.txn)
        self.hop.close()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd command name
        """aiosmtpd's DATA, reading the body in blocks rather than line by line (about 30 times fewer
        Python steps for a 1 MB message), and starting the next hop's DATA while the body arrives."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        self.hop.data_soon()
        if self.hop.gone:  # it failed at RCPT: the message could only be refused after it was sent
            self.relay.log.event("warning", "next_hop_down", stage="DATA", error="gone before DATA")
            await self._refuse_message(NEXT_HOP_DOWN)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        got = await self._read_body(self.data_size_limit)
        if got is None:  # too much: read to the end, refuse, the session goes on
            await self._refuse_message("552 5.3.4 Message size exceeds fixed maximum message size")
            return
        if got[2]:
            self.relay.log.event("warning", "smuggling_refused", client=self.client_ip)
            await self._refuse_message(SMUGGLING)
            return
        self.wire_body, body, _ = got
        self.envelope.content = self.envelope.original_content = body
        status = await self._call_handler_hook("DATA")
        self.wire_body = b""
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)

    async def _refuse_message(self, reply: str) -> None:
        """The message (read, or refused before it is sent) is not passed on: the next hop's transaction
        ends, the client gets ``reply``."""
        await self.hop.abandon()
        self.relay.flush_pending(self.txn)
        self.txn = Transaction()
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(reply)

    async def _read_body(self, limit: int | None) -> tuple[bytes, bytes, bool] | None:
        """(as on the wire, dot-unstuffed, smuggled) up to CRLF . CRLF; None if it exceeded ``limit`` bytes.
        *Smuggled*: the message also holds a lone dot between other line ends (``\\n.\\n``, ``\\r\\n.\\n``,
        ``\\n.\\r\\n`` ...). The relay does not end DATA there, but some next hops do, and an SMTP smuggling
        attack hides a second message - recipients the relay never checked - behind one. Both are found in
        one Aho-Corasick pass over each chunk as it arrives (cheaper than the ``find`` it replaces)."""
        reader = self._reader
        buf = bytearray(b"\r\n")  # the CRLF that ended the DATA line: the end mark is CRLF . CRLF
        start, too_much, smuggled = 0, False, False
        marks = _end_marks().find_matches_as_indexes
        while True:
            end = -1
            with memoryview(buf) as view:
                found = marks(view[start:])  # at most a chunk's worth: bounded however hostile
            for mark, first, last in found:
                if mark == 0:
                    end = start + first
                    break
                if mark != _NL_DOT_CR or start + last < len(buf):
                    smuggled = True  # (a "\n.\r" at the very end may be the start of CRLF . CRLF)
            if end >= 0:
                break
            if limit and len(buf) - 2 > limit:
                del buf[:-4]  # too much: keep only what may be the start of the end mark
                too_much = True
            start = max(0, len(buf) - 4)
            chunk = await reader.read(1 << 16)
            if not chunk:
                raise ConnectionResetError("connection closed during DATA")
            buf += chunk
        rest = bytes(buf[end + 5 :])
        if rest:  # pipelined commands after the end of data go back to the command reader
            reader._buffer[:0] = rest  # type: ignore[attr-defined]
        if too_much or (limit and end > limit):
            return None
        wire = bytes(memoryview(buf)[2 : end + 2])
        return wire, dot_unstuff(wire), smuggled


# The end of DATA, then the lone dots between other line ends; leftmost first, so CRLF . CRLF wins over the
# "\n.\r" inside it.
_MARKS: Final = (b"\r\n.\r\n", b"\n.\n", b"\n.\r", b"\r.\n", b"\r.\r")
_NL_DOT_CR: Final = 2


@cache
def _end_marks() -> ahocorasick_rs.BytesAhoCorasick:
    return ahocorasick_rs.BytesAhoCorasick(list(_MARKS), matchkind=ahocorasick_rs.MatchKind.LeftmostFirst)


# --------------------------------------------------------------------------- the server
class RelayServer(SMTPService):
    """Listener, sessions, the current decider, the quarantine, and the decision log (and store feed)."""

    def __init__(
        self,
        config: Config,
        decider: Decider,
        log: JsonLog,
        *,
        quarantine: Quarantine,
        store_parts: StoreParts | None = None,
        config_path: str | Path | None = None,
    ) -> None:
        relay = config.relay
        base = Path(config.base_dir)
        self.config = config
        self.decider = decider
        self.log = log
        self.quarantine = quarantine
        self.parts = store_parts
        self.config_path = config_path
        self.instance = decider.instance
        self.hostname = relay.hostname or socket.getfqdn()
        self.listen = relay.listen_address
        self.hop_settings = NextHopSettings.from_config(config, helo_name=self.hostname)
        self.tls_context: ssl.SSLContext | None = None
        if relay.tls_cert:
            self.tls_files = ("relay", _path(base, relay.tls_cert), _path(base, relay.tls_key))
            self.tls_context = self.server_tls_context(*self.tls_files)
        self.auth = (
            Authenticator(load_users(_path(base, relay.auth_users_file))) if relay.auth_users_file else None
        )
        self.networks = [ipaddress.ip_network(n.strip(), strict=False) for n in relay.allowed_networks]
        self.internal = InternalSenders.from_config(config.policy)  # whose domains are not "external"
        self.content_rules = _content_rules(config, decider)
        self.handler = RelayHandler(self)
        self.sessions: set[RelaySMTP] = set()
        self.draining = False
        self.addresses: list[str] = []
        self.record_decision: Callable[[bytes], None] | None = None
        self._server: asyncio.Server | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reloads = Reloads(self.reload)  # one at a time; a SIGHUP meanwhile runs one more after it
        # (sender domain, recipient domain) pairs the store knows mail went to: the first-contact rule cannot
        # fire for them, so their mail need not be scanned. Filled in the background; a miss is asked again
        # after NOT_KNOWN_SECONDS (a domain becomes known with its first allowed mail).
        self._known_pairs: set[tuple[str, str]] = set()
        self._asked: dict[tuple[str, str], float] = {}
        self.scans = self.scans_skipped = 0  # messages whose content was scanned / could not matter
        self._setup_log()

    @classmethod
    def build(cls, config: Config, log: JsonLog, *, config_path: str | Path | None = None) -> RelayServer:
        """Guard, decider (every relayed message is outbound: every sender is guarded), store, quarantine."""
        guard_decider = Decider.build(config)
        if not guard_decider.protected_domains:
            from typoguard.config import nothing_to_protect

            raise ConfigError(nothing_to_protect(config))  # which sources were read (issue 17)
        everyone = InternalSenders(networks=[ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")])
        parts = None
        context = None
        if config.store.enabled and config_path is not None:
            from typoguard.store.live import StoreParts

            parts = StoreParts(config, Path(config_path), log)
            context = parts.context
        decider = Decider(config, guard_decider.guard, everyone, context=context, names_recipient=True)
        quarantine = Quarantine.from_config(config)
        quarantine.ensure()
        return cls(config, decider, log, quarantine=quarantine, store_parts=parts, config_path=config_path)

    def _setup_log(self) -> None:
        log, feed = self.log, self.parts.feed if self.parts is not None else None
        to_log = log.enabled("info")
        if feed is None:
            self.record_decision = log.record_json if to_log else None
            return
        line_of, append, log_line = log.line, feed.append, log.append_line

        def both(body: bytes) -> None:
            line = line_of(body)
            append(line)
            if to_log:
                log_line(line)

        self.record_decision = both

    # ------------------------------------------------------------------ decisions
    def client_allowed(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks)

    def decide(self, sender: str, recipient: str, server: RelaySMTP) -> Recipient | str:
        """The policy's word for one recipient: a ``Recipient`` to proxy, or the refusal to answer."""
        session = server.session
        auth = str(session.auth_data) if session is not None and session.authenticated else ""
        decided = self.decider.decide(sender, recipient, server.client_ip, auth)
        action, record = decided.action, decided.record
        if action == "allow":
            return Recipient(recipient, Action.ALLOW, pending=record)
        if record is not None and self.record_decision is not None:
            self.record_decision(record)
        if decided.reply:
            return decided.reply
        flagged = decided if action in ("warn", "hold") else None
        if decided.hold_reason:
            server.txn.hold_reasons.append(decided.hold_reason)
            return Recipient(recipient, Action.HOLD, decision=flagged)
        if decided.header:
            return Recipient(recipient, Action.WARN, header=decided.header, decision=flagged)
        # audit mode (nothing to do whatever the action), an invalid recipient, a sender not ours to judge
        return Recipient(recipient, Action.WARN if action == "warn" else Action.ALLOW, decision=flagged)

    async def judge_content(
        self, raw: bytes, sender: str, txn: Transaction, server: RelaySMTP
    ) -> tuple[str, ContentReport | None]:
        """("deliver" | "hold" | a 5xx reply, the content report). Raises the stakes, never lowers them: the
        rules are ``core.content_rules``; here the scan, the store's word on first contacts and the log."""
        cfg = self.config.relay
        held = any(r.action is Action.HOLD for r in txn.recipients)
        scan = cfg.content_scan
        if scan is False or not txn.recipients:
            return ("hold" if held else "deliver"), None
        if scan == "when-relevant" and not self._content_can_matter(sender, txn):
            self.scans_skipped += 1
            return ("hold" if held else "deliver"), None
        self.scans += 1
        if len(raw) > INLINE_SCAN_BYTES:
            report = await asyncio.to_thread(scan_message, raw, cfg.content_max_bytes)
        else:
            report = scan_message(raw, cfg.content_max_bytes)
        if not report:
            return ("hold" if held else "deliver"), report
        rules, recipients, found = self.content_rules, txn.recipients, report.counts
        first_contact = [
            rules.asks_first_contact(r.action, found) and await self._first_contact(sender, r.address)
            for r in recipients
        ]
        judged = rules.judge([r.action for r in recipients], found, first_contact)
        for rule in judged.escalations:
            r = recipients[rule.position]
            r.pending = None  # this decision replaces the RCPT one
            if self.record_decision is not None:
                self.record_decision(
                    self.decider.content_record(
                        sender, r.address, server.client_ip, r.decision, rule.action, rule.reason, found
                    )
                )
        for rule in judged.warned:
            r = recipients[rule.position]
            r.header = r.header or f"X-Typoguard-Warning: {smtp_text(f'{r.address}: {rule.reason}', 900)}"
        txn.hold_reasons.extend(judged.hold_reasons)
        if judged.refusal is not None:
            r = recipients[judged.refusal.position]
            return smtp_text(f"550 5.7.1 <{r.address}>: not sent: {judged.refusal.reason}"), report
        return ("hold" if judged.outcome is Action.HOLD else "deliver"), report

    def flush_pending(self, txn: Transaction) -> None:
        """Log the allow decisions held back for the content check (the transaction is over)."""
        for r in txn.recipients:
            if r.pending is not None:
                if self.record_decision is not None:
                    self.record_decision(r.pending)
                r.pending = None

    def _content_can_matter(self, sender: str, txn: Transaction) -> bool:
        """Could what the message carries change a decision or a record? (``content_scan = "when-relevant"``,
        ADR 0010.) Yes for a flagged (warn) recipient - the flagged rule - and for a held message, whose
        sidecar shows the reviewer the content counts; yes for an external recipient when there is a store
        (the first-contact rule; whether it is a first contact is asked only if high content is found). No
        for mail only to internal or own-domain recipients, or with no store: every rule would pass it as
        it is, and nothing records the counts of delivered mail."""
        recipients = txn.recipients
        if any(r.action is not Action.ALLOW for r in recipients):
            return True
        if self.parts is None:
            return False
        return any(
            self._external(sender, r.address) and not self._known_pair(sender, r.address) for r in recipients
        )

    def _known_pair(self, sender: str, recipient: str) -> bool:
        """Has the store seen allowed mail from ``sender``'s domain to ``recipient``'s? Answered from memory;
        a pair not known yet is looked up in a worker thread (at most every ``NOT_KNOWN_SECONDS``) and
        counts as unknown meanwhile, so such a message is scanned: never a missed first contact."""
        key = (domain_of(sender), domain_of(recipient))
        if key in self._known_pairs:
            return True
        now = time.monotonic()
        if now - self._asked.get(key, -NOT_KNOWN_SECONDS) >= NOT_KNOWN_SECONDS and self.parts is not None:
            if len(self._asked) >= MAX_PAIRS:
                self._asked.clear()
            self._asked[key] = now
            store = self.parts.store

            def ask() -> None:
                try:
                    if store.is_known(*key):
                        if len(self._known_pairs) >= MAX_PAIRS:
                            self._known_pairs.clear()
                        self._known_pairs.add(key)  # a set.add is atomic under the GIL
                except TypoguardError:
                    pass  # the database is away: ask again later, scan meanwhile

            self._spawn(asyncio.to_thread(ask))
        return False

    def _external(self, sender: str, recipient: str) -> bool:
        """``recipient``'s domain is neither the sender's nor internal (``[policy] internal_senders``)."""
        rdomain = domain_of(recipient)
        sdomain = domain_of(sender)
        return bool(rdomain) and rdomain != sdomain and not self.internal.sender_domain_is_internal(recipient)

    async def _first_contact(self, sender: str, recipient: str) -> bool:
        """True when ``recipient``'s domain is external and this sender's domain never wrote to it (as far
        as the store knows: without a store nothing is "first")."""
        if self.parts is None or not self._external(sender, recipient):
            return False
        rdomain = domain_of(recipient)
        sdomain = domain_of(sender)
        store = self.parts.store
        try:
            known = await asyncio.to_thread(store.is_known, sdomain, rdomain)
        except TypoguardError:
            return False
        return not known

    def added_headers(self, server: RelaySMTP, session: Session, txn: Transaction) -> bytes:
        lines = []
        if self.config.relay.add_received:
            proto = (
                "ESMTP" + ("S" if session.ssl is not None else "") + ("A" if session.authenticated else "")
            )
            helo = smtp_text(session.host_name or "unknown", 200)
            lines.append(
                f"Received: from {helo} ([{server.client_ip}])\r\n\tby {self.hostname} (typoguard relay) "
                f"with {proto};\r\n\t{_date_now()}"
            )
        seen = set()
        for r in txn.recipients:
            if r.header and r.header not in seen:
                seen.add(r.header)
                lines.append(r.header)
        return "".join(line + "\r\n" for line in lines).encode("utf-8", "replace")

    # ------------------------------------------------------------------ running
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.listen
        self._server = await self.add_listener(lambda: RelaySMTP(self), host, port)

        def flush_soon() -> None:
            loop.call_soon(self.log.flush)

        self.log.flush_soon = flush_soon
        if self.parts is not None:
            self.parts.feed.loop = loop
            self._spawn(self._pump_feed())

    @property
    def port(self) -> int:
        return int(self.addresses[0].rpartition(":")[2])

    async def _pump_feed(self) -> None:
        from typoguard.store.feed import FLUSH_SECONDS

        assert self.parts is not None
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.parts.feed.flush()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = DRAIN_SECONDS) -> None:
        """Stop listening; sessions in the middle of a transaction may finish it (up to ``timeout``)."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + timeout
        while self.sessions and time.monotonic() < deadline:
            for s in list(self.sessions):
                if s.envelope is None or not s.envelope.mail_from:  # between transactions: close now
                    s.close_with(SHUTTING_DOWN)
            await asyncio.sleep(0.05)
        for s in list(self.sessions):
            if s.transport is not None:
                s.transport.close()
        for task in list(self._tasks):
            task.cancel()
        if self.parts is not None:
            feed = self.parts.feed
            feed.flush()
            clean = await asyncio.get_running_loop().run_in_executor(None, feed.close)
            self.log.event("info" if clean else "warning", "decision_writer_stopped", clean=clean)
        self.log.flush()

    async def reload(self) -> None:
        """SIGHUP: reopen the log file (logrotate), then a new decider from the config file (templates,
        thresholds, protected domains), the TLS certificate (renewed in place) and the users file."""
        self.log.reopen()
        await self.reload_tls()
        await self.reload_users()
        if self.config_path is None:
            return
        from typoguard.config import load_config

        loop = asyncio.get_running_loop()
        try:
            config = await loop.run_in_executor(None, load_config, self.config_path)
            with building_beside_the_loop():
                built = await loop.run_in_executor(None, Decider.build, config)
            if not built.protected_domains:  # refused at start: refused here too (the old one stays)
                from typoguard.config import nothing_to_protect

                raise ConfigError(nothing_to_protect(config))
        except TypoguardError as exc:
            self.log.event("error", "reload_failed", error=str(exc), kept="old config")
            return
        context = self.decider.context
        self.decider = Decider(
            config, built.guard, self.decider.senders, context=context, names_recipient=True
        )
        self.content_rules = _content_rules(self.config, self.decider)  # [relay] as started; the new mode
        self.log.event("info", "reloaded", protected=self.decider.protected_domains, mode=self.decider.mode)

    async def reload_users(self) -> None:
        """SIGHUP: ``[relay] auth_users_file`` read again (a login added, or removed because it leaked); a
        file that does not load keeps the logins in use, loudly (``auth_reload_failed``)."""
        name = self.config.relay.auth_users_file
        if self.auth is None or not name:
            return
        path = _path(Path(self.config.base_dir), name)
        try:
            users = await asyncio.get_running_loop().run_in_executor(None, load_users, path)
        except ConfigError as exc:
            self.log.event("error", "auth_reload_failed", error=str(exc), kept="the logins in use")
            return
        self.auth.replace_users(users)
        self.log.event("info", "auth_reloaded", users=len(users))

    def request_reload(self) -> None:
        self._reloads.request()

    def listen_failed(self, exc: Exception) -> str:
        self.log.event("error", "listen_failed", listen=self.config.relay.listen, error=str(exc))
        return f"typoguard: cannot listen on {self.config.relay.listen}: {exc}"

    def log_listening(self) -> None:
        self.log.event(
            "info", "listening", addresses=self.addresses, next_hop=self.config.relay.next_hop,
            protected=self.decider.protected_domains, mode=self.decider.mode, pid=os.getpid(),
            tls=self.tls_context is not None, auth=self.auth is not None,
            quarantine=str(self.quarantine.directory),
        )  # fmt: skip
        systemd_notify.ready()  # Type=notify units: listening now (no-op outside systemd)

    def log_stopping(self) -> None:
        self.log.event("info", "stopping", sessions=len(self.sessions))

    def log_stopped(self) -> None:
        self.log.event("info", "stopped", content_scans=self.scans, content_scans_skipped=self.scans_skipped)

    def close(self) -> None:
        if self.parts is not None:
            self.parts.close()


def _path(base: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else base / p


def banner(server: RelayServer) -> str:
    return "\n".join(
        [
            f"typoguard relay: {', '.join(server.addresses)} -> next hop {server.config.relay.next_hop}"
            f"  (mode {server.decider.mode}, {server.decider.protected_domains} protected domains, "
            f"pid {os.getpid()})",
            f"Quarantine: {server.quarantine.directory}   Held mail: typoguard held list",
            "Exchange/M365: point an outbound (smart host) connector at this address: see docs/relay.md",
            "Reload: kill -HUP <pid>   Stop: kill -TERM <pid>   Logs: JSON lines on stderr or [log] file",
        ]
    )


_date: tuple[int, str] = (-1, "")  # (a whole second, its RFC 5322 date): formatted once a second


def _date_now() -> str:
    global _date  # noqa: PLW0603 - a one-entry cache
    second = int(time.time())
    if _date[0] != second:
        _date = (second, formatdate(second))
    return _date[1]


def _content_rules(config: Config, decider: Decider) -> ContentRules:
    relay = config.relay
    return ContentRules(
        Action(relay.content_flagged_action),
        Action(relay.content_first_contact_action),
        frozenset(relay.content_high),
        decider.audit,
    )


def serve_relay(config: Config, *, config_path: str | Path | None = None) -> int:
    """Run the relay until SIGTERM; 0 after a clean stop, 1 if it cannot listen, 2 for a bad config."""
    quiet_aiosmtpd()
    try:
        log = JsonLog.for_service(config.log, "typoguard-relay")
        server = RelayServer.build(config, log, config_path=config_path)
    except TypoguardError as exc:
        print(f"typoguard: {exc}", file=sys.stderr)
        return 2

    def ready(srv: RelayServer) -> None:
        print_banner(banner(srv))

    try:
        return event_loop.run(server.run(on_ready=ready))  # uvloop: about half asyncio's cost per command
    finally:
        server.close()
        log.close()


__all__ = [
    "RelayHandler",
    "RelaySMTP",
    "RelayServer",
    "banner",
    "hash_password",
    "serve_relay",
    "verify_password",
]
