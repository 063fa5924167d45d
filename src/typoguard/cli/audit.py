"""``typoguard audit``: find the mail that already went to look-alike domains, from logs and mailboxes.

Exit codes follow ``typoguard check``: 0 no mail to look-alikes found, 1 some found, 2 usage or
configuration error (including: no input could be read at all).
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from typoguard.audit.sources import STDIN, Format
from typoguard.cli.common import (
    EXIT_FLAGGED,
    EXIT_OK,
    EXIT_USAGE,
    UsageFailure,
    discard_stdout,
    exit_now,
    guard_from_options,
    protect_options,
    replace_file,
    stdin_is_terminal,
)

if TYPE_CHECKING:
    from rich.console import Console

    from typoguard.audit.aggregate import Summary
    from typoguard.audit.runner import AuditResult
    from typoguard.guard import Guard


@click.command()
@protect_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in Format]),
    default=Format.AUTO.value,
    show_default=True,
    help="Input format of every INPUT; auto detects it per file. In a journal export (journalctl -o json)"
    " or docker compose logs, which are recognised either way, it is the format of the log inside.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Write one JSON document (summary and events) to stdout."
)
@click.option("--csv", "as_csv", is_flag=True, help="Write the events as CSV to stdout.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Also write a self-contained HTML report with charts to FILE.",
)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Worker processes [default: CPUs].")
@click.option(
    "--repeat-min",
    type=click.IntRange(min=2),
    default=3,
    show_default=True,
    help="Mails from one sender to one look-alike that make a repeat pattern.",
)
@click.option(
    "--top", type=click.IntRange(min=1), default=15, show_default=True, help="Rows per terminal table."
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar [default: when stderr is a terminal]."
)
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
def audit(  # noqa: PLR0917 - click passes options positionally
    config_path: Path | None,
    protect: tuple[str, ...],
    protect_files: tuple[Path, ...],
    fmt: str,
    as_json: bool,
    as_csv: bool,
    html_path: Path | None,
    jobs: int | None,
    repeat_min: int,
    top: int,
    progress: bool | None,
    inputs: tuple[Path, ...],
) -> None:
    """Find mail sent to look-alikes of protected domains in INPUTs: Postfix, Exim or Sendmail logs (plain or
    compressed, rotated sets), Microsoft 365 message-trace CSV, Exchange tracking logs, mbox, Maildir or
    .eml files, or directories of them. '-' reads standard input (journalctl -u 'postfix*' | typoguard
    audit -).

    Reports what was delivered (leaked) and what was stopped, per look-alike domain, sender and week, and
    flags senders who keep mailing the same look-alike. Bad lines are counted, never fatal.
    Exit 0 if nothing was found, 1 if mail to look-alikes was found, 2 on usage errors.
    """
    from rich.console import Console

    from typoguard.audit.aggregate import summarise

    if not inputs:
        raise UsageFailure("give the logs or mailboxes to audit")
    if as_json and as_csv:
        raise UsageFailure("--json and --csv cannot be combined (both write to standard output)")
    missing = [str(p) for p in inputs if p != STDIN and not p.exists()]
    if missing:
        raise UsageFailure(f"no such file or directory: {', '.join(missing)}")
    if STDIN in inputs and stdin_is_terminal():
        raise UsageFailure(
            "'-' reads the log from standard input, which is a terminal: pipe it in"
            " (journalctl -u 'postfix*' | typoguard audit -)"
        )
    # A one-shot command that builds hundreds of thousands of objects and drops none until it ends: the
    # cycle collector would walk the growing heap again and again (~15% of a 200 MB log's run) to find no
    # garbage (lines, events and records hold no cycles). Reference counting still frees what is dropped.
    with _no_cycle_collection():
        guard = guard_from_options(config_path, protect, protect_files)

        err = Console(stderr=True)
        show_progress = err.is_terminal if progress is None else progress
        result = _run(list(inputs), guard, Format(fmt), jobs, err if show_progress else None)
        if not result.inputs:
            raise UsageFailure("no input could be read: " + "; ".join(result.stats.errors))
        summary = summarise(result.events, repeat_min=repeat_min)
        if html_path is not None:
            from typoguard.audit import report_html

            page = report_html.render(result.events, summary, result.stats, result.inputs)
            try:
                replace_file(html_path, page)
            except OSError as exc:
                raise UsageFailure(f"cannot write {html_path}: {exc.strerror or exc}") from None

        try:
            _write_report(result, summary, as_json=as_json, as_csv=as_csv, top=top)
        except BrokenPipeError:  # the reader stopped reading (`| head`): end as other tools do
            discard_stdout()
            exit_now(EXIT_READER_GONE)
        except OSError as exc:
            discard_stdout()
            raise ReportUnwritable(
                f"cannot write the report to standard output: {exc.strerror or exc}"
            ) from None
        if as_json or as_csv:
            for error in result.stats.errors:
                err.print(f"[yellow]warning:[/] {error}", highlight=False, soft_wrap=True)
            if result.stats.bad_lines:
                err.print(f"bad lines: {result.stats.bad_lines}", highlight=False)
        exit_now(EXIT_FLAGGED if result.events else EXIT_OK)


EXIT_READER_GONE = 141  # standard output closed by its reader: the status of a shell tool killed by SIGPIPE


class ReportUnwritable(click.ClickException):
    """The report could not be written (a full disk): ``Error: <message>``, exit 2, as an unwritable
    ``--html`` file."""

    exit_code = EXIT_USAGE


def _write_report(result: AuditResult, summary: Summary, *, as_json: bool, as_csv: bool, top: int) -> None:
    """The report on standard output (JSON, CSV or the text summary), flushed."""
    if as_json or as_csv:
        from typoguard.audit import report_data
    if as_json:
        report_data.write_document(
            result.events, summary, result.stats, result.inputs, result.formats, out=sys.stdout.buffer
        )
    elif as_csv:
        report_data.write_csv(result.events, summary, sys.stdout)
    else:
        from rich.console import Console

        from typoguard.audit import report_text

        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
        report_text.render(summary, result.stats, console, limit=top)
    sys.stdout.flush()


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cycle collector off for the block, as it was after (the command also runs inside test runners)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _run(
    inputs: list[Path], guard: Guard, fmt: Format, jobs: int | None, console: Console | None
) -> AuditResult:
    """The audit, with a progress bar (bytes of input done) on ``console`` when given."""
    from typoguard.audit.runner import audit as run_audit

    if console is None:
        return run_audit(inputs, guard, fmt=fmt, jobs=jobs)
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(
        "[progress.description]{task.description}", *columns, console=console, transient=True
    ) as bar:
        task = bar.add_task("auditing", total=None)
        return run_audit(
            inputs,
            guard,
            fmt=fmt,
            jobs=jobs,
            on_plan=lambda total: bar.update(task, total=total),
            on_progress=lambda done: bar.advance(task, done),
        )


COMMANDS: list[click.Command] = [audit]
