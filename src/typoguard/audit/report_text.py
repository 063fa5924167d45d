"""The terminal summary: headline totals, then rich tables (repeat patterns, look-alike domains, senders,
weeks) and the bad-line figure. Long lists are cut to ``limit`` rows; --json/--csv give everything."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from typoguard.audit.aggregate import Summary, Tally
from typoguard.audit.model import SourceStats


def _when(t: Tally) -> tuple[str, str]:
    fmt = "%Y-%m-%d"
    return (t.first.strftime(fmt) if t.first else "?", t.last.strftime(fmt) if t.last else "?")


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold", justify="right" if col in _NUMERIC else "left")
    return table


_NUMERIC = {"mails", "leaked", "stopped", "pending", "senders", "domains", "score"}


def render(summary: Summary, stats: SourceStats, console: Console, limit: int = 15) -> None:
    t = summary.total
    console.print(
        f"[bold]{t.events}[/] mail(s) to look-alike domains: [bold red]{t.leaked} leaked[/]"
        f" (delivered or sent), [green]{t.stopped} stopped[/], {t.pending} still deferred."
    )
    if t.dropped:
        console.print(
            f"[bold yellow]{t.dropped} accepted and then discarded[/] (a discard transport or action): not"
            " delivered, but the sender was told it was sent and will not resend it."
        )
    if t.events:
        first, last = _when(t)
        console.print(
            f"From {first} to {last}; outcomes: "
            + ", ".join(f"{k} {v}" for k, v in sorted(t.outcomes.items()))
        )
    repeats = summary.repeats
    if repeats:
        table = _table(
            f"Repeat patterns ({len(repeats)}): the same sender keeps mailing the same look-alike"
            " (likely a saved contact)",
            "sender",
            "look-alike",
            "mails",
            "leaked",
            "recipients",
            "first",
            "last",
        )
        for (sender, domain), tally in repeats[:limit]:
            table.add_row(
                sender,
                domain,
                str(tally.events),
                str(tally.leaked),
                ", ".join(sorted(tally.others)[:3]),
                *_when(tally),
            )
        console.print(table)
    if summary.by_domain:
        table = _table(
            "Look-alike domains",
            "look-alike",
            "meant",
            "kind",
            "score",
            "mails",
            "leaked",
            "stopped",
            "senders",
            "first",
            "last",
        )
        for domain, tally in summary.top_domains(limit):
            intended, kind, score = summary.domain_info[domain]
            table.add_row(
                domain,
                intended,
                kind,
                f"{score:.2f}",
                str(tally.events),
                str(tally.leaked),
                str(tally.stopped),
                str(len(tally.others)),
                *_when(tally),
            )
        console.print(table)
        table = _table("Senders", "sender", "mails", "leaked", "stopped", "domains", "first", "last")
        for sender, tally in summary.top_senders(limit):
            table.add_row(
                sender,
                str(tally.events),
                str(tally.leaked),
                str(tally.stopped),
                str(len(tally.others)),
                *_when(tally),
            )
        console.print(table)
        table = _table("Per week", "week", "mails", "leaked", "stopped", "pending")
        for week, tally in summary.weeks()[-limit * 2 :]:
            table.add_row(week, str(tally.events), str(tally.leaked), str(tally.stopped), str(tally.pending))
        console.print(table)
    console.print(
        f"Read {stats.lines} line(s)/record(s), {stats.nbytes / 1e6:.1f} MB; bad lines: {stats.bad_lines}."
    )
    for example in stats.bad_examples:
        console.print(f"  bad line: {example}", markup=False, highlight=False)
    for error in stats.errors:
        console.print(f"[yellow]warning:[/] {error}", highlight=False)
