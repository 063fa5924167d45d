"""``typoguard config check``: every problem of a config file at once, each with its ``file:line``;
``typoguard config show``: the effective configuration as TOML, each value with its source.

Registered by ``typoguard.cli.app`` through ``COMMANDS``. ``config check`` exits 0 when the file is fine,
1 when it found problems (all of them, one a line: ``file:line: message``), 2 when the file cannot be read or
the command is misused. A mistake in the file is not a usage error: it never gets a "Usage:" banner.

``typoguard.config_check`` checks what the config layer can judge (keys, types, values, protected domains,
paths, colliding addresses); the checks here need a role's own code, so they are made by that code: the
policy templates (policyd), internal senders, the log level, the store (reached, never migrated), the
relay's and sink's TLS, user and key files, held mail on Postfix, and last the policy service's and the
sink's own build, which must then succeed. Nothing is created or changed on disk.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import click

from typoguard import config_check
from typoguard.cli.common import EXIT_FLAGGED, EXIT_OK, EXIT_USAGE, config_option
from typoguard.config import Config, PolicyConfig, Problem, StoreConfig, load_config
from typoguard.config_check import Checked, directory_problem, file_problem, under_base
from typoguard.errors import ConfigError, TypoguardError


class Unusable(click.ClickException):
    """The file cannot be read, or (``show``) not loaded: ``Error: <message>``, exit 2, no usage banner."""

    exit_code = EXIT_USAGE


@click.group("config")
def config_group() -> None:
    """Check a config file before (re)loading it, or show the effective configuration."""


@config_group.command("check")
@config_option
def check(config_path: Path | None) -> None:
    """List every problem of the config at once (file:line: message), then a summary line.

    Run it as the service user after editing the file, before `systemctl reload`. Exit 0 no problems,
    1 problems found, 2 the file cannot be read.
    """
    try:
        checked = check_config(config_path)
    except ConfigError as exc:
        raise Unusable(str(exc)) from None
    found = checked.sorted_problems()
    out = sys.stdout
    for problem in found:
        out.write(f"{problem}\n")
    count = f"{len(found)} problem{'s' if len(found) != 1 else ''}" if found else "no problems"
    out.write(f"{checked.name}: {count}\n")
    out.flush()
    sys.exit(EXIT_FLAGGED if found else EXIT_OK)


@config_group.command("show")
@config_option
def show(config_path: Path | None) -> None:
    """Print the effective configuration (defaults < file < TYPOGUARD_* environment) as TOML, each value
    with its source: `# default`, `# file:LINE` or `# env TYPOGUARD_...`."""
    from typoguard.config_text import render_effective

    try:
        config = load_config(config_path)
        sources = config_check.read(config_path).sources()
    except ConfigError as exc:
        raise Unusable(f"{exc} (`typoguard config check` lists every problem)") from None
    sys.stdout.write(render_effective(config, sources))


def check_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Checked:
    """Every check of ``typoguard config check``; raises ``ConfigError`` only if ``path`` cannot be read."""
    checked = config_check.read(path, environ)
    if not checked.readable:
        return checked  # not TOML: nothing more can be said
    for step in (
        config_check.check_protect,
        config_check.check_addresses,
        _check_policy,
        _check_store,
        _check_relay,
        _check_sink,
        _check_http,
        _check_postfix,
        _check_builds,
    ):
        step(checked)
    return checked


def _used(checked: Checked, section: str) -> bool:
    """Whether the file (or the environment) has ``[section]``: its service's own files are checked then."""
    return section in checked.data or any(e.section == section for e in checked.env)


def _isolated(
    checked: Checked, section: str, key: str, items: Iterable[Any], build: Callable[[Any], object]
) -> None:
    """Run ``build`` for each item alone, so each mistake is found (the code raises at its first)."""
    for item in items:
        try:
            build(item)
        except TypoguardError as exc:
            message = str(exc)
            if not message.startswith(f"[{section}]"):
                message = f"[{section}] {key}: {message}"
            checked.add(Problem(section, (key,), message))


def _file(checked: Checked, section: str, key: str, path: Path, *, write: bool = False) -> bool:
    """``path`` (named by ``[section] key``) readable, or writable; a problem if not. True if fine."""
    problem = file_problem(path, f"[{section}] {key}", write=write)
    if problem:
        checked.add(Problem(section, (key,), problem))
    return problem is None


def _directory(checked: Checked, section: str, key: str, path: Path) -> None:
    problem = directory_problem(path, f"[{section}] {key}")
    if problem:
        checked.add(Problem(section, (key,), problem))


