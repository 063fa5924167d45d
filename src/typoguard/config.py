"""Configuration: TOML, layered (shipped defaults < site file < environment), frozen and validated.

Every key has a default here, so an empty file is a valid configuration. Unknown sections or keys are an
error (a typo in a security setting must not be silently ignored). Environment overrides use
``TYPOGUARD_<SECTION>__<KEY>`` with a TOML value, e.g. ``TYPOGUARD_POLICY__MODE='"audit"'`` or
``TYPOGUARD_POLICYD__LISTEN=127.0.0.1:10041`` (a bare word is taken as a string).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeVar

from typoguard.core.policy import Thresholds
from typoguard.errors import ConfigError

ENV_PREFIX = "TYPOGUARD_"


# --------------------------------------------------------------------------- addresses
# Every listen, next-hop and resolver address is read here, by these two functions; the sections below parse
# theirs once (at load, in ``validate``), and the servers take the parsed value.
class HostPort(NamedTuple):
    """A TCP address: a host name or IP address (an IPv6 one without brackets) and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        """``host:port``, or ``[v6]:port`` for an IPv6 address: what ``parse_host_port`` reads."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class UnixSocket(NamedTuple):
    """A UNIX domain socket: ``unix:/path`` in the config."""

    path: str

    def __str__(self) -> str:
        return f"unix:{self.path}"


MAX_PORT: Final = 65535


def parse_host_port(text: str, what: str, *, min_port: int = 0, default_host: str | None = None) -> HostPort:
    """``host:port`` or ``[IPv6 address]:port`` -> ``HostPort``.

    A mistake is a ``ConfigError`` that names ``what`` (e.g. ``[relay] next_hop``) and says what is wrong:
    no port, a port that is no number or out of ``min_port``..65535, an IPv6 address without brackets
    (``::1:25`` cannot say where the address ends), no host (unless ``default_host`` stands in for it).
    """
    if not text:
        raise ConfigError(f"{what} is empty (host:port)")
    if text.startswith("unix:"):
        raise ConfigError(f"{what}: a UNIX socket is not allowed here, only host:port, got {text!r}")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ConfigError(f"{what}: missing ']' in {text!r} ([address]:port)")
        if rest and not rest.startswith(":"):
            raise ConfigError(f"{what}: expected [address]:port, got {text!r}")
        port = rest[1:]
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            raise ConfigError(f"{what}: missing port in {text!r} (host:port)")
        if ":" in host:
            raise ConfigError(f"{what}: an IPv6 address needs brackets ([address]:port), got {text!r}")
    if not host:
        if default_host is None:
            raise ConfigError(f"{what}: missing host in {text!r} (host:port)")
        host = default_host
    if not port:
        raise ConfigError(f"{what}: missing port in {text!r} (host:port)")
    if not (port.isascii() and port.isdigit()):
        raise ConfigError(f"{what}: port {port!r} is not a number in {text!r}")
    if not min_port <= int(port) <= MAX_PORT:
        raise ConfigError(f"{what}: port out of range ({min_port}..{MAX_PORT}) in {text!r}")
    return HostPort(host, int(port))


def parse_listen(text: str, what: str) -> HostPort | UnixSocket:
    """``host:port``, ``[IPv6 address]:port`` or ``unix:/path``; mistakes as for ``parse_host_port``."""
    if not text.startswith("unix:"):
        return parse_host_port(text, what)
    if text == "unix:":
        raise ConfigError(f"{what}: missing socket path in {text!r} (unix:/path)")
    return UnixSocket(text[len("unix:") :])


T = TypeVar("T")


def _key(default: T, help: str) -> T:
    """A key with its default and a one-line ``help``: docs/configuration.md is generated from both
    (``typoguard.config_text``), so the code and the document cannot drift."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ProtectConfig:
    """The domains typoguard protects: mail to their look-alikes is held or refused."""

    domains: tuple[str, ...] = _key((), 'protected domains, e.g. ["army.mil", "navy.mil"]')
    files: tuple[str, ...] = _key(
        (), "files of protected domains, one a line, '#' comments; relative to the config file"
    )
    trusted: tuple[str, ...] = _key(
        (), "domains never flagged however close to a protected one (your other names)"
    )
    weights: Mapping[str, float] = field(
        default_factory=dict,
        metadata={"help": "per protected domain, 0..1: how much its look-alikes' scores count (1 = fully)"},
    )
    models: tuple[str, ...] | None = _key(None, "typo models used, by name; not set: every registered model")
    layouts: tuple[str, ...] = _key(("qwerty", "qwertz", "azerty"), "keyboard layouts for key-slip typos")
    use_legit_list: bool = _key(True, "never flag the shipped list of well-known legitimate mail domains")
    use_word_list: bool = _key(True, "damp look-alikes whose name is a common word (life.com vs live.com)")


@dataclass(frozen=True)
class PolicyConfig:
    """Which score leads to which action, and whose mail is guarded."""

    reject_at: float = _key(0.9, "score from which a recipient is refused (0..1, >= hold_at)")
    hold_at: float = _key(0.7, "score from which the mail is held for a person (0..1, >= warn_at)")
    warn_at: float = _key(0.4, "score from which a warning header is added (0..1)")
    mode: str = _key("enforce", '"enforce", or "audit": decide and log, never block')
    internal_senders: tuple[str, ...] = _key(
        (), 'sender domains whose mail is guarded; "*.example.org" for subdomains'
    )
    internal_networks: tuple[str, ...] = _key((), "client networks whose mail is guarded (CIDR)")
    guard_sasl: bool = _key(True, "SASL-authenticated clients are internal senders")
    help_text: str = _key(
        "", 'ends every refusal a sender reads, e.g. "Questions: helpdesk@army.mil" (ASCII)'
    )

    def thresholds(self) -> Thresholds:
        return Thresholds(self.reject_at, self.hold_at, self.warn_at)


