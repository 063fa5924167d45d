"""Store commands: ``typoguard db|allow|block|overrides|correspondents|decisions|held|learn``.

Registered by ``typoguard.cli.app`` through ``COMMANDS``. Exit codes follow the CLI's contract: 0 done, 1 the
operation failed (database down, Postfix tool failed, nothing matched), 2 usage or configuration error.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from typoguard.cli.common import (
    EXIT_FAILED,
    F,
    OperationFailed,
    UsageFailure,
    format_option,
    json_lines,
    read_config,
    reads_config,
    stdin_is_terminal,
    when,
)


def _by_option(f: F) -> F:
    return click.option("--by", "by", default=None, help="Who does this (default: $SUDO_USER or $USER).")(f)


def _who(by: str | None) -> str:
    if by:
        return by
    for var in ("SUDO_USER", "USER", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "unknown"


@contextlib.contextmanager
def _store(config_path: Path | None, *, existing: bool = False) -> Iterator[Any]:
    """The configured store. ``existing`` (the listings): a SQLite store that does not exist yet is an error
    naming its path, not a new empty database whose emptiness reads as "nothing was stored" (a typo in
    ``[store] data_dir``, or a config other than the service's)."""
    from typoguard.store import open_store

    config = read_config(config_path)
    if existing and not config.store.url:
        from typoguard.store.db import SQLITE_FILE

        data_dir = Path(config.store.data_dir)
        path = (data_dir if data_dir.is_absolute() else Path(config.base_dir) / data_dir) / SQLITE_FILE
        if not path.exists():
            raise OperationFailed(
                f"no store at {path}: nothing has been stored with this config yet (typoguard serve, relay"
                " or milter create it when they start); check [store] data_dir"
            )
    store = open_store(config)
    try:
        yield store
    finally:
        store.close()


# --------------------------------------------------------------------------- db
@click.group()
def db() -> None:
    """The store's database: schema upgrades and retention."""


@db.command()
@reads_config
def upgrade(config_path: Path | None) -> None:
    """Create or upgrade the schema (also done at every start)."""
    from typoguard.store import open_store

    store = open_store(read_config(config_path), upgrade=False)
    try:
        applied = store.upgrade()
        version = store.schema_version()
    finally:
        store.close()
    click.echo(
        f"schema version {version}"
        + (f" (applied {', '.join(map(str, applied))})" if applied else ", up to date")
    )


@db.command()
@reads_config
@click.option("--older-than", "older_than", default=None, help="Age, e.g. 180d (default: [store] retention).")
def prune(config_path: Path | None, older_than: str | None) -> None:
    """Delete decisions older than --older-than (e.g. 180d, 12h, 2w), and acknowledged watch events not
    seen since (open events are kept)."""
    from typoguard.store import parse_duration

    config = read_config(config_path)
    age = parse_duration(older_than or config.store.retention)
    with _store(config_path) as store:
        n = store.prune(age)
        acked = store.prune_events(age)
    click.echo(f"pruned {n} decisions older than {older_than or config.store.retention}")
    click.echo(f"pruned {acked} acknowledged events not seen for {older_than or config.store.retention}")


def _sqlite_file(config_path: Path | None, pg_line: Callable[[str], str], pg_why: str) -> Path:
    """The store's SQLite file. A PostgreSQL store: print ``pg_line(url)`` (the pg_dump/pg_restore command,
    without the password) and fail with ``pg_why``."""
    from typoguard.store.backup import sqlite_file
    from typoguard.store.store import resolve

    url = resolve(read_config(config_path)).url
    path = sqlite_file(url)
    if path is None:
        click.echo(pg_line(url))
        raise OperationFailed(f"{pg_why} (the password: from ~/.pgpass or PGPASSWORD)")
    return path


def _table_rows(tables: dict[str, int]) -> None:
    width = max(map(len, tables), default=0)
    for name, rows in tables.items():
        click.echo(f"  {name:<{width}}  {rows:>12,}")


@db.command(name="backup")
@reads_config
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def db_backup(config_path: Path | None, file: Path, force: bool) -> None:
    """Copy the SQLite store to FILE, consistent while the service runs (PostgreSQL: prints the pg_dump line).

    FILE is written complete or not at all (FILE.tmp, then renamed), readable by its owner only.
    """
    from typoguard.store.backup import backup, pg_dump_command

    db = _sqlite_file(
        config_path,
        lambda url: pg_dump_command(url, file),
        "the store is PostgreSQL: back it up with pg_dump, as printed",
    )
    started = time.monotonic()
    done = backup(db, file, force=force)
    click.echo(
        f"backed up {db} to {done.path} in {time.monotonic() - started:.2f} s:"
        f" {done.size:,} bytes, schema version {done.schema_version}"
    )
    _table_rows(done.tables)


@db.command(name="restore")
@reads_config
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def db_restore(config_path: Path | None, file: Path) -> None:
    """Replace the SQLite store by the backup FILE; only while the store is not in use (stop the service).

    The replaced database is kept as <database>.before-restore; an older backup is upgraded as
    `typoguard db upgrade` does. PostgreSQL: prints the pg_restore line.
    """
    from typoguard.store.backup import pg_restore_command, restore
    from typoguard.store.store import resolve

    db = _sqlite_file(
        config_path,
        lambda url: pg_restore_command(url, file),
        "the store is PostgreSQL: restore it with pg_restore, as printed, while no node runs",
    )
    done = restore(file, db)
    upgraded = f" (upgraded from {done.upgraded_from})" if done.upgraded_from is not None else ""
    click.echo(f"restored {file} into {db}: schema version {done.database.schema_version}{upgraded}")
    if done.previous is not None:
        click.echo(f"the database it replaced is kept as {done.previous}")
    _table_rows(done.database.tables)
    spool = resolve(read_config(config_path)).spool_dir
    waiting = [p for p in spool.glob("*") if p.is_file()] if spool.is_dir() else []
    if waiting:
        click.echo(
            f"note: {len(waiting)} files in {spool} hold decisions not yet stored; the service stores them"
            " into the restored database when it starts (delete them first if you do not want that)"
        )


# --------------------------------------------------------------------------- overrides
def _override_command(action: str) -> click.Command:
    verb = "Allow" if action == "allow" else "Block"

    @click.command(name=action)
    @reads_config
    @click.argument("domain")
    @click.option("--reason", required=True, help="Why (kept in the audit trail).")
    @click.option("--expires", default=None, help="Expire after e.g. 30d, 12h (default: never).")
    @_by_option
    def command(
        config_path: Path | None, domain: str, reason: str, expires: str | None, by: str | None
    ) -> None:
        from typoguard.store import parse_duration

        expires_in = parse_duration(expires) if expires else None
        with _store(config_path) as store:
            o = store.add_override(domain, action, reason=reason, by=_who(by), expires_in=expires_in)
        until = f" until {when(o.expires_at)}" if o.expires_at else ""
        click.echo(f"override #{o.id}: {action} {o.domain}{until} ({o.created_by}: {o.reason})")

    command.help = (
        f"{verb} DOMAIN (and its subdomains) on every node, with a reason; supersedes older overrides."
    )
    return command


allow = _override_command("allow")
block = _override_command("block")


@click.group()
def overrides() -> None:
    """List and remove overrides (add them with `typoguard allow|block`)."""


@overrides.command(name="list")
@reads_config
@click.option("--all", "include_inactive", is_flag=True, help="Include removed, superseded and expired ones.")
@format_option
def overrides_list(config_path: Path | None, include_inactive: bool, fmt: str) -> None:
    """Active overrides (with --all, the whole audit trail)."""
    from dataclasses import asdict

    with _store(config_path, existing=True) as store:
        rows = store.overrides(include_inactive=include_inactive)
    if fmt == "json":
        json_lines([asdict(o) for o in rows])
        return
    click.echo(f"{'ID':>5} {'ACTION':<6} {'DOMAIN':<30} {'BY':<12} {'CREATED':<20} {'EXPIRES':<20} REASON")
    for o in rows:
        line = (
            f"{o.id:>5} {o.action:<6} {o.domain:<30} {o.created_by:<12} {when(o.created_at):<20} "
            f"{when(o.expires_at):<20} {o.reason}"
        )
        if o.removed_at is not None:
            line += f"  [removed {when(o.removed_at)} by {o.removed_by}: {o.removed_reason}]"
        click.echo(line)


@overrides.command(name="remove")
@reads_config
@click.argument("target")
@click.option("--reason", default="removed", show_default=True)
@_by_option
def overrides_remove(config_path: Path | None, target: str, reason: str, by: str | None) -> None:
    """Remove the active override of TARGET (a domain, or #ID / ID). Kept in the audit trail."""
    with _store(config_path) as store:
        ident = target.lstrip("#")
        if ident.isdigit():
            n = store.remove_override(override_id=int(ident), by=_who(by), reason=reason)
        else:
            n = store.remove_override(domain=target, by=_who(by), reason=reason)
    if not n:
        raise OperationFailed(f"no active override for {target}")
    click.echo(f"removed {n} override{'s' if n != 1 else ''} for {target}")


# --------------------------------------------------------------------------- correspondents
@click.group()
def correspondents() -> None:
    """Who people here write to (learned from allowed mail and `typoguard learn`)."""


@correspondents.command(name="list")
@reads_config
@click.option("--confirmed", is_flag=True, help="Only admin-confirmed domains.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@format_option
def correspondents_list(config_path: Path | None, confirmed: bool, limit: int, fmt: str) -> None:
    """Recipient domains by how often they were written to."""
    from dataclasses import asdict

    with _store(config_path, existing=True) as store:
        rows = store.correspondents(confirmed_only=confirmed, limit=limit)
    if fmt == "json":
        json_lines([asdict(r) for r in rows])
        return
    click.echo(f"{'DOMAIN':<32} {'MAILS':>8} {'FIRST SEEN':<20} {'LAST SEEN':<20} CONFIRMED")
    for r in rows:
        conf = f"{r.confirmed_by} ({r.confirmed_reason})" if r.confirmed else "-"
        click.echo(f"{r.domain:<32} {r.count:>8} {when(r.first_seen):<20} {when(r.last_seen):<20} {conf}")


@correspondents.command(name="confirm")
@reads_config
@click.argument("domain")
@click.option("--reason", required=True)
@_by_option
def correspondents_confirm(config_path: Path | None, domain: str, reason: str, by: str | None) -> None:
    """Confirm DOMAIN as a real correspondent: once written to often enough, it is allowed (never a
    suffix typo of a protected domain)."""
    with _store(config_path) as store:
        store.confirm_correspondent(domain, by=_who(by), reason=reason)
    click.echo(f"confirmed {domain}")


@correspondents.command(name="unconfirm")
@reads_config
@click.argument("domain")
def correspondents_unconfirm(config_path: Path | None, domain: str) -> None:
    """Withdraw the confirmation of DOMAIN."""
    with _store(config_path) as store:
        if not store.unconfirm_correspondent(domain):
            raise OperationFailed(f"{domain} is not a confirmed correspondent")
    click.echo(f"unconfirmed {domain}")


# --------------------------------------------------------------------------- decisions
@click.command()
@reads_config
@click.option("--domain", default=None)
@click.option("--recipient", default=None)
@click.option("--sender", default=None)
@click.option("--action", default=None, type=click.Choice(["allow", "warn", "hold", "reject", "invalid"]))
@click.option("--node", default=None)
@click.option("--queue-id", "queue_id", default=None)
@click.option("--since", default=None, help="Only the last e.g. 24h, 7d.")
@click.option("--before-seq", type=int, default=None, help="Page: decisions older than this seq.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@format_option
def decisions(  # noqa: PLR0917 - click passes options positionally
    config_path: Path | None,
    domain: str | None,
    recipient: str | None,
    sender: str | None,
    action: str | None,
    node: str | None,
    queue_id: str | None,
    since: str | None,
    before_seq: int | None,
    limit: int,
    fmt: str,
) -> None:
    """The decision log, newest first."""
    from dataclasses import asdict

    from typoguard.store import DecisionQuery, parse_duration

    q = DecisionQuery(
        since=time.time() - parse_duration(since) if since else None,
        domain=domain,
        recipient=recipient,
        sender=sender,
        action=action,
        node=node,
        queue_id=queue_id,
        before_seq=before_seq,
        limit=limit,
    )
    with _store(config_path, existing=True) as store:
        rows = store.decisions(q)
    if fmt == "json":
        json_lines([{"seq": r.seq, "event_id": r.event_id, **asdict(r.event)} for r in rows])
        return
    click.echo(f"{'SEQ':>8} {'TIME':<20} {'ACTION':<7} {'RECIPIENT':<36} {'INTENDED':<20} {'SCORE':>5} NODE")
    for r in rows:
        e = r.event
        click.echo(
            f"{r.seq:>8} {when(e.time):<20} {e.action:<7} {e.recipient:<36} {e.intended or '-':<20} "
            f"{e.score:>5.2f} {e.node}"
        )


# --------------------------------------------------------------------------- held mail
def _queue(postfix_config: str | None, config_path: Path | None = None) -> Any:
    """Postfix's hold queue and ``typoguard relay``'s quarantine ([relay] quarantine_dir) as one."""
    from typoguard.held import HoldQueues, PostfixQueue

    config = read_config(config_path)
    return HoldQueues.from_config(config, PostfixQueue.from_config(config, config_dir=postfix_config))


def _postfix_option(f: F) -> F:
    return click.option(
        "--postfix-config",
        "postfix_config",
        default=None,
        help="Postfix config directory (postqueue -c); default: [postfix] config_directory, $MAIL_CONFIG.",
    )(f)


@click.group()
def held() -> None:
    """Held mail (Postfix's hold queue, typoguard relay's quarantine) with the decision that held it."""


@held.command(name="list")
@reads_config
@_postfix_option
@format_option
def held_list(config_path: Path | None, postfix_config: str | None, fmt: str) -> None:
    """Held messages."""
    from typoguard.held import held_with_decisions

    queue = _queue(postfix_config, config_path)
    with _store(config_path) as store:
        items = held_with_decisions(store, queue)
    for warning in queue.warnings:
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        json_lines([_held_json(h) for h in items])
        return
    click.echo(f"{'QUEUE ID':<16} {'ARRIVED':<20} {'SENDER':<30} {'RECIPIENTS':<36} WHY")
    for h in items:
        m, d = h.message, h.decision
        why = f"{d.event.recipient}: {d.event.action} ({d.event.intended}, {d.event.kind})" if d else "-"
        click.echo(
            f"{m.queue_id:<16} {when(m.arrival_time):<20} {m.sender:<30} {', '.join(m.recipients):<36} {why}"
        )


def _held_json(h: Any) -> dict[str, Any]:
    from dataclasses import asdict

    out = asdict(h.message)
    out["decision"] = (
        {"seq": h.decision.seq, "event_id": h.decision.event_id, **asdict(h.decision.event)}
        if h.decision
        else None
    )
    return out


@held.command(name="show")
@reads_config
@_postfix_option
@click.argument("queue_id")
def held_show(config_path: Path | None, postfix_config: str | None, queue_id: str) -> None:
    """One held message, its decision and what admins did with it (JSON)."""
    from dataclasses import asdict

    from typoguard.held import held_with_decisions

    queue = _queue(postfix_config, config_path)
    with _store(config_path) as store:
        items = [h for h in held_with_decisions(store, queue) if h.message.queue_id == queue_id]
        actions = store.held_actions(queue_id)
    if not items:
        raise OperationFailed(f"no held message with queue id {queue_id}")
    out = _held_json(items[0])
    if queue.quarantine.owns(queue_id):  # the relay's sidecar: client, reasons, content categories/counts
        out["relay"] = queue.quarantine.show(queue_id)
    out["actions"] = [asdict(a) for a in actions]
    click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())


def _held_action(action: str) -> click.Command:
    @click.command(name=action)
    @reads_config
    @_postfix_option
    @click.argument("queue_ids", nargs=-1, required=True)
    @click.option("--reason", default="", help="Kept with the record of who did it.")
    @_by_option
    def command(
        config_path: Path | None,
        postfix_config: str | None,
        queue_ids: tuple[str, ...],
        reason: str,
        by: str | None,
    ) -> None:
        queue = _queue(postfix_config, config_path)
        with _store(config_path) as store:
            for qid in queue_ids:
                released = getattr(queue, action)(qid)
                store.record_held_action(qid, action, by=_who(by), reason=reason)
                click.echo(
                    f"released {qid}, {released.outcome()}" if action == "release" else f"deleted {qid}"
                )

    command.help = (
        "Release held QUEUE_IDs for delivery now (postsuper -H, then postqueue -i; relay-held TG... ids are"
        " re-injected to [relay] next_hop); says where each is after the attempt; recorded with who and when."
        if action == "release"
        else "Delete held QUEUE_IDs (postsuper -d, or from the relay's quarantine); recorded with who, when."
    )
    return command


held.add_command(_held_action("release"))
held.add_command(_held_action("delete"))


# --------------------------------------------------------------------------- learn
@click.command()
@reads_config
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def learn(config_path: Path | None, files: tuple[Path, ...]) -> None:
    """Learn correspondents from Postfix logs (plain or compressed: gzip, bzip2, xz, zstd; journalctl -o json
    exports and docker compose logs too); only delivered mail counts. '-' reads standard
    input (journalctl -u 'postfix*' | typoguard learn -).

    Suffix typos of protected domains (army.ml for army.mil) are never learned.
    """
    from typoguard.audit.learn import learn_files
    from typoguard.audit.sources import STDIN

    if STDIN in files and stdin_is_terminal():
        raise UsageFailure(
            "'-' reads the log from standard input, which is a terminal: pipe it in"
            " (journalctl -u 'postfix*' | typoguard learn -)"
        )
    from typoguard.core.verdict import is_suffix_typo
    from typoguard.guard import Guard

    config = read_config(config_path)
    guard = Guard.from_config(config)

    def suffix_typo(recipient: str) -> bool:
        return is_suffix_typo(guard.check(recipient).kind)

    with _store(config_path) as store:
        report = learn_files(files, is_suffix_typo=suffix_typo, flush=store.record_sightings)
    click.echo(
        f"read {report.lines} lines from {report.files} files: {report.delivered} delivered, "
        f"{report.learned} learned, {report.skipped_suffix_typo} suffix typos never learned"
    )
    for err in report.errors:
        click.echo(f"error: {err}", err=True)
    if report.errors:
        sys.exit(EXIT_FAILED)


COMMANDS: list[click.Command] = [db, allow, block, overrides, correspondents, decisions, held, learn]
