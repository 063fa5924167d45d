"""HTTP API commands: ``typoguard token create|list|revoke`` and ``typoguard http``.

Registered by ``typoguard.cli.app`` through ``COMMANDS``. Exit codes: 0 done, 1 the operation failed
(database down, nothing to revoke), 2 usage or configuration error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from typoguard.cli.common import OperationFailed, format_option, json_lines, read_config, reads_config, when


@contextlib.contextmanager
def _tokens(config_path: Path | None, *, signal_node: bool = False) -> Iterator[Any]:
    """The token table; with ``signal_node``, a revocation also tells this node's API processes (the
    counter in ``data_dir``) so that they stop accepting the token at once."""
    from typoguard.errors import ConfigError
    from typoguard.store import open_store
    from typoguard.store.tokens import Revocations, TokenStore

    config = read_config(config_path)
    store = open_store(config)
    revocations = None
    if signal_node:
        try:
            revocations = Revocations.for_config(config)
        except ConfigError as exc:
            click.echo(
                f"warning: {exc}; API processes on this node will stop accepting the token within 2 s",
                err=True,
            )
    try:
        yield TokenStore(store, revocations)
    finally:
        if revocations is not None:
            revocations.close()
        store.close()


@click.group()
def token() -> None:
    """API tokens for the HTTP API and the dashboard (scopes: check < read < admin)."""


@token.command()
@reads_config
@click.option("--scope", type=click.Choice(["check", "read", "admin"]), required=True)
@click.option("--name", required=True, help="Who or what uses it (recorded with every admin action).")
@click.option("--by", default=None, help="Who creates it (default: $USER).")
def create(config_path: Path | None, scope: str, name: str, by: str | None) -> None:
    """Create a token and print it once (only its hash is stored)."""
    who = by or os.environ.get("SUDO_USER") or os.environ.get("USER") or "unknown"
    with _tokens(config_path) as tokens:
        record, secret = tokens.create(name, scope, by=who)
    click.echo(secret)
    click.echo(f"token {record.id} ({record.name}, scope {record.scope}): shown once, store it now", err=True)


@token.command(name="list")
@reads_config
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
@format_option
def list_tokens(config_path: Path | None, include_revoked: bool, fmt: str) -> None:
    """List tokens (never their secrets)."""
    with _tokens(config_path) as tokens:
        rows = tokens.list(include_revoked=include_revoked)
    if fmt == "json":
        keys = ("id", "name", "scope", "created_by", "created_at", "revoked_at")
        json_lines({k: getattr(t, k) for k in keys} for t in rows)
        return
    for t in rows:
        revoked = f"  revoked {when(t.revoked_at)}" if t.revoked_at else ""
        click.echo(f"{t.id:>4}  {t.scope:<6} {t.name:<24} by {t.created_by} {when(t.created_at)}{revoked}")


@token.command()
@reads_config
@click.argument("token_id", type=int)
def revoke(config_path: Path | None, token_id: int) -> None:
    """Revoke token TOKEN_ID (see `typoguard token list`): at once on this node, its dashboard sessions
    too; other nodes sharing the database within 2 s."""
    with _tokens(config_path, signal_node=True) as tokens:
        if not tokens.revoke(token_id):
            raise OperationFailed(f"no active token with id {token_id}")
    click.echo(f"token {token_id} revoked")


@click.command()
@reads_config
@click.option("--listen", default=None, help="host:port (default: [http] listen, 127.0.0.1:8025).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes answering on the address (default: [http] workers, 1).",
)
@click.option("--supervised", is_flag=True, hidden=True, help="Started by typoguard serve: die with it.")
def http(config_path: Path | None, listen: str | None, workers: int | None, supervised: bool) -> None:
    """Run the HTTP API and dashboard on its own (`typoguard serve` starts it when [http] enabled).

    SIGTERM or SIGINT: stop after requests in flight; SIGHUP: reload the config file's protected
    domains, models and thresholds (every worker)."""
    from dataclasses import replace

    from typoguard.config import validate
    from typoguard.web.app import serve_http

    if supervised:
        from typoguard.web.serve import die_with_parent

        die_with_parent()
    config = read_config(config_path)
    if listen is not None:  # checked as [http] listen is
        config = validate(replace(config, http=replace(config.http, listen=listen)))
    sys.exit(serve_http(config, workers=workers))


COMMANDS: list[click.Command] = [token, http]