@dataclass(frozen=True)
class PolicydConfig:
    """``typoguard serve``: the Postfix policy service (docs/postfix.md)."""

    listen: str = _key("127.0.0.1:10040", "host:port or unix:/path/to/socket; several separated by commas")
    on_error: str = _key("dunno", 'what a broken request gets: "dunno", "tempfail" or "disconnect"')
    # What a sender reads after Postfix's "<rcpt>: Recipient address rejected: " (docs/postfix.md, ADR 0017);
    # the enhanced status code 5.1.2 is added unless the template starts with its own.
    reject_template: str = _key(
        "Not sent: {domain} is not {intended}.{lookalikes} Did you mean {suggestion}?"
        " Nothing was delivered to this address (typoguard).{help}",
        "the refusal a sender reads; {domain}, {intended}, {suggestion}, {why}, {help}... (docs/postfix.md)",
    )
    reject_code: int = _key(550, "SMTP code of a refusal: 550, 553 or 554")
    hold_template: str = _key(
        "typoguard: {domain} looks like {intended} ({why})", "the reason Postfix logs for held mail"
    )
    warn_header: str = _key("X-Typoguard-Warning", "header added to mail with a warned recipient")
    idle_timeout: float = _key(300.0, "seconds before an idle Postfix connection is closed")
    max_connections: int = _key(1000, "connections at once; beyond it the longest-idle one is closed")
    max_connections_per_client: int = _key(
        200, "per client address; beyond it its longest-idle one is closed"
    )
    max_line: int = _key(8192, "longest request line in bytes")
    max_attributes: int = _key(100, "most attributes in one request")
    metrics_listen: str = _key(
        "", 'host:port of the Prometheus metrics endpoint, e.g. "127.0.0.1:9040"; empty: none'
    )
    instance: str = _key("", "this service's name in logs; empty: the host name")

    @cached_property
    def listen_addresses(self) -> tuple[HostPort | UnixSocket, ...]:
        """``listen``: one or more addresses, separated by commas."""
        items = [item.strip() for item in self.listen.split(",")]
        addresses = tuple(parse_listen(item, "[policyd] listen") for item in items if item)
        if not addresses:
            raise ConfigError("[policyd] listen is empty")
        return addresses

    @cached_property
    def metrics_address(self) -> HostPort | None:
        """``metrics_listen``, or None when there is no metrics endpoint."""
        if not self.metrics_listen:
            return None
        return parse_host_port(self.metrics_listen, "[policyd] metrics_listen")


@dataclass(frozen=True)
class StoreConfig:
    """The decision store: decisions, overrides, correspondents (docs/store.md)."""

    enabled: bool = _key(True, "false: no decision store, overrides or history (the detector's word alone)")
    url: str = _key("", "empty: SQLite typoguard.db under data_dir; or postgresql+psycopg://user@host/db")
    data_dir: str = _key(
        "/var/lib/typoguard", "state directory; relative paths are relative to the config file"
    )
    spool_dir: str = _key("", "decisions waiting for the database; empty: <data_dir>/spool")
    node: str = _key("", "this node's name in the decision log; empty: the host name")
    batch_size: int = _key(1000, "decisions per database transaction")
    queue_size: int = _key(100_000, "decisions held in memory before spilling to the spool")
    flush_interval: float = _key(0.2, "seconds the writer waits for a batch to fill")
    retry_interval: float = _key(2.0, "seconds between attempts while the database is down")
    refresh_interval: float = _key(5.0, "seconds between override/correspondent snapshots")
    writer_nice: int = _key(
        19, "CPU priority of the decision writer process (Linux): mail first, the log after"
    )
    writer_idle: bool = _key(True, "Linux SCHED_IDLE for the writer: any other work preempts it")
    retention: str = _key("180d", "default age for `typoguard db prune` (e.g. 180d, 26w)")
    keep_days: int = _key(
        400, "decisions and held-mail actions older than this are deleted by the running service; 0: forever"
    )
    confirmed_min_count: int = _key(10, "mails before an admin-confirmed correspondent is allowed")


LOG_TARGETS: Final = ("stderr", "file", "syslog", "journal")
# syslog(3) facility codes (RFC 5424 table 1; Linux <sys/syslog.h>): the names Postfix's syslog_facility takes
SYSLOG_FACILITIES: Final = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
    "cron": 9, "authpriv": 10, "ftp": 11, **{f"local{n}": 16 + n for n in range(8)},
}  # fmt: skip
_SUN_PATH_MAX: Final = 107  # bytes in a UNIX socket path (sockaddr_un.sun_path, less its NUL)


@dataclass(frozen=True)
class LogConfig:
    """Where the JSON log lines go (docs/operations.md "Logs", ADR 0023)."""

    level: str = _key("info", "debug, info, warning or error")
    file: str = _key("", 'the log file of target "file"; set alone (no target), it means target "file"')
    target: str = _key(
        "",
        '"stderr", "file", "syslog" (one message per record, next to Postfix\'s) or "journal"'
        ' (journald\'s native protocol); empty: "file" if file is set, else "stderr" (which systemd sends'
        " to the journal)",
    )
    syslog_socket: str = _key("/dev/log", 'target "syslog": the local syslog daemon\'s datagram socket')
    syslog_facility: str = _key(
        "mail", 'target "syslog" (and the journal\'s SYSLOG_FACILITY): as Postfix logs'
    )
    journal_socket: str = _key("/run/systemd/journal/socket", 'target "journal": journald\'s native socket')

    @property
    def destination(self) -> str:
        """The target in effect: ``target``, or what the keys set before it existed mean."""
        return self.target or ("file" if self.file else "stderr")

    @property
    def facility_code(self) -> int:
        return SYSLOG_FACILITIES[self.syslog_facility]


