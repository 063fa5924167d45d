"""``typoguard relay``: the SMTP filtering smart host; ``typoguard relay hash-password``: a users-file line.

Registered by ``typoguard.cli.app`` through ``COMMANDS``. Exit codes: 0 done, 1 cannot listen, 2 usage or
configuration error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from typoguard.cli.common import read_config, reads_config


@click.group(invoke_without_command=True)
@reads_config
@click.pass_context
def relay(ctx: click.Context, config_path: Path | None) -> None:
    """Run the relay: an SMTP smart host that refuses look-alike recipients and holds sensitive mail.

    `typoguard relay --config FILE` serves ([relay] listen -> [relay] next_hop); held mail is listed and
    released with `typoguard held`. See docs/relay.md for Exchange and Microsoft 365.
    """
    if ctx.invoked_subcommand is not None:
        return
    from typoguard.relay.server import serve_relay

    sys.exit(serve_relay(read_config(config_path), config_path=config_path))


@relay.command(name="hash-password")
@click.argument("user")
@click.password_option("--password", prompt="Password", help="Read from the terminal when not given.")
def hash_password_command(user: str, password: str) -> None:
    """Print a `[relay] auth_users_file` line for USER (scrypt)."""
    from typoguard.relay.server import hash_password

    if ":" in user or not user.strip():
        raise click.BadParameter("a user name must be non-empty and without ':'", param_hint="USER")
    click.echo(f"{user}:{hash_password(password)}")


COMMANDS: list[click.Command] = [relay]
