"""Configuration: TOML, layered (shipped defaults < site file < environment), frozen and validated.

Every key has a default here, so an empty file is a valid configuration. Unknown sections or keys are an
error (a typo in a security setting must not be silently ignored). Environment overrides use
``TYPOGUARD_<SECTION>__<KEY>`` with a TOML value, e.g. ``TYPOGUARD_POLICY__MODE='"audit"'`` or
``TYPOGUARD_POLICYD__LISTEN=127.0.0.1:10041`` (a bare word is taken as a string).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Final, NamedTuple

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


@dataclass(frozen=True)
class ProtectConfig:
    domains: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # relative paths are relative to the config file
    trusted: tuple[str, ...] = ()
    weights: Mapping[str, float] = field(default_factory=dict)
    models: tuple[str, ...] | None = None  # None: every registered model
    layouts: tuple[str, ...] = ("qwerty", "qwertz", "azerty")
    use_legit_list: bool = True
    use_word_list: bool = True  # damp look-alikes whose name is a common word (life.com vs live.com)


@dataclass(frozen=True)
class PolicyConfig:
    reject_at: float = 0.9
    hold_at: float = 0.7
    warn_at: float = 0.4
    mode: str = "enforce"  # or "audit": decide and log, never block
    internal_senders: tuple[str, ...] = ()  # sender domains, "*.example.org" for subdomains
    internal_networks: tuple[str, ...] = ()  # client networks whose mail is guarded (CIDR)
    guard_sasl: bool = True  # SASL-authenticated clients are internal senders
    help_text: str = ""  # ends every refusal a sender reads, e.g. "Questions: helpdesk@army.mil" (ASCII)

    def thresholds(self) -> Thresholds:
        return Thresholds(self.reject_at, self.hold_at, self.warn_at)


@dataclass(frozen=True)
class PolicydConfig:
    listen: str = "127.0.0.1:10040"  # host:port, or unix:/path/to/socket
    on_error: str = "dunno"  # what a broken request gets: "dunno" (disconnect, Postfix default applies)
    # What a sender reads after Postfix's "<rcpt>: Recipient address rejected: " (docs/postfix.md, ADR 0017);
    # the enhanced status code 5.1.2 is added unless the template starts with its own.
    reject_template: str = (
        "Not sent: {domain} is not {intended}.{lookalikes} Did you mean {suggestion}?"
        " Nothing was delivered to this address (typoguard).{help}"
    )
    reject_code: int = 550
    hold_template: str = "typoguard: {domain} looks like {intended} ({why})"
    warn_header: str = "X-Typoguard-Warning"
    idle_timeout: float = 300.0
    max_connections: int = 1000
    max_connections_per_client: int = 200  # per client address; beyond it its longest-idle one is closed
    max_line: int = 8192
    max_attributes: int = 100
    metrics_listen: str = ""  # e.g. "127.0.0.1:9040"; empty: no metrics endpoint
    instance: str = ""  # name in logs; default: host name

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
    enabled: bool = True  # false: no decision store, overrides or history (the detector's word alone)
    url: str = ""  # empty: SQLite file typoguard.db under data_dir; or postgresql+psycopg://user@host/db
    data_dir: str = "/var/lib/typoguard"  # relative paths are relative to the config file
    spool_dir: str = ""  # decisions waiting for the database; empty: <data_dir>/spool
    node: str = ""  # this node's name in the decision log; empty: host name
    batch_size: int = 1000  # decisions per database transaction
    queue_size: int = 100_000  # decisions held in memory before spilling to the spool
    flush_interval: float = 0.2  # seconds the writer waits for a batch to fill
    retry_interval: float = 2.0  # seconds between attempts while the database is down
    refresh_interval: float = 5.0  # seconds between override/correspondent snapshots
    writer_nice: int = 19  # CPU priority of the decision writer process (Linux): mail first, the log after
    writer_idle: bool = True  # Linux SCHED_IDLE for the writer: any other work preempts it (docs/store.md)
    retention: str = "180d"  # default age for `typoguard db prune`
    # decisions and held-mail actions older than this many days are deleted by the running service (hourly,
    # in small batches: store/retention.py); 0 keeps them forever. Why 400: docs/store.md, "Retention"
    keep_days: int = 400
    confirmed_min_count: int = 10  # mails before an admin-confirmed correspondent is allowed


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    file: str = ""  # empty: standard error


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = False  # started by `typoguard serve` when true; `typoguard http` runs it on its own
    listen: str = "127.0.0.1:8025"  # host:port
    session_secret_file: str = ""  # key signing session cookies; empty: <data_dir>/http-session.key
    login_attempts_per_minute: int = 5  # per client IP
    session_max_age: int = 8 * 3600  # seconds
    cors_origins: tuple[str, ...] = ()  # web pages that may call the API (webmail, add-ins)
    workers: int = 1  # `typoguard http` processes on one address (SO_REUSEPORT); see docs/http-api.md
    # typoguard serve: false (default) runs the API as a `typoguard http` child process, so no HTTP request
    # takes the policy service's event loop; true keeps it in that loop (one process, ADR 0015)
    embedded: bool = False
    trusted_proxies: tuple[str, ...] = ()  # proxies whose X-Forwarded-For/-Proto count (IPs or CIDRs)
    max_body_bytes: int = 65536  # a larger request body gets 413, read no further
    max_recipients: int = 1000  # per POST /v1/check; more: 400

    @cached_property
    def listen_address(self) -> HostPort:
        """``listen``; without a host (``:8025``) it is 127.0.0.1."""
        return parse_host_port(self.listen, "[http] listen", default_host="127.0.0.1")


@dataclass(frozen=True)
class RelayConfig:
    """``typoguard relay``: the SMTP filtering smart host (issue 8), see relay/server.py."""

    listen: str = "127.0.0.1:10025"  # host:port
    next_hop: str = "127.0.0.1:25"  # host:port of the MTA that delivers onwards
    hostname: str = ""  # the name in the greeting and the Received header; empty: this host's name
    tls_cert: str = ""  # PEM files for STARTTLS offered to clients; both or neither
    tls_key: str = ""
    require_tls: bool = False  # clients must STARTTLS before MAIL and AUTH
    allowed_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # may relay without AUTH (CIDR)
    auth_users_file: str = ""  # "user:<hash>" lines (typoguard relay hash-password); empty: no SMTP AUTH
    next_hop_tls: str = "opportunistic"  # STARTTLS to the next hop: "none", "opportunistic", "required"
    next_hop_ca_file: str = ""  # CA bundle that signed the next hop's certificate; empty: system CAs
    next_hop_verify: bool = True  # "required": check the next hop's certificate and name
    next_hop_timeout: float = 60.0  # seconds for each next-hop reply (a message: 1 s more per 64 KiB)
    max_message_size: int = 36_700_160  # bytes (35 MiB, Exchange Online's default); larger: 552 5.3.4
    max_recipients: int = 1000  # per message; more: 452 4.5.3
    max_sessions: int = 500  # SMTP sessions at once; beyond: 421 at connect
    command_timeout: float = 300.0  # idle seconds before a client session is closed (RFC 5321: 5 min)
    quarantine_dir: str = ""  # held messages; empty: <[store] data_dir>/quarantine
    on_error: str = "tempfail"  # checking failed: "tempfail" (451, the sender retries) or "accept"
    add_received: bool = True  # prepend a Received header (trace) to relayed mail
    # look for sensitive content (categories and counts only are recorded): "when-relevant" (when a content
    # rule could change a recipient's decision, ADR 0010), "always" or true, or false (never)
    content_scan: bool | str = "when-relevant"
    content_max_bytes: int = 1_048_576  # decoded text scanned per message; the rest is not looked at
    content_flagged_action: str = "hold"  # a flagged (warn) recipient and any sensitive content
    content_first_contact_action: str = "hold"  # a first-time external recipient and high content
    content_high: tuple[str, ...] = ("classified", "cui", "credential", "ssn", "payment_card", "passport")

    @cached_property
    def listen_address(self) -> HostPort:
        return parse_host_port(self.listen, "[relay] listen")

    @cached_property
    def next_hop_address(self) -> HostPort:
        return parse_host_port(self.next_hop, "[relay] next_hop")


@dataclass(frozen=True)
class SinkConfig:
    """``typoguard sink``: the MX for look-alike domains (issue 9). Fields are owned by sink/server.py.

    Templates are the text after ``550 5.1.2 `` and may use {recipient}, {intended_address}, {domain} and
    {intended} (the neutral one only {recipient} and {domain}).
    """

    listen: tuple[str, ...] = ("127.0.0.1:2525",)  # host:port, several allowed
    hostname: str = ""  # the name in the greeting; empty: this host's name
    domains: tuple[str, ...] = ()  # look-alikes answered for: "army-mil.com" or "army-mil.com=army.mil"
    lookalikes_of: tuple[str, ...] | None = None  # answer for look-alikes of these; None: [protect] domains
    min_score: float = 0.7  # a domain is a look-alike of a protected one from this score on
    reject_template: str = (
        "<{recipient}>: {domain} is not {intended}; you probably meant <{intended_address}>."
        " Check the address and send again"
    )
    neutral_template: str = "<{recipient}>: {domain} does not receive mail; check the address"
    tls_cert: str = ""  # PEM files for STARTTLS; both or neither
    tls_key: str = ""
    sender_hash_key_file: str = ""  # HMAC key for repeat-sender statistics; empty: senders not counted
    retention: str = "400d"  # counts older than this are deleted
    database: str = ""  # empty: [store] url if set, else SQLite sink.db under [store] data_dir
    flush_interval: float = 10.0  # seconds between writes of the in-memory counts
    max_sessions: int = 1000  # SMTP sessions at once; beyond: 421 at connect
    max_connections_per_network: int = 20  # sessions at once from one client network
    connections_per_minute_per_network: int = 120
    rcpt_per_minute_per_network: int = 1200  # RCPTs beyond get 450 4.7.1 (try later)
    max_rcpt_per_session: int = 1000  # then 421 and the session is closed
    ipv4_prefix: int = 24  # a client network: the address's /24 (IPv4) or /64 (IPv6)
    ipv6_prefix: int = 64
    command_timeout: float = 60.0  # idle seconds before the session is closed
    session_timeout: float = 600.0  # a whole session at most

    @cached_property
    def listen_addresses(self) -> tuple[HostPort, ...]:
        if not self.listen:
            raise ConfigError("[sink] listen must name at least one host:port")
        return tuple(parse_host_port(item, "[sink] listen") for item in self.listen)


@dataclass(frozen=True)
class PostfixConfig:
    """The Postfix instance whose queue ``typoguard held``, the API and the dashboard read and change."""

    # postqueue/postsuper -c DIR (absolute); empty: $MAIL_CONFIG if set, else Postfix's default (/etc/postfix)
    config_directory: str = ""


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
    postfix: PostfixConfig = field(default_factory=PostfixConfig)
    source: str = "<defaults>"
    base_dir: str = "."

    def protect_files(self) -> list[Path]:
        return [Path(self.base_dir, f) if not Path(f).is_absolute() else Path(f) for f in self.protect.files]


_SECTIONS: dict[str, type[Any]] = {
    "protect": ProtectConfig,
    "policy": PolicyConfig,
    "policyd": PolicydConfig,
    "store": StoreConfig,
    "log": LogConfig,
    "http": HttpConfig,
    "relay": RelayConfig,
    "sink": SinkConfig,
    "postfix": PostfixConfig,
}


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


def _apply(config: Config, data: Mapping[str, Any], origin: str) -> Config:
    changes: dict[str, Any] = {}
    for section, values in data.items():
        cls = _SECTIONS.get(section)
        if cls is None:
            raise ConfigError(f"{origin}: unknown section [{section}]; known: {', '.join(_SECTIONS)}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        current = getattr(config, section)
        known = {f.name: getattr(current, f.name) for f in fields(cls)}
        updates = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{origin}: unknown key {key!r} in [{section}]; known: {', '.join(known)}")
            updates[key] = _coerce(section, key, value, known[key] if known[key] is not None else ())
        changes[section] = replace(current, **updates)
    return replace(config, **changes)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, key = name[len(ENV_PREFIX) :].lower().split("__", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out.setdefault(section, {})[key] = value
    return out


def validate(config: Config) -> Config:
    """Cross-field checks; returns the config unchanged or raises ``ConfigError``."""
    config.policy.thresholds()  # raises on bad ordering
    if config.policy.mode not in ("enforce", "audit"):
        raise ConfigError(f"[policy] mode must be 'enforce' or 'audit', got {config.policy.mode!r}")
    if config.policyd.on_error not in ("dunno", "tempfail", "disconnect"):
        raise ConfigError("[policyd] on_error must be 'dunno', 'tempfail' or 'disconnect'")
    if config.policyd.reject_code not in (550, 553, 554):
        raise ConfigError("[policyd] reject_code must be 550, 553 or 554")
    if config.policyd.max_connections < 1 or config.policyd.max_connections_per_client < 1:
        raise ConfigError("[policyd] max_connections and max_connections_per_client must be at least 1")
    help_text = config.policy.help_text
    if not (help_text.isascii() and help_text.isprintable()) or len(help_text) > 200:
        raise ConfigError("[policy] help_text must be one line of printable ASCII, at most 200 characters")
    for name, w in config.protect.weights.items():
        if not 0.0 <= w <= 1.0:
            raise ConfigError(f"[protect] weights: {name} = {w} is outside 0..1")
    if config.http.workers < 1:
        raise ConfigError(f"[http] workers must be at least 1, got {config.http.workers}")
    if config.store.keep_days < 0:
        raise ConfigError(
            f"[store] keep_days must be a number of days, or 0 to keep forever, got {config.store.keep_days}"
        )
    _parse_addresses(config)
    _validate_http(config.http)
    _validate_sink(config.sink)
    _validate_relay(config.relay)
    if config.postfix.config_directory and not config.postfix.config_directory.startswith("/"):
        raise ConfigError(
            f"[postfix] config_directory must be an absolute path, got {config.postfix.config_directory!r}"
        )
    return config


def _parse_addresses(config: Config) -> None:
    """Every address, whether or not its service is started, parsed once (each section keeps its parsed
    value for the servers): a mistake is named when the config is read, not when a server starts."""
    _ = (
        config.policyd.listen_addresses,
        config.policyd.metrics_address,
        config.http.listen_address,
        config.relay.listen_address,
        config.relay.next_hop_address,
        config.sink.listen_addresses,
    )


def _validate_http(http: HttpConfig) -> None:
    """``[http]`` limits are positive; ``trusted_proxies`` are IP addresses or networks."""
    import ipaddress

    for name in ("max_body_bytes", "max_recipients", "session_max_age"):
        if getattr(http, name) < 1:
            raise ConfigError(f"[http] {name} must be at least 1")
    for proxy in http.trusted_proxies:
        try:
            ipaddress.ip_network(proxy.strip())  # as uvicorn reads it: 10.0.0.0/8, not 10.0.0.1/8
        except ValueError as exc:
            raise ConfigError(f"[http] trusted_proxies: {exc}") from None


RELAY_CONTENT_CATEGORIES = ("classified", "cui", "credential", "ssn", "payment_card", "passport", "itinerary")


def _validate_relay(relay: RelayConfig) -> None:
    """``[relay]`` checks: networks, TLS and content choices, positive limits."""
    import ipaddress

    if bool(relay.tls_cert) != bool(relay.tls_key):
        raise ConfigError("[relay] tls_cert and tls_key go together")
    if (relay.require_tls or relay.auth_users_file) and not relay.tls_cert:
        raise ConfigError("[relay] require_tls and auth_users_file need tls_cert and tls_key (AUTH over TLS)")
    for cidr in relay.allowed_networks:
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError as exc:
            raise ConfigError(f"[relay] allowed_networks: {exc}") from None
    if relay.next_hop_tls not in ("none", "opportunistic", "required"):
        raise ConfigError("[relay] next_hop_tls must be 'none', 'opportunistic' or 'required'")
    if relay.on_error not in ("tempfail", "accept"):
        raise ConfigError("[relay] on_error must be 'tempfail' or 'accept'")
    if relay.content_scan not in (True, False, "always", "when-relevant"):
        raise ConfigError("[relay] content_scan must be 'when-relevant', 'always' (or true) or false")
    for name in ("content_flagged_action", "content_first_contact_action"):
        if getattr(relay, name) not in ("allow", "warn", "hold", "reject"):
            raise ConfigError(f"[relay] {name} must be 'allow', 'warn', 'hold' or 'reject'")
    unknown = set(relay.content_high) - set(RELAY_CONTENT_CATEGORIES)
    if unknown:
        known = ", ".join(RELAY_CONTENT_CATEGORIES)
        raise ConfigError(f"[relay] content_high: unknown {', '.join(sorted(unknown))}; known: {known}")
    for name in ("next_hop_timeout", "command_timeout"):
        if not getattr(relay, name) > 0:
            raise ConfigError(f"[relay] {name} must be positive")
    for name in ("max_message_size", "max_recipients", "max_sessions", "content_max_bytes"):
        if getattr(relay, name) < 1:
            raise ConfigError(f"[relay] {name} must be at least 1")


_SINK_DURATION = re.compile(r"\d+(?:\.\d+)?\s*[smhdw]?")
_SINK_SAMPLE = {"recipient": "bob@army.ml", "intended_address": "bob@army.mil", "domain": "army.ml",
                "intended": "army.mil"}  # fmt: skip


def _validate_sink(sink: SinkConfig) -> None:
    """``[sink]`` checks: numbers, templates that render to one ASCII reply line."""
    if not 0.0 <= sink.min_score <= 1.0:
        raise ConfigError(f"[sink] min_score must be within 0..1, got {sink.min_score}")
    for name, keys in (
        ("reject_template", tuple(_SINK_SAMPLE)),
        ("neutral_template", ("recipient", "domain")),
    ):
        template = getattr(sink, name)
        try:
            text = template.format(**{k: _SINK_SAMPLE[k] for k in keys})
        except (KeyError, IndexError, ValueError) as exc:
            known = ", ".join("{" + k + "}" for k in keys)
            raise ConfigError(f"[sink] {name}: bad placeholder {exc} (known: {known})") from None
        if not text.isascii() or not text.isprintable() or len(text) > 400:
            raise ConfigError(f"[sink] {name} must be printable ASCII of at most 400 characters")
    if bool(sink.tls_cert) != bool(sink.tls_key):
        raise ConfigError("[sink] tls_cert and tls_key go together")
    if not _SINK_DURATION.fullmatch(sink.retention.strip().lower()):
        raise ConfigError(f"[sink] retention is not a duration: {sink.retention!r} (e.g. 400d, 12w)")
    for name in ("flush_interval", "command_timeout", "session_timeout"):
        if not getattr(sink, name) > 0:
            raise ConfigError(f"[sink] {name} must be positive")
    for name in (
        "max_sessions", "max_connections_per_network", "connections_per_minute_per_network",
        "rcpt_per_minute_per_network", "max_rcpt_per_session",
    ):  # fmt: skip
        if getattr(sink, name) < 1:
            raise ConfigError(f"[sink] {name} must be at least 1")
    if not 8 <= sink.ipv4_prefix <= 32 or not 16 <= sink.ipv6_prefix <= 128:
        raise ConfigError("[sink] ipv4_prefix must be 8..32 and ipv6_prefix 16..128")


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