@dataclass(frozen=True)
class HttpConfig:
    """The JSON API and dashboard (docs/http-api.md)."""

    enabled: bool = _key(False, "started by `typoguard serve` when true; `typoguard http` runs it on its own")
    listen: str = _key("127.0.0.1:8025", 'host:port; without a host (":8025"): 127.0.0.1')
    session_secret_file: str = _key("", "key signing session cookies; empty: <data_dir>/http-session.key")
    login_attempts_per_minute: int = _key(5, "per client IP")
    session_max_age: int = _key(8 * 3600, "seconds a dashboard login lasts")
    cors_origins: tuple[str, ...] = _key((), "web pages that may call the API (webmail, add-ins)")
    workers: int = _key(1, "`typoguard http` processes on one address (SO_REUSEPORT)")
    # typoguard serve: false (default) runs the API as a `typoguard http` child process, so no HTTP request
    # takes the policy service's event loop; true keeps it in that loop (one process, ADR 0015)
    embedded: bool = _key(False, "`typoguard serve`: run the API in the policy service's process (ADR 0015)")
    trusted_proxies: tuple[str, ...] = _key((), "proxies whose X-Forwarded-For/-Proto count (IPs or CIDRs)")
    max_body_bytes: int = _key(65536, "a larger request body gets 413, read no further")
    max_recipients: int = _key(1000, "per POST /v1/check; more: 400")
    # typoguard serve: the API child's CPU priority (Linux), so that a busy API never keeps the CPU from the
    # policy service when Postfix asks (issue 15 item 5, ADR 0031); like [store] writer_nice/writer_idle
    process_nice: int = _key(10, "`typoguard serve`: CPU priority (nice 0-19) of the API child process")
    process_idle: bool = _key(True, "`typoguard serve`: Linux SCHED_IDLE for the API child: mail first")

    @cached_property
    def listen_address(self) -> HostPort:
        """``listen``; without a host (``:8025``) it is 127.0.0.1."""
        return parse_host_port(self.listen, "[http] listen", default_host="127.0.0.1")


@dataclass(frozen=True)
class RelayConfig:
    """``typoguard relay``: the SMTP filtering smart host (docs/relay.md)."""

    listen: str = _key("127.0.0.1:10025", "host:port")
    next_hop: str = _key("127.0.0.1:25", "host:port of the MTA that delivers onwards")
    hostname: str = _key("", "the name in the greeting and the Received header; empty: this host's name")
    tls_cert: str = _key("", "PEM certificate for STARTTLS offered to clients; with tls_key")
    tls_key: str = _key("", "PEM private key for STARTTLS; with tls_cert")
    require_tls: bool = _key(False, "clients must STARTTLS before MAIL and AUTH")
    allowed_networks: tuple[str, ...] = _key(("127.0.0.0/8", "::1/128"), "may relay without AUTH (CIDR)")
    auth_users_file: str = _key(
        "", '"user:<hash>" lines (typoguard relay hash-password); empty: no SMTP AUTH'
    )
    next_hop_tls: str = _key("opportunistic", 'STARTTLS to the next hop: "none", "opportunistic", "required"')
    next_hop_ca_file: str = _key("", "CA bundle that signed the next hop's certificate; empty: system CAs")
    next_hop_verify: bool = _key(True, '"required": check the next hop\'s certificate and name')
    next_hop_timeout: float = _key(60.0, "seconds for each next-hop reply (a message: 1 s more per 64 KiB)")
    max_message_size: int = _key(36_700_160, "bytes (35 MiB, Exchange Online's default); larger: 552 5.3.4")
    max_recipients: int = _key(1000, "per message; more: 452 4.5.3")
    max_sessions: int = _key(500, "SMTP sessions at once; beyond: 421 at connect")
    command_timeout: float = _key(300.0, "idle seconds before a client session is closed (RFC 5321: 5 min)")
    quarantine_dir: str = _key("", "held messages; empty: <[store] data_dir>/quarantine")
    on_error: str = _key("tempfail", 'checking failed: "tempfail" (451, the sender retries) or "accept"')
    add_received: bool = _key(True, "prepend a Received header (trace) to relayed mail")
    # look for sensitive content (categories and counts only are recorded): "when-relevant" (when a content
    # rule could change a recipient's decision, ADR 0010), "always" or true, or false (never)
    content_scan: bool | str = _key(
        "when-relevant", 'scan content: "when-relevant" (ADR 0010), "always" (or true), or false'
    )
    content_max_bytes: int = _key(1_048_576, "decoded text scanned per message; the rest is not looked at")
    content_flagged_action: str = _key("hold", "a flagged (warn) recipient and any sensitive content")
    content_first_contact_action: str = _key("hold", "a first-time external recipient and high content")
    content_high: tuple[str, ...] = _key(
        ("classified", "cui", "credential", "ssn", "payment_card", "passport"),
        "content categories that count as high",
    )

    @cached_property
    def listen_address(self) -> HostPort:
        return parse_host_port(self.listen, "[relay] listen")

    @cached_property
    def next_hop_address(self) -> HostPort:
        return parse_host_port(self.next_hop, "[relay] next_hop")