# --------------------------------------------------------------------------- the checks
def _with(settings: Any, key: str, value: Any) -> Any:
    """``settings`` (a section's dataclass) with ``key`` set to ``value``."""
    changes: dict[str, Any] = {key: value}
    return replace(settings, **changes)


def _check_policy(checked: Checked) -> None:
    """Internal senders and networks (each one), the policy service's templates, the log level and file."""
    from typoguard.decide import check_template
    from typoguard.obs import JsonLog
    from typoguard.senders import InternalSenders

    config = checked.config
    for key in ("internal_senders", "internal_networks"):

        def senders(item: str, key: str = key) -> object:
            return InternalSenders.from_config(_with(PolicyConfig(), key, (item,)))

        _isolated(checked, "policy", key, getattr(config.policy, key), senders)
    for key in ("reject_template", "hold_template"):
        template = getattr(config.policyd, key)
        _isolated(checked, "policyd", key, [template], partial(check_template, where=f"[policyd] {key}"))

    def log_level(level: str) -> None:
        with open(os.devnull, "wb") as nowhere:
            JsonLog(level=level, stream=nowhere).close()

    _isolated(checked, "log", "level", [config.log.level], log_level)
    if config.log.file:
        _file(checked, "log", "file", Path(config.log.file), write=True)  # as JsonLog opens it: from the cwd


_STORE_SETTINGS = (
    "batch_size",
    "queue_size",
    "flush_interval",
    "retry_interval",
    "refresh_interval",
    "retention",
)


def _check_store(checked: Checked) -> None:
    """``[store]``: its settings, its directories, and the database reached (not migrated)."""
    from typoguard.store.db import SQLITE_FILE
    from typoguard.store.store import resolve

    config = checked.config
    store = config.store
    _directory(checked, "store", "data_dir", under_base(config, store.data_dir))
    if not store.enabled:
        return
    for key in _STORE_SETTINGS:  # with a URL set, resolving does not create the SQLite directory

        def settings(value: Any, key: str = key) -> object:
            return resolve(_with(StoreConfig(url="sqlite://"), key, value))

        _isolated(checked, "store", key, [getattr(store, key)], settings)
    try:
        spool = resolve(replace(config, store=replace(store, url=store.url or "sqlite://"))).spool_dir
    except ConfigError:
        return  # reported above
    _directory(checked, "store", "spool_dir", spool)
    if store.url:
        _database(checked, "store", "url", store.url)
        return
    database = under_base(config, store.data_dir) / SQLITE_FILE
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            _file(checked, "store", "data_dir", path, write=True)


def _database(checked: Checked, section: str, key: str, url: str) -> None:
    """The database at ``url`` reached (PostgreSQL: connected; SQLite: its directory writable)."""
    from typoguard.store.db import make_engine, translated

    try:
        engine = make_engine(url)
    except ConfigError as exc:
        checked.add(Problem(section, (key,), str(exc).replace("[store] url", f"[{section}] {key}")))
        return
    try:
        if engine.dialect.name == "sqlite":
            if engine.url.database not in (None, "", ":memory:"):
                _directory(checked, section, key, Path(str(engine.url.database)).parent)
            return
        with (
            translated(f"[{section}] {key}: cannot connect to {engine.url.render_as_string()}"),
            engine.connect() as conn,
        ):
            conn.exec_driver_sql("SELECT 1")
    except TypoguardError as exc:
        checked.add(Problem(section, (key,), str(exc)))
    finally:
        engine.dispose()


def _tls(checked: Checked, section: str, cert: str, key: str) -> None:
    from typoguard.servers.smtp import server_tls_context

    if not (cert and key):
        return  # none, or one without the other (a problem already)
    base = Path(checked.config.base_dir)
    cert_path, key_path = base / cert, base / key
    cert_ok = _file(checked, section, "tls_cert", cert_path)
    if _file(checked, section, "tls_key", key_path) and cert_ok:
        _isolated(
            checked, section, "tls_cert", [None], lambda _: server_tls_context(section, cert_path, key_path)
        )


def _check_relay(checked: Checked) -> None:
    """``[relay]`` (when the file has it): quarantine directory, TLS files, AUTH users, the next hop's CA."""
    if not _used(checked, "relay"):
        return
    from typoguard.held.quarantine import next_hop_tls_context, quarantine_dir
    from typoguard.relay.auth import load_users

    config = checked.config
    relay = config.relay
    _directory(checked, "relay", "quarantine_dir", quarantine_dir(config))
    _tls(checked, "relay", relay.tls_cert, relay.tls_key)
    if relay.auth_users_file:
        users = under_base(config, relay.auth_users_file)
        if _file(checked, "relay", "auth_users_file", users):
            _isolated(checked, "relay", "auth_users_file", [users], load_users)
    if relay.next_hop_ca_file and _file(
        checked, "relay", "next_hop_ca_file", under_base(config, relay.next_hop_ca_file)
    ):
        _isolated(
            checked,
            "relay",
            "next_hop_ca_file",
            [relay],
            lambda r: next_hop_tls_context(r, Path(config.base_dir)),
        )


