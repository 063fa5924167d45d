"""``typoguard sink``: an SMTP server (aiosmtpd) for look-alike domains that accepts no mail at all.

Point a look-alike's MX here. Every RCPT is refused during the dialogue, so the *sender's own server*
bounces the message at once with our text, from any provider::

    RCPT TO:<bob@army.ml>
    550 5.1.2 <bob@army.ml>: army.ml is not army.mil; you probably meant <bob@army.mil>. ...

No recipient is ever accepted, so DATA always fails (503: need RCPT) and no content ever arrives; the sink
never sends mail (no backscatter), never relays. It keeps counts only (see ``typoguard.sink.counts``),
written by a background task; aiosmtpd's own logger is switched off because it logs every command line
with its addresses at INFO.

Abuse resistance: a global session cap (421 at connect), per-network concurrent connections and connection
rate (421), per-network RCPT rate (450), RCPTs per session (421 and close, aiosmtpd's call limit), an idle
timeout and a whole-session timeout, 512-octet command lines (aiosmtpd, RFC 5321).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from typoguard.config import Config
from typoguard.errors import ConfigError, StoreError, TypoguardError
from typoguard.obs import JsonLog
from typoguard.servers import Reloads, building_beside_the_loop, print_banner, systemd_notify
from typoguard.servers.smtp import SHUTTING_DOWN, AdmittedSMTP, SMTPService, quiet_aiosmtpd
from typoguard.sink.answer import Answerer
from typoguard.sink.counts import CountStore, SenderHasher, Tally, day_of, sender_domain
from typoguard.sink.limits import RCPT_TOO_FAST, NetworkLimits
from typoguard.store.store import parse_duration

SESSION_EXPIRED = b"421 4.4.2 Session too long, closing\r\n"
PRUNE_EVERY = 3600.0  # seconds between retention runs
_STATS = ("lookalike", "neutral", "not_ours", "invalid", "rate_limited")


class SinkHandler:
    """aiosmtpd hooks: MAIL records the sending domain, RCPT answers; nothing else is ever accepted."""

    def __init__(self, sink: SinkServer) -> None:
        self.sink = sink

    async def handle_EHLO(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [r for r in responses if not r[4:].startswith("AUTH")]  # nothing to log in to

    async def handle_MAIL(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        sink = self.sink
        envelope.sender_domain = sender_domain(address)  # type: ignore[attr-defined]
        hasher = sink.hasher
        envelope.sender_hash = (  # type: ignore[attr-defined]
            hasher(address) if hasher is not None and address not in ("", "<>") else None
        )
        return "250 2.1.0 Ok"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        sink = self.sink
        network = getattr(server, "network", "unknown")
        if not sink.limits.allow_rcpt(network):
            sink.stats["rate_limited"] += 1
            return RCPT_TOO_FAST
        answer = sink.answerer.answer(address)
        if answer.lookalike is None:
            sink.stats["invalid" if answer.reply.startswith("501") else "not_ours"] += 1
            return answer.reply
        sink.stats["lookalike" if answer.intended else "neutral"] += 1
        sink.tally.add(
            time.time(),
            answer.lookalike,
            answer.intended,
            getattr(envelope, "sender_domain", "(invalid)"),
            getattr(envelope, "sender_hash", None),
        )
        return answer.reply

    async def handle_VRFY(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str
    ) -> str:
        return "252 2.1.5 Cannot VRFY user"  # the same for every address

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        return "554 5.7.1 No mail is accepted here"  # unreachable: no RCPT is ever accepted

    async def handle_exception(self, error: Exception) -> str:
        self.sink.log.event("error", "session_error", error=type(error).__name__)
        return "451 4.3.0 Local error, try again later"


class SinkSMTP(AdmittedSMTP):
    """One SMTP session, admitted (or refused with 421) by the network limits before the greeting."""

    def __init__(self, sink: SinkServer) -> None:
        cfg = sink.config.sink
        limit = cfg.max_rcpt_per_session
        super().__init__(
            sink.handler,
            hostname=sink.hostname,
            ident="typoguard sink (accepts no mail)",
            tls_context=sink.tls_context,
            timeout=cfg.command_timeout,
            data_size_limit=None,
            auth_exclude_mechanism=("LOGIN", "PLAIN"),
            command_call_limit={"RCPT": limit, "MAIL": limit, "RSET": limit, "NOOP": limit, "*": 10},
            loop=asyncio.get_running_loop(),
        )
        self.local_part_limit = 64
        self.sink = sink
        self.service_log = sink.log
        self.network = "unknown"
        self._expiry: asyncio.TimerHandle | None = None

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        refusal, self.network = self.sink.limits.admit(self.peer_ip(transport))
        if refusal is not None:
            self.refuse(transport, refusal.encode() + b"\r\n")
            self.sink.log_refusal(self.network, refusal)
            return False
        self.sink.sessions.add(self)
        self._expiry = self.loop.call_later(
            self.sink.config.sink.session_timeout, self.close_with, SESSION_EXPIRED
        )
        return True

    def release(self) -> None:
        self.sink.limits.release(self.network)
        self.sink.sessions.discard(self)
        if self._expiry is not None:
            self._expiry.cancel()


class SinkServer(SMTPService):
    """The sink process: listeners, answerer, limits, tally and the background writer."""

    START_ERRORS = (OSError, ConfigError)

    def __init__(
        self,
        config: Config,
        answerer: Answerer,
        store: CountStore | None,
        log: JsonLog,
        *,
        hasher: SenderHasher | None = None,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        config_path: str | Path | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.answerer = answerer
        self.store = store
        self.log = log
        self.hasher = hasher
        self.tls_context = tls_context
        self.hostname = config.sink.hostname or os.uname().nodename
        self.limits = NetworkLimits(config.sink, clock)
        self.tally = Tally()
        self.handler = SinkHandler(self)
        self.sessions: set[SinkSMTP] = set()
        self.stats = dict.fromkeys(_STATS, 0)
        self.addresses: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.Server] = []
        self._stop: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self._refusals_logged = 0.0
        self.flush_errors = 0
        self.schema_ready = False
        self._reloads = Reloads(self._reload)  # one at a time; a SIGHUP meanwhile runs one more after it

    @staticmethod
    def build_answerer(config: Config) -> Answerer:
        """The answerer for ``config``; raises ``ConfigError`` (also when it would answer for nothing)."""
        answerer = Answerer.from_config(config)
        if not answerer.answers_for_anything():
            from typoguard.config import protect_sources

            detail = protect_sources(config)  # which sources were read (issue 17)
            if config.sink.lookalikes_of is not None:
                detail = f"{config.source} has [sink] lookalikes_of = []"
            raise ConfigError(
                "[sink] answers for nothing: set [sink] domains, or [protect]/lookalikes_of domains"
                f" ({detail}, and no [sink] domains)"
            )
        return answerer

    @classmethod
    def build(cls, config: Config, log: JsonLog, *, config_path: str | Path | None = None) -> SinkServer:
        """From configuration; raises ``ConfigError``. A database that is down is not fatal: refusing
        needs no database, and the counts wait in memory until it is back."""
        quiet_aiosmtpd()
        answerer = cls.build_answerer(config)
        base = Path(config.base_dir)
        hasher = None
        if config.sink.sender_hash_key_file:
            hasher = SenderHasher.from_file(base / config.sink.sender_hash_key_file)
        tls = None
        if config.sink.tls_cert:
            tls = cls.server_tls_context("sink", base / config.sink.tls_cert, base / config.sink.tls_key)
        store = CountStore.open(config, create=False)
        server = cls(config, answerer, store, log, hasher=hasher, tls_context=tls, config_path=config_path)
        if tls is not None:
            server.tls_files = ("sink", base / config.sink.tls_cert, base / config.sink.tls_key)
        server.ensure_schema()
        return server

    def ensure_schema(self) -> bool:
        """Create the count tables if needed (blocking); False, logged, while the database is unusable."""
        if self.schema_ready or self.store is None:
            return self.schema_ready
        try:
            self.store.create()
        except TypoguardError as exc:
            self.log.event("warning", "sink_database_unavailable", error=str(exc))
            return False
        self.schema_ready = True
        return True

    # ------------------------------------------------------------------ lifecycle
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "start() first"
        return self._loop

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for host, port in self.config.sink.listen_addresses:
            self._servers.append(await self.add_listener(lambda: SinkSMTP(self), host, port))
        self._flusher = self.loop.create_task(self._flush_loop())

    @property
    def ports(self) -> list[int]:
        return [int(a.rsplit(":", 1)[1]) for a in self.addresses]

    async def drain(self) -> None:
        for server in self._servers:
            server.close()
        for session in list(self.sessions):
            session.close_with(SHUTTING_DOWN)
        for server in self._servers:
            await server.wait_closed()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()

    def listen_failed(self, exc: Exception) -> str:
        self.log.event("error", "listen_failed", listen=list(self.config.sink.listen), error=str(exc))
        return f"typoguard sink: cannot listen on {', '.join(self.config.sink.listen)}: {exc}"

    def log_listening(self) -> None:
        self.log.event(
            "info", "sink_listening", addresses=self.addresses, explicit=len(self.answerer.explicit),
            lookalikes_of=sorted(self.answerer.targets), pid=os.getpid(), tls=self.tls_context is not None,
        )  # fmt: skip
        systemd_notify.ready()  # Type=notify units: listening now (no-op outside systemd)

    def log_stopping(self) -> None:
        self.log.event("info", "sink_stopping", open_sessions=len(self.sessions))

    def log_stopped(self) -> None:
        self.log.event("info", "sink_stopped", **self.stats)

    def request_reload(self) -> None:
        """SIGHUP: reopen the log file (logrotate), read the TLS certificate again, and rebuild the answers
        from the config file."""
        self.log.reopen()
        self._reloads.request()

    async def _reload(self) -> None:
        from typoguard.config import load_config

        await self.reload_tls()
        if self.config_path is None:
            return

        try:
            config = await self.loop.run_in_executor(None, load_config, self.config_path)
            with building_beside_the_loop():
                answerer = await self.loop.run_in_executor(None, self.build_answerer, config)
        except TypoguardError as exc:
            self.log.event("error", "sink_reload_failed", error=str(exc), kept="the running configuration")
        else:
            # Listeners, limits, TLS and the database stay as started; the answers change at once.
            self.answerer = answerer
            self.log.event("info", "sink_reloaded", explicit=len(answerer.explicit),
                           lookalikes_of=sorted(answerer.targets))  # fmt: skip

    # ------------------------------------------------------------------ counts
    async def _flush_loop(self) -> None:
        interval = self.config.sink.flush_interval
        while True:
            await asyncio.sleep(interval)
            await self.flush()

    async def flush(self) -> None:
        """Write the tally from a worker thread; on failure keep it for the next round."""
        batch = self.tally.swap()
        store = self.store
        if store is None:
            return
        try:
            if not self.schema_ready and not await self.loop.run_in_executor(None, self.ensure_schema):
                raise StoreError("sink database unavailable")
            written = await self.loop.run_in_executor(None, store.flush, batch) if len(batch) else 0
            if time.time() - self._last_prune >= PRUNE_EVERY:
                self._last_prune = time.time()
                cutoff = day_of(time.time() - parse_duration(self.config.sink.retention))
                pruned = await self.loop.run_in_executor(None, store.prune, cutoff)
                if pruned:
                    self.log.event("info", "sink_pruned", rows=pruned, before=cutoff)
        except TypoguardError as exc:
            self.flush_errors += 1
            self.tally.merge(batch)
            self.log.event("warning", "sink_flush_failed", error=str(exc), pending=len(self.tally))
            return
        if written:
            self.log.event(
                "info", "sink_counts_written", attempts=written, sessions=len(self.sessions), **self.stats
            )

    def log_refusal(self, network: str, reply: str) -> None:
        """At most one log line a second for refused connections (a flood must not flood the log)."""
        now = time.monotonic()
        if now - self._refusals_logged >= 1.0:
            self._refusals_logged = now
            self.log.event("warning", "sink_connection_refused", network=network, reply=reply[:3],
                           refused=dict(self.limits.refused))  # fmt: skip


def banner(server: SinkServer) -> str:
    first = server.addresses[0]
    return "\n".join(
        [
            f"typoguard sink: {', '.join(server.addresses)}  (pid {os.getpid()}); accepts no mail",
            "Point a look-alike's MX here:   army.ml.  IN MX 10 sink.example.net.",
            f"Try it:  swaks --server {first} --from user@example.org --to user@army.ml",
            "  -> 550 5.1.2 <user@army.ml>: army.ml is not army.mil; you probably meant <user@army.mil>. ...",
            "Report: typoguard sink report --config FILE [--format text|json|html]",
            "Reload domains and reopen the log: kill -HUP <pid>   Stop: kill -TERM <pid>",
        ]
    )


def serve_sink(config: Config, *, config_path: str | Path | None = None) -> int:
    """Run the sink until SIGTERM; the exit status (0 clean, 1 cannot listen, 2 configuration)."""
    try:
        log = JsonLog.for_service(config.log, "typoguard-sink")
        server = SinkServer.build(config, log, config_path=config_path)
    except TypoguardError as exc:
        print(f"typoguard sink: {exc}", file=sys.stderr)
        return 2
    gc.collect()
    gc.freeze()  # the compiled index lives as long as the process

    def ready(srv: SinkServer) -> None:
        print_banner(banner(srv))

    try:
        return asyncio.run(server.run(on_ready=ready))
    finally:
        if server.store is not None:
            server.store.close()
        log.close()


__all__ = ["SinkHandler", "SinkSMTP", "SinkServer", "banner", "quiet_aiosmtpd", "serve_sink"]