@dataclass(frozen=True)
class SinkConfig:
    """``typoguard sink``: the MX for look-alike domains (docs/sink.md).

    Templates are the text after ``550 5.1.2 `` and may use {recipient}, {intended_address}, {domain} and
    {intended} (the neutral one only {recipient} and {domain}).
    """

    listen: tuple[str, ...] = _key(("127.0.0.1:2525",), "host:port, several allowed")
    hostname: str = _key("", "the name in the greeting; empty: this host's name")
    domains: tuple[str, ...] = _key((), 'look-alikes answered for: "army-mil.com" or "army-mil.com=army.mil"')
    lookalikes_of: tuple[str, ...] | None = _key(
        None, "answer for look-alikes of these; not set: the [protect] domains"
    )
    min_score: float = _key(0.7, "a domain is a look-alike of a protected one from this score on")
    reject_template: str = _key(
        "<{recipient}>: {domain} is not {intended}; you probably meant <{intended_address}>."
        " Check the address and send again",
        "the refusal for a look-alike of a protected domain",
    )
    neutral_template: str = _key(
        "<{recipient}>: {domain} does not receive mail; check the address",
        "the refusal for other [sink] domains; {recipient} and {domain} only",
    )
    tls_cert: str = _key("", "PEM certificate for STARTTLS; with tls_key")
    tls_key: str = _key("", "PEM private key for STARTTLS; with tls_cert")
    sender_hash_key_file: str = _key("", "HMAC key for repeat-sender statistics; empty: senders not counted")
    retention: str = _key("400d", "counts older than this are deleted")
    database: str = _key("", "empty: [store] url if set, else SQLite sink.db under [store] data_dir")
    flush_interval: float = _key(10.0, "seconds between writes of the in-memory counts")
    max_sessions: int = _key(1000, "SMTP sessions at once; beyond: 421 at connect")
    max_connections_per_network: int = _key(20, "sessions at once from one client network")
    connections_per_minute_per_network: int = _key(120, "new sessions a minute from one client network")
    rcpt_per_minute_per_network: int = _key(1200, "RCPTs beyond get 450 4.7.1 (try later)")
    max_rcpt_per_session: int = _key(1000, "then 421 and the session is closed")
    ipv4_prefix: int = _key(24, "a client network: the address's /24 (8..32)")
    ipv6_prefix: int = _key(64, "a client network: the address's /64 (16..128)")
    command_timeout: float = _key(60.0, "idle seconds before the session is closed")
    session_timeout: float = _key(600.0, "seconds a whole session may last at most")

    @cached_property
    def listen_addresses(self) -> tuple[HostPort, ...]:
        if not self.listen:
            raise ConfigError("[sink] listen must name at least one host:port")
        return tuple(parse_host_port(item, "[sink] listen") for item in self.listen)


@dataclass(frozen=True)
class MilterConfig:
    """``typoguard milter``: the milter for Sendmail, Postfix and other milter MTAs (docs/milter.md)."""

    listen: str = _key(
        "", 'host:port or unix:/path, e.g. "127.0.0.1:10045"; empty: typoguard serve starts no milter'
    )
    on_error: str = _key(
        "tempfail", 'the decision itself failed: "tempfail" (4xx, the sender retries) or "continue"'
    )
    metrics_listen: str = _key(
        "",
        "host:port of the Prometheus metrics endpoint of `typoguard milter` on its own; empty: none"
        " (under `typoguard serve` the milter's metrics are on [policyd] metrics_listen)",
    )

    @cached_property
    def listen_address(self) -> HostPort | UnixSocket:
        """``listen``, or 127.0.0.1:10045 when empty (``typoguard milter`` on its own)."""
        return parse_listen(self.listen or "127.0.0.1:10045", "[milter] listen")

    @cached_property
    def metrics_address(self) -> HostPort | None:
        """``metrics_listen``, or None when there is no metrics endpoint."""
        if not self.metrics_listen:
            return None
        return parse_host_port(self.metrics_listen, "[milter] metrics_listen")


@dataclass(frozen=True)
class PostfixConfig:
    """The Postfix instance whose queue ``typoguard held``, the API and the dashboard read and change."""

    config_directory: str = _key(
        "", "postqueue/postsuper -c DIR (absolute); empty: $MAIL_CONFIG if set, else Postfix's default"
    )
    privileged_helper: str = _key(
        "auto", 'how a non-root typoguard runs them: "auto", "none", "sudo[:PATH]", "unix[:PATH]"'
    )


@dataclass(frozen=True)
class WatchConfig:
    """``typoguard watch``: look-alikes coming alive in DNS and leak patterns in the decision log, as
    events that alerts (``[[alert]]``) send on (docs/watch.md)."""

    enabled: bool = _key(False, "`typoguard serve` runs the watch rounds when true")
    every: str = _key("6h", "time between rounds (e.g. 6h, 30m), jittered by 10% so nodes do not align")
    resolver: tuple[str, ...] = _key((), 'DNS servers to ask, "ADDRESS[:PORT]"; empty: the system\'s')
    timeout: float = _key(2.0, "seconds per DNS try")
    retries: int = _key(2, "DNS tries after a timeout")
    concurrency: int = _key(200, "DNS queries in flight at most")
    limit: int = _key(0, "look-alikes per protected domain at most (the best scored); 0: all")
    min_score: float = _key(0.0, "look-alikes scoring less are not scanned")
    squatter_min: int = _key(3, "look-alikes behind one mail provider that make it a squatter cluster")
    window: str = _key("7d", "how far back the decision log is read for leak patterns")
    repeat_min: int = _key(3, "a sender with this many look-alike hits in the window is an event")
    popular_min: int = _key(3, "a look-alike hit by this many different senders in the window is an event")
    held_max_age: str = _key("24h", "held mail waiting longer than this is an event")
    remind_every: str = _key("24h", "an open event is alerted again at most this often")
    metrics_listen: str = _key(
        "",
        "host:port of the Prometheus metrics endpoint of the foreground `typoguard watch`; empty: none"
        " (under `typoguard serve` the watch metrics are on [policyd] metrics_listen)",
    )

    @cached_property
    def metrics_address(self) -> HostPort | None:
        """``metrics_listen``, or None when there is no metrics endpoint."""
        if not self.metrics_listen:
            return None
        return parse_host_port(self.metrics_listen, "[watch] metrics_listen")