def _check_sink(checked: Checked) -> None:
    """``[sink]`` (when the file has it): TLS files, the sender-hash key, its own database."""
    if not _used(checked, "sink"):
        return
    from typoguard.sink.counts import SenderHasher

    config = checked.config
    sink = config.sink
    _tls(checked, "sink", sink.tls_cert, sink.tls_key)
    if sink.sender_hash_key_file:
        path = under_base(config, sink.sender_hash_key_file)
        if _file(checked, "sink", "sender_hash_key_file", path):
            _isolated(checked, "sink", "sender_hash_key_file", [path], SenderHasher.from_file)
    if sink.database:
        _database(checked, "sink", "database", sink.database)


def _check_http(checked: Checked) -> None:
    """``[http]`` (enabled, or in the file): the session key readable and long enough, or creatable."""
    config = checked.config
    if not (config.http.enabled or _used(checked, "http")):
        return
    from typoguard.web.auth import session_secret

    configured = config.http.session_secret_file
    path = under_base(config, configured or str(Path(config.store.data_dir, "http-session.key")))
    if not path.exists():  # created at the first start, in a directory that must be writable
        problem = directory_problem(path.parent, f"[http] session_secret_file {path}: directory")
        if problem:
            checked.add(Problem("http", ("session_secret_file",), problem))
    elif _file(checked, "http", "session_secret_file", path):
        _isolated(checked, "http", "session_secret_file", [config], session_secret)  # reads it, no more


def _check_postfix(checked: Checked) -> None:
    """Held mail on Postfix (the file has ``[postfix]``): postqueue and postsuper on PATH, and the
    instance's ``main.cf`` readable."""
    if not _used(checked, "postfix"):
        return
    from typoguard.held import postfix_config_directory

    for tool in ("postqueue", "postsuper"):
        if shutil.which(tool) is None:
            message = f"[postfix] {tool} not found on PATH: is Postfix installed? (needed for held mail)"
            checked.add(Problem("postfix", ("config_directory",), message))
    directory = postfix_config_directory(checked.config)
    problem = file_problem(Path(directory or "/etc/postfix", "main.cf"), "[postfix] config_directory:")
    if problem:
        if not checked.config.postfix.config_directory:
            problem += " ($MAIL_CONFIG)" if directory else " (Postfix's default instance)"
        checked.add(Problem("postfix", ("config_directory",), problem))


def _check_builds(checked: Checked) -> None:
    """Build the policy service's decider and (with ``[sink]``) the sink's answerer as they are built at
    start: with no problem found in their sections, this must succeed too."""
    from typoguard.policyd.decider import PolicyDecider

    config: Config = checked.config
    guard = None
    if not checked.has_problems("protect", "policy", "policyd"):
        try:
            guard = PolicyDecider.build(config).guard
        except TypoguardError as exc:
            checked.add_error(str(exc))
    _check_alerts(checked, guard)
    if _used(checked, "sink") and not checked.has_problems("protect", "sink"):
        from typoguard.sink.server import SinkServer

        try:
            SinkServer.build_answerer(config)
        except TypoguardError as exc:
            checked.add_error(str(exc))


def _check_alerts(checked: Checked, guard: Any) -> None:
    """Each ``[[alert]]``: a webhook's key file readable; no digest recipient a look-alike (the Guard's own
    verdict, as ``typoguard watch`` refuses it at start; ``guard`` None: the policy could not be built)."""
    from typoguard.watch.digest import lookalike_recipients

    for n, alert in enumerate(checked.config.alert, 1):
        where = f"[[alert]] #{n}"
        if alert.type == "webhook" and alert.secret_file:
            problem = file_problem(under_base(checked.config, alert.secret_file), f"{where} secret_file")
            if problem:
                checked.add(Problem("alert", ("secret_file",), problem, n))
        if alert.type == "email" and guard is not None:
            bad = lookalike_recipients(guard, alert.to)
            if bad:
                message = f"{where} to: {', '.join(bad)} look(s) like a protected domain: never sent there"
                checked.add(Problem("alert", ("to",), message, n))


COMMANDS: list[click.Command] = [config_group]
