"""``typoguard sink``: run the MX for look-alike domains; ``typoguard sink report``: what it refused.

Registered by ``typoguard.cli.app`` through ``COMMANDS``. Exit codes: 0 done, 1 the operation failed (cannot
listen, database down, webhook failed), 2 usage or configuration error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from typoguard.cli.common import OperationFailed, read_config, reads_config


@click.group(invoke_without_command=True)
@reads_config
@click.pass_context
def sink(ctx: click.Context, config_path: Path | None) -> None:
    """Run the sink: an MX for look-alike domains that refuses every recipient with a hint.

    `typoguard sink --config FILE` serves ([sink] listen); `typoguard sink report` shows what it refused.
    """
    if ctx.invoked_subcommand is not None:
        return
    from typoguard.sink.server import serve_sink

    sys.exit(serve_sink(read_config(config_path), config_path=config_path))


@sink.command()
@reads_config
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True
)
@click.option(
    "--days", type=click.IntRange(1, 3660), default=30, show_default=True, help="Days back from today."
)
@click.option("--until", "until", default=None, metavar="YYYY-MM-DD", help="Last day (default: today, UTC).")
@click.option(
    "--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write here, not stdout."
)
@click.option("--webhook", default=None, metavar="URL", help="Also POST the JSON digest to this URL.")
@click.option(
    "--surge-factor", type=float, default=5.0, show_default=True, help="Day count vs trailing median."
)
@click.option("--surge-min", type=int, default=20, show_default=True, help="Fewest attempts a surge needs.")
def report(  # noqa: PLR0917 - click passes options positionally
    config_path: Path | None,
    fmt: str,
    days: int,
    until: str | None,
    output: Path | None,
    webhook: str | None,
    surge_factor: float,
    surge_min: int,
) -> None:
    """Misdirected attempts per day, per look-alike and per sending domain, and sudden surges."""
    import typoguard.sink.report as sink_report
    from typoguard.sink.counts import CountStore

    config = read_config(config_path)
    store = CountStore.open(config)
    try:
        data = sink_report.build(
            store, days=days, until=until, surge_factor=surge_factor, surge_min=surge_min
        )
    finally:
        store.close()
    text = sink_report.render(data, fmt)
    if output is not None:
        output.write_text(text, "utf-8")
    else:
        sys.stdout.write(text)
    if webhook is not None:
        try:
            status = sink_report.post_webhook(webhook, data)
        except OSError as exc:
            raise OperationFailed(f"webhook {webhook}: {exc}") from None
        click.echo(f"webhook {webhook}: HTTP {status}", err=True)


COMMANDS: list[click.Command] = [sink]