@dataclass(frozen=True)
class AlertConfig:
    """One ``[[alert]]`` table: where events go (any number of them; docs/watch.md)."""

    type: str = _key("webhook", '"webhook", "syslog" or "email"')
    name: str = _key("", "a label for logs and metrics; empty: the type and its target")
    min_severity: str = _key("warning", '"info", "warning" or "critical": milder events are not sent')
    kinds: tuple[str, ...] = _key((), "only these event kinds; empty: every kind")
    url: str = _key("", "webhook: the URL to POST to (https:// or http://)")
    preset: str = _key("", 'webhook: "" (typoguard JSON, signed), "slack" or "teams" (their message formats)')
    secret_file: str = _key("", "webhook: file holding the HMAC-SHA256 key (X-Typoguard-Signature)")
    timeout: float = _key(5.0, "webhook: seconds per attempt")
    retries: int = _key(5, "webhook: attempts after a failure, with exponential backoff")
    backlog: int = _key(1000, "webhook: events waiting at most; older ones are dropped and counted")
    socket: str = _key("/dev/log", 'syslog: a Unix socket path, or "udp:HOST:PORT"')
    facility: str = _key("local0", "syslog facility (local0..local7, daemon, user, auth, mail)")
    to: tuple[str, ...] = _key((), "email: digest recipients (never a look-alike domain)")
    sender: str = _key("", "email: From address; empty: typoguard@<this host>")
    smtp: str = _key("127.0.0.1:25", "email: host:port of the local MTA (unless sendmail is set)")
    sendmail: str = _key("", 'email: deliver through this command instead, e.g. "/usr/sbin/sendmail"')


ALERT_TYPES: Final = ("webhook", "syslog", "email")
ALERT_PRESETS: Final = ("", "slack", "teams")
SEVERITY_NAMES: Final = ("info", "warning", "critical")


