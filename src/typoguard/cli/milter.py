"""``typoguard milter``: the milter for Sendmail, Postfix and other milter MTAs (docs/milter.md).

Registered by ``typoguard.cli.app`` through ``COMMANDS``. Exit codes: 0 done, 1 cannot listen, 2 usage or
configuration error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from typoguard.cli.common import read_config, reads_config


@click.command()
@reads_config
def milter(config_path: Path | None) -> None:
    """Run the milter on [milter] listen (default 127.0.0.1:10045).

    Sendmail: INPUT_MAIL_FILTER(`typoguard', `S=inet:10045@127.0.0.1, F=T'); Postfix: smtpd_milters and
    non_smtpd_milters = inet:127.0.0.1:10045. See docs/milter.md.
    """
    from typoguard.milter.server import serve_milter

    sys.exit(serve_milter(read_config(config_path), config_path=config_path))


COMMANDS: list[click.Command] = [milter]