@dataclass(frozen=True)
class Config:
    protect: ProtectConfig = field(default_factory=ProtectConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    policyd: PolicydConfig = field(default_factory=PolicydConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    log: LogConfig = field(default_factory=LogConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    sink: SinkConfig = field(default_factory=SinkConfig)
    milter: MilterConfig = field(default_factory=MilterConfig)
    postfix: PostfixConfig = field(default_factory=PostfixConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    alert: tuple[AlertConfig, ...] = ()
    source: str = "<defaults>"
    base_dir: str = "."

    def protect_files(self) -> list[Path]:
        return [Path(self.base_dir, f) if not Path(f).is_absolute() else Path(f) for f in self.protect.files]


SECTIONS: Final[Mapping[str, type[Any]]] = {
    "protect": ProtectConfig,
    "policy": PolicyConfig,
    "policyd": PolicydConfig,
    "store": StoreConfig,
    "log": LogConfig,
    "http": HttpConfig,
    "relay": RelayConfig,
    "sink": SinkConfig,
    "milter": MilterConfig,
    "postfix": PostfixConfig,
    "watch": WatchConfig,
}
# Arrays of tables (``[[alert]]``): each table read as a section of its own.
TABLE_LISTS: Final[Mapping[str, type[Any]]] = {"alert": AlertConfig}


class Problem(NamedTuple):
    """One thing wrong with a configuration: its section and the keys it is about (the first of them found in
    the file gives the line ``typoguard config check`` names), and the message ``load_config`` raises."""

    section: str
    keys: tuple[str, ...]
    message: str
    item: int = 0  # an array of tables ([[alert]]): which of its tables, from 1; 0 for a plain section


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``; did you mean X?`` for the closest of ``known``, else ``; known: a, b, c``."""
    choices = list(known)
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]}?" if close else f"; known: {', '.join(choices)}"


# Keys whose value is a word or, as they were first, true/false (validated by their section).
_WORD_OR_BOOL = frozenset({("relay", "content_scan")})


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"[{section}] {key}"
    if (section, key) in _WORD_OR_BOOL:
        if not isinstance(value, bool | str):
            raise ConfigError(f"{where} must be true, false or a string, got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
        ):
            raise ConfigError(f"{where} must be a table of numbers")
        return {str(k).lower(): float(v) for k, v in value.items()}
    # tuples of strings (and the optional models list, default None)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return tuple(value)


def _apply(
    config: Config, data: Mapping[str, Any], origin: str, problems: list[Problem] | None = None
) -> Config:
    """``config`` with ``data`` (a parsed file or the environment) applied. A mistake raises
    ``ConfigError``; with ``problems``, every mistake is appended there instead and its key left out."""

    def wrong(problem: Problem, message: str) -> None:
        if problems is None:
            raise ConfigError(message)
        problems.append(problem)

    changes: dict[str, Any] = {}
    for section, values in data.items():
        if section in TABLE_LISTS:
            changes[section] = _apply_tables(section, values, origin, wrong)
            continue
        cls = SECTIONS.get(section)
        if cls is None:
            found = f"unknown section [{section}]{did_you_mean(section, SECTIONS)}"
            wrong(
                Problem(section, (), found),
                f"{origin}: unknown section [{section}]; known: {', '.join([*SECTIONS, *TABLE_LISTS])}",
            )
            continue
        if not isinstance(values, Mapping):
            wrong(
                Problem(section, (), f"[{section}] must be a table"), f"{origin}: [{section}] must be a table"
            )
            continue
        current = getattr(config, section)
        known = {f.name: getattr(current, f.name) for f in fields(cls)}
        updates = {}
        for key, value in values.items():
            if key not in known:
                found = f"unknown key {key!r} in [{section}]{did_you_mean(key, known)}"
                message = f"{origin}: unknown key {key!r} in [{section}]; known: {', '.join(known)}"
                wrong(Problem(section, (key,), found), message)
                continue
            try:
                updates[key] = _coerce(section, key, value, known[key] if known[key] is not None else ())
            except ConfigError as exc:
                wrong(Problem(section, (key,), str(exc)), str(exc))
        changes[section] = replace(current, **updates)
    return replace(config, **changes)


def _apply_tables(section: str, values: Any, origin: str, wrong: Callable[[Problem, str], None]) -> Any:
    """``[[section]]`` tables (a TOML array of tables) -> a tuple of their dataclass, mistakes as in
    ``_apply``."""
    cls = TABLE_LISTS[section]
    if not isinstance(values, list) or not all(isinstance(v, Mapping) for v in values):
        message = f"[[{section}]] must be tables, one [[{section}]] header each"
        wrong(Problem(section, (), message), f"{origin}: {message}")
        return ()
    out = []
    for n, table in enumerate(values, 1):
        where = f"[[{section}]] #{n}"
        default = cls()
        known = {f.name: getattr(default, f.name) for f in fields(cls)}
        updates = {}
        for key, value in table.items():
            if key not in known:
                found = f"unknown key {key!r} in {where}{did_you_mean(key, known)}"
                wrong(Problem(section, (key,), found, n), f"{origin}: {found}")
                continue
            try:
                updates[key] = _coerce(section, key, value, known[key])
            except ConfigError as exc:
                message = str(exc).replace(f"[{section}]", where, 1)
                wrong(Problem(section, (key,), message, n), message)
        out.append(replace(default, **updates))
    return tuple(out)


def apply_collecting(config: Config, data: Mapping[str, Any], origin: str) -> tuple[Config, list[Problem]]:
    """``data`` applied to ``config`` as ``load_config`` applies it, every mistake collected (and its key
    or section left at what it was) instead of raised: ``typoguard config check``."""
    found: list[Problem] = []
    return _apply(config, data, origin, found), found


class EnvSetting(NamedTuple):
    """One ``TYPOGUARD_<SECTION>__<KEY>`` variable: its name, what it sets and the value read from it."""

    name: str
    section: str
    key: str
    value: Any


def env_settings(environ: Mapping[str, str]) -> list[EnvSetting]:
    """The ``TYPOGUARD_*`` variables that set config keys (each value read as TOML, else as a string)."""
    out = []
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, key = name[len(ENV_PREFIX) :].lower().split("__", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out.append(EnvSetting(name, section, key, value))
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for setting in env_settings(environ):
        out.setdefault(setting.section, {})[setting.key] = setting.value
    return out


def validate(config: Config) -> Config:
    """Cross-field checks; returns the config unchanged or raises ``ConfigError`` (the first problem)."""
    for problem in problems(config):
        raise ConfigError(problem.message)
    return config


def problems(config: Config) -> Iterator[Problem]:
    """Every cross-field and value problem of ``config``, in the order ``validate`` checks them."""
    p = config.policy
    try:
        p.thresholds()
    except ConfigError as exc:
        yield Problem("policy", ("warn_at", "hold_at", "reject_at"), str(exc))
    if p.mode not in ("enforce", "audit"):
        yield Problem("policy", ("mode",), f"[policy] mode must be 'enforce' or 'audit', got {p.mode!r}")
    pd = config.policyd
    if pd.on_error not in ("dunno", "tempfail", "disconnect"):
        yield Problem(
            "policyd", ("on_error",), "[policyd] on_error must be 'dunno', 'tempfail' or 'disconnect'"
        )
    if pd.reject_code not in (550, 553, 554):
        yield Problem("policyd", ("reject_code",), "[policyd] reject_code must be 550, 553 or 554")
    if pd.max_connections < 1 or pd.max_connections_per_client < 1:
        yield Problem(
            "policyd",
            ("max_connections", "max_connections_per_client"),
            "[policyd] max_connections and max_connections_per_client must be at least 1",
        )
    if not (p.help_text.isascii() and p.help_text.isprintable()) or len(p.help_text) > 200:
        message = "[policy] help_text must be one line of printable ASCII, at most 200 characters"
        yield Problem("policy", ("help_text",), message)
    for name, w in config.protect.weights.items():
        if not 0.0 <= w <= 1.0:
            yield Problem("protect", ("weights",), f"[protect] weights: {name} = {w} is outside 0..1")
    if config.http.workers < 1:
        yield Problem("http", ("workers",), f"[http] workers must be at least 1, got {config.http.workers}")
    if config.store.keep_days < 0:
        message = (
            f"[store] keep_days must be a number of days, or 0 to keep forever, got {config.store.keep_days}"
        )
        yield Problem("store", ("keep_days",), message)
    yield from _address_problems(config)
    yield from _http_problems(config.http)
    yield from _sink_problems(config.sink)
    yield from _relay_problems(config.relay)
    yield from _log_problems(config.log)
    if config.milter.on_error not in ("tempfail", "continue"):
        yield Problem(
            "milter",
            ("on_error",),
            f'[milter] on_error must be "tempfail" or "continue", got {config.milter.on_error!r}',
        )
    if config.postfix.config_directory and not config.postfix.config_directory.startswith("/"):
        yield Problem(
            "postfix",
            ("config_directory",),
            f"[postfix] config_directory must be an absolute path, got {config.postfix.config_directory!r}",
        )
    yield from _watch_problems(config)
    if not re.fullmatch(r"auto|none|(sudo|unix)(:/\S+)?", config.postfix.privileged_helper):
        yield Problem(
            "postfix",
            ("privileged_helper",),
            '[postfix] privileged_helper must be "auto", "none", "sudo", "sudo:/PATH", "unix" or'
            f' "unix:/PATH", got {config.postfix.privileged_helper!r}',
        )


def _watch_problems(config: Config) -> Iterator[Problem]:
    """``[watch]`` durations and counts; each ``[[alert]]`` has what its type needs."""
    w = config.watch
    for key in ("every", "window", "held_max_age", "remind_every"):
        value = getattr(w, key)
        if not re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhdw]?\s*", value) or not re.search(r"[1-9]", value):
            yield Problem(
                "watch", (key,), f"[watch] {key} must be a duration such as 6h, 30m, 7d; got {value!r}"
            )
    for key in ("retries", "limit"):
        if getattr(w, key) < 0:
            yield Problem("watch", (key,), f"[watch] {key} must be zero or more")
    for key in ("concurrency", "squatter_min", "repeat_min", "popular_min"):
        if getattr(w, key) < 1:
            yield Problem("watch", (key,), f"[watch] {key} must be at least 1")
    if not w.timeout > 0:
        yield Problem("watch", ("timeout",), "[watch] timeout must be positive")
    for n, a in enumerate(config.alert, 1):
        where = f"[[alert]] #{n}"
        if a.type not in ALERT_TYPES:
            yield Problem(
                "alert", ("type",), f"{where} type must be one of {', '.join(ALERT_TYPES)}; got {a.type!r}", n
            )
        if a.min_severity not in SEVERITY_NAMES:
            yield Problem(
                "alert", ("min_severity",), f"{where} min_severity must be info, warning or critical", n
            )
        if a.type == "webhook" and not re.match(r"https?://[^/\s]+", a.url):
            yield Problem("alert", ("url",), f'{where} (webhook) needs url = "https://..."', n)
        if a.preset not in ALERT_PRESETS:
            yield Problem("alert", ("preset",), f'{where} preset must be "", "slack" or "teams"', n)
        if a.type == "email" and not a.to:
            yield Problem("alert", ("to",), f"{where} (email) needs to = [addresses]", n)
        if a.facility not in SYSLOG_FACILITIES:
            yield Problem(
                "alert", ("facility",), f"{where} facility must be one of {', '.join(SYSLOG_FACILITIES)}", n
            )
        if a.retries < 0 or a.backlog < 1 or not a.timeout > 0:
            yield Problem(
                "alert",
                ("retries", "backlog", "timeout"),
                f"{where} retries >= 0, backlog >= 1, timeout > 0",
                n,
            )


def _address_problems(config: Config) -> Iterator[Problem]:
    """Every address, whether or not its service is started, parsed once (each section keeps its parsed
    value for the servers): a mistake is named when the config is read, not when a server starts."""
    for section, key, attribute in (
        ("policyd", "listen", "listen_addresses"),
        ("policyd", "metrics_listen", "metrics_address"),
        ("http", "listen", "listen_address"),
        ("relay", "listen", "listen_address"),
        ("relay", "next_hop", "next_hop_address"),
        ("sink", "listen", "listen_addresses"),
        ("milter", "listen", "listen_address"),
        ("milter", "metrics_listen", "metrics_address"),
        ("watch", "metrics_listen", "metrics_address"),
    ):
        try:
            getattr(getattr(config, section), attribute)
        except ConfigError as exc:
            yield Problem(section, (key,), str(exc))


def _http_problems(http: HttpConfig) -> Iterator[Problem]:
    """``[http]`` limits are positive; ``trusted_proxies`` are IP addresses or networks."""
    for name in ("max_body_bytes", "max_recipients", "session_max_age"):
        if getattr(http, name) < 1:
            yield Problem("http", (name,), f"[http] {name} must be at least 1")
    if not 0 <= http.process_nice <= 19:
        yield Problem("http", ("process_nice",), f"[http] process_nice must be 0-19, got {http.process_nice}")
    for proxy in http.trusted_proxies:
        try:
            ipaddress.ip_network(proxy.strip())  # as uvicorn reads it: 10.0.0.0/8, not 10.0.0.1/8
        except ValueError as exc:
            yield Problem("http", ("trusted_proxies",), f"[http] trusted_proxies: {exc}")


def _log_problems(log: LogConfig) -> Iterator[Problem]:
    """``[log]``: a known target with what it needs; ``file`` only where it is used."""
    if log.target not in ("", *LOG_TARGETS):
        yield Problem(
            "log", ("target",), f"[log] target must be one of {', '.join(LOG_TARGETS)}, got {log.target!r}"
        )
    if log.target == "file" and not log.file:
        yield Problem("log", ("target", "file"), '[log] target = "file" needs [log] file (the path to write)')
    if log.file and log.target not in ("", "file"):
        message = f'[log] file is only used with target = "file", not {log.target!r}: remove one'
        yield Problem("log", ("file", "target"), message)
    if log.syslog_facility not in SYSLOG_FACILITIES:
        known = ", ".join(SYSLOG_FACILITIES)
        message = f"[log] syslog_facility must be one of {known}, got {log.syslog_facility!r}"
        yield Problem("log", ("syslog_facility",), message)
    for name in ("syslog_socket", "journal_socket"):
        path = getattr(log, name)
        if not path.startswith("/") or len(path.encode()) > _SUN_PATH_MAX:
            message = f"[log] {name} must be an absolute path of at most {_SUN_PATH_MAX} bytes"
            yield Problem("log", (name,), message)


RELAY_CONTENT_CATEGORIES = ("classified", "cui", "credential", "ssn", "payment_card", "passport", "itinerary")


def _relay_problems(relay: RelayConfig) -> Iterator[Problem]:
    """``[relay]`` checks: networks, TLS and content choices, positive limits."""

    def wrong(keys: tuple[str, ...], message: str) -> Problem:
        return Problem("relay", keys, f"[relay] {message}")

    if bool(relay.tls_cert) != bool(relay.tls_key):
        yield wrong(("tls_cert", "tls_key"), "tls_cert and tls_key go together")
    if (relay.require_tls or relay.auth_users_file) and not relay.tls_cert:
        keys = ("require_tls", "auth_users_file")
        yield wrong(keys, "require_tls and auth_users_file need tls_cert and tls_key (AUTH over TLS)")
    for cidr in relay.allowed_networks:
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError as exc:
            yield wrong(("allowed_networks",), f"allowed_networks: {exc}")
    if relay.next_hop_tls not in ("none", "opportunistic", "required"):
        yield wrong(("next_hop_tls",), "next_hop_tls must be 'none', 'opportunistic' or 'required'")
    if relay.on_error not in ("tempfail", "accept"):
        yield wrong(("on_error",), "on_error must be 'tempfail' or 'accept'")
    if relay.content_scan not in (True, False, "always", "when-relevant"):
        yield wrong(("content_scan",), "content_scan must be 'when-relevant', 'always' (or true) or false")
    for name in ("content_flagged_action", "content_first_contact_action"):
        if getattr(relay, name) not in ("allow", "warn", "hold", "reject"):
            yield wrong((name,), f"{name} must be 'allow', 'warn', 'hold' or 'reject'")
    unknown = set(relay.content_high) - set(RELAY_CONTENT_CATEGORIES)
    if unknown:
        known = ", ".join(RELAY_CONTENT_CATEGORIES)
        yield wrong(("content_high",), f"content_high: unknown {', '.join(sorted(unknown))}; known: {known}")
    for name in ("next_hop_timeout", "command_timeout"):
        if not getattr(relay, name) > 0:
            yield wrong((name,), f"{name} must be positive")
    for name in ("max_message_size", "max_recipients", "max_sessions", "content_max_bytes"):
        if getattr(relay, name) < 1:
            yield wrong((name,), f"{name} must be at least 1")


_SINK_DURATION = re.compile(r"\d+(?:\.\d+)?\s*[smhdw]?")
_SINK_SAMPLE = {"recipient": "bob@army.ml", "intended_address": "bob@army.mil", "domain": "army.ml",
                "intended": "army.mil"}  # fmt: skip


def _sink_problems(sink: SinkConfig) -> Iterator[Problem]:
    """``[sink]`` checks: numbers, templates that render to one ASCII reply line."""

    def wrong(keys: tuple[str, ...], message: str) -> Problem:
        return Problem("sink", keys, f"[sink] {message}")

    if not 0.0 <= sink.min_score <= 1.0:
        yield wrong(("min_score",), f"min_score must be within 0..1, got {sink.min_score}")
    for name, keys in (
        ("reject_template", tuple(_SINK_SAMPLE)),
        ("neutral_template", ("recipient", "domain")),
    ):
        template = getattr(sink, name)
        try:
            text = template.format(**{k: _SINK_SAMPLE[k] for k in keys})
        except (KeyError, IndexError, ValueError) as exc:
            known = ", ".join("{" + k + "}" for k in keys)
            yield wrong((name,), f"{name}: bad placeholder {exc} (known: {known})")
            continue
        if not text.isascii() or not text.isprintable() or len(text) > 400:
            yield wrong((name,), f"{name} must be printable ASCII of at most 400 characters")
    if bool(sink.tls_cert) != bool(sink.tls_key):
        yield wrong(("tls_cert", "tls_key"), "tls_cert and tls_key go together")
    if not _SINK_DURATION.fullmatch(sink.retention.strip().lower()):
        yield wrong(("retention",), f"retention is not a duration: {sink.retention!r} (e.g. 400d, 12w)")
    for name in ("flush_interval", "command_timeout", "session_timeout"):
        if not getattr(sink, name) > 0:
            yield wrong((name,), f"{name} must be positive")
    for name in (
        "max_sessions", "max_connections_per_network", "connections_per_minute_per_network",
        "rcpt_per_minute_per_network", "max_rcpt_per_session",
    ):  # fmt: skip
        if getattr(sink, name) < 1:
            yield wrong((name,), f"{name} must be at least 1")
    if not 8 <= sink.ipv4_prefix <= 32 or not 16 <= sink.ipv6_prefix <= 128:
        yield wrong(("ipv4_prefix", "ipv6_prefix"), "ipv4_prefix must be 8..32 and ipv6_prefix 16..128")


def nothing_to_protect(config: Config) -> str:
    """Why a server refuses ``config`` (at start and at a reload): it protects no domain, so it would let
    every look-alike through while looking healthy to the MTA."""
    return f"nothing to protect: add [protect] domains or files to the config ({protect_sources(config)})"


def protect_sources(config: Config) -> str:
    """Where the protected domains were looked for, for "nothing to protect" messages, e.g.
    ``/etc/typoguard/typoguard.toml has [protect] domains = [] and no files``."""
    if config.source == "<defaults>":
        return "no config file was read, and the defaults protect nothing"
    pc = config.protect
    domains = "domains = [" + ", ".join(f'"{d}"' for d in pc.domains) + "]"
    if not pc.files:
        return f"{config.source} has [protect] {domains} and no files"
    files = ", ".join(str(f) for f in config.protect_files())
    return f"{config.source} has [protect] {domains} and files {files} with no domain in them"


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the TOML file at ``path`` (if any), then ``TYPOGUARD_*`` environment overrides."""
    config = Config()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config {p} is not UTF-8") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {p} is not valid TOML: {exc}") from None
        config = replace(_apply(config, data, str(p)), source=str(p), base_dir=str(p.parent))
    env = _env_overrides(os.environ if environ is None else environ)
    if env:
        config = _apply(config, env, "environment")
    return validate(config)
