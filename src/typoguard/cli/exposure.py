"""``typoguard exposure`` and ``typoguard export``: which look-alikes can receive our mail, and block lists
for MTAs that do not run typoguard. Registered by ``typoguard.cli.app`` through ``COMMANDS``.

Exit codes as for ``typoguard check``: 0 fine, 1 something to act on (``exposure --watch``: a look-alike
newly accepts mail), 2 usage or configuration error (a protected domain that does not exist included);
and for the DNS (ADR 0019): 3 DNS unusable (nothing scanned or written), 4 incomplete (look-ups failed:
``exposure`` wrote its results with those names unknown; ``export --exposure`` refused such results).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from typoguard.cli.common import (
    EXIT_DNS_UNUSABLE,
    EXIT_FLAGGED,
    EXIT_INCOMPLETE,
    UsageFailure,
    guard_from_options,
    protect_options,
    replace_file,
)
from typoguard.errors import TypoguardError
from typoguard.exposure.model import Change, DnsAnswers, Exposure, Snapshot, Status

UNKNOWN_LABEL = "unknown / lookup failed"  # how the table shows Status.UNKNOWN: no answer is not "safe"


class DnsUnusableExit(click.ClickException):
    """``DNS unusable: <why>`` on stderr, exit 3."""

    exit_code = EXIT_DNS_UNUSABLE

    def __init__(self, why: str) -> None:
        super().__init__(f"DNS unusable: {why}")


class IncompleteExit(click.ClickException):
    """Results with failed look-ups where complete ones are needed: exit 4."""

    exit_code = EXIT_INCOMPLETE


JSON_FORMAT = "typoguard-exposure/1"


def _domains(guard: Any, names: Sequence[str]) -> list[Any]:
    """The DOMAIN arguments, or every protected domain."""
    from typoguard.core.names import normalise_domain

    if not names:
        return [normalise_domain(p.domain) for p in guard.index.protected]
    try:
        return [normalise_domain(n) for n in names]
    except TypoguardError as exc:
        raise UsageFailure(str(exc)) from None


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- exposure
@click.command()
@protect_options
@click.option(
    "--resolver",
    "resolvers",
    multiple=True,
    metavar="ADDRESS[:PORT]",
    help="DNS server to ask (repeatable; one port for all). Default: the system's resolv.conf.",
)
@click.option(
    "--timeout", type=click.FloatRange(min=0.01), default=2.0, show_default=True, help="Seconds per try."
)
@click.option(
    "--retries", type=click.IntRange(0, 10), default=2, show_default=True, help="Tries after a timeout."
)
@click.option("--concurrency", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N look-alikes per domain.")
@click.option("--json", "as_json", is_flag=True, help="JSON document (input of `export --exposure`).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, one row per look-alike.")
@click.option("--html", "as_html", is_flag=True, help="Self-contained HTML report (works offline).")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here, not stdout."
)
@click.option("--all", "show_all", is_flag=True, help="Table: list unregistered look-alikes too.")
@click.option("--watch", is_flag=True, help="Compare with the last run, report changes, keep this run.")
@click.option(
    "--history",
    type=click.Path(path_type=Path, dir_okay=False),
    help="History file for --watch [default: exposure-history.json in the store's data_dir].",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar [default: when stderr is a terminal]."
)
@click.argument("domains", nargs=-1)
def exposure(  # noqa: PLR0917 - click passes options as arguments
    config_path: Path | None,
    protect: tuple[str, ...],
    protect_files: tuple[Path, ...],
    resolvers: tuple[str, ...],
    timeout: float,
    retries: int,
    concurrency: int,
    min_score: float,
    limit: int | None,
    as_json: bool,
    as_csv: bool,
    as_html: bool,
    output: Path | None,
    show_all: bool,
    watch: bool,
    history: Path | None,
    progress: bool | None,
    domains: tuple[str, ...],
) -> None:
    """Which look-alikes of DOMAINs (default: the protected domains) exist and accept mail.

    Resolves every ranked look-alike (MX, A/AAAA, NS) and classifies it: accepts-mail, unknown (no answer),
    null-mx, no-mail, unregistered; groups those accepting mail by the provider receiving it.
    """
    from typoguard import resources
    from typoguard.exposure.classify import compare
    from typoguard.exposure.health import DnsUnusable
    from typoguard.exposure.history import History
    from typoguard.exposure.resolve import ResolverSettings, parse_resolver
    from typoguard.exposure.scan import candidates, scan

    if sum((as_json, as_csv, as_html)) > 1:
        raise UsageFailure("choose one of --json, --csv, --html")
    guard = guard_from_options(config_path, (*protect, *domains), protect_files)
    targets = _domains(guard, domains)
    try:
        parsed = [parse_resolver(r) for r in resolvers]
        ports = {p for _, p in parsed}
        if len(ports) > 1:
            raise UsageFailure("every --resolver must use the same port")
        settings = ResolverSettings(
            nameservers=tuple(a for a, _ in parsed),
            port=next(iter(ports)) or 53 if ports else 53,
            timeout=timeout,
            retries=retries,
            concurrency=concurrency,
        )
        store: History | None = None
        try:
            if watch:
                store = _history(guard.config, history)
                previous = store.last()
            elif history is not None:
                raise UsageFailure("--history needs --watch")
            todo = candidates(guard.index, targets, min_score=min_score, limit=limit)
            registrable = resources.model_context().suffixes.registrable
            show = sys.stderr.isatty() if progress is None else progress
            started = _now()
            try:
                results, queries = _run_with_progress(todo, settings, registrable, show, scan)
            except DnsUnusable as exc:
                raise DnsUnusableExit(str(exc)) from None
            snapshot = Snapshot(started, tuple(results))
            changes: list[Change] = []
            if store is not None:
                changes = compare(previous, snapshot)
                store.append(snapshot)
        finally:
            if store is not None:
                store.close()  # the store's connections (PostgreSQL: sessions on the server)
    except TypoguardError as exc:
        raise UsageFailure(str(exc)) from None
    _finish(
        results,
        changes,
        {"generated_at": started, "resolvers": list(resolvers) or ["system"], "queries": queries},
        (as_json, as_csv, as_html),
        output=output,
        show_all=show_all,
        watch=watch,
    )


def _history(config: Any, path: Path | None) -> Any:
    """--history FILE, or with the store enabled the store (importing the old JSON file once), else the
    JSON file in the data directory as before."""
    from typoguard.exposure.history import LEGACY_FILE, JsonFileHistory, StoreHistory

    legacy = Path(config.base_dir, config.store.data_dir, LEGACY_FILE)
    if path is not None or not config.store.enabled:
        return JsonFileHistory(path or legacy)
    from typoguard.store import open_store

    return StoreHistory(open_store(config), legacy, owned=True)


def _finish(
    results: list[Exposure],
    changes: list[Change],
    run: dict[str, Any],
    formats: tuple[bool, bool, bool],
    *,
    output: Path | None,
    show_all: bool,
    watch: bool,
) -> None:
    """Write the results, say how many look-ups failed, and exit with the code that tells it (ADR 0019)."""
    from typoguard.exposure.classify import failed_lookups

    as_json, as_csv, as_html = formats
    started = run["generated_at"]
    failed, distinct = failed_lookups(results)
    doc = {
        "format": JSON_FORMAT,
        **run,
        "complete": failed == 0,
        "lookups_failed": failed,
        "lookalikes": distinct,
        "results": results,
        "changes": changes,
    }
    text = (
        _as_json(doc)
        if as_json
        else _as_csv(results)
        if as_csv
        else _as_html(results, started, changes)
        if as_html
        else None
    )
    if text is not None:
        _emit(text, output)
    else:
        _table(results, changes, show_all, watch, output)
    if failed:
        click.echo(
            f"typoguard: incomplete: {failed} of {distinct} look-ups failed (no answer, SERVFAIL or "
            f"REFUSED): those look-alikes are reported as {UNKNOWN_LABEL!r}, not as safe; they may accept "
            "mail. Run again later or through another --resolver.",
            err=True,
        )
    if watch and any(c.newly_accepts_mail for c in changes):
        sys.exit(EXIT_FLAGGED)
    if failed:
        sys.exit(EXIT_INCOMPLETE)


def _run_with_progress(todo: Any, settings: Any, registrable: Any, show: bool, scan: Any) -> Any:
    distinct = len({c.lookalike for c in todo})
    if not show:
        return asyncio.run(scan(todo, settings, registrable))
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("resolving look-alikes"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=Console(stderr=True),  # stdout may carry --json/--csv
    ) as bar:
        task = bar.add_task("resolve", total=distinct)

        def advance(_answers: DnsAnswers) -> None:
            bar.advance(task)

        return asyncio.run(scan(todo, settings, registrable, advance))


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        replace_file(output, text)
    except OSError as exc:
        raise UsageFailure(f"cannot write {output}: {exc.strerror or exc}") from None


def _as_json(doc: dict[str, Any]) -> str:
    from typoguard.exposure.classify import count_by_status, group_by_provider

    results: list[Exposure] = doc["results"]
    changes: list[Change] = doc["changes"]
    body = {
        **doc,
        "summary": {s.value: n for s, n in count_by_status(results).items()},
        "providers": [
            {
                "provider": g.provider,
                "mail_hosts": list(g.mail_hosts),
                "protected": list(g.protected),
                "lookalikes": [e.lookalike for e in g.lookalikes],
            }
            for g in group_by_provider(results)
        ],
        "results": [r.to_dict() for r in results],
        "changes": [
            {
                "lookalike": c.lookalike,
                "protected": c.protected,
                "before": c.before.value if c.before else None,
                "after": c.after.value,
                "mail_hosts": list(c.mail_hosts),
            }
            for c in changes
        ],
    }
    return json.dumps(body, indent=1) + "\n"


def _as_csv(results: Sequence[Exposure]) -> str:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "protected",
            "lookalike",
            "kind",
            "score",
            "status",
            "provider",
            "mail_hosts",
            "addresses",
            "ns",
            "error",
        ]
    )
    for r in results:
        w.writerow(
            [
                r.protected,
                r.lookalike,
                r.kind,
                r.score,
                r.status.value,
                r.provider,
                " ".join(r.mail_hosts),
                " ".join(r.addresses),
                " ".join(r.ns),
                r.error,
            ]
        )
    return buf.getvalue()


def _as_html(results: Sequence[Exposure], started: str, changes: Sequence[Change]) -> str:
    from typoguard.exposure.report_html import render

    return render(results, title="typoguard: look-alike exposure", generated_at=started, changes=changes)


def _table(
    results: Sequence[Exposure], changes: Sequence[Change], show_all: bool, watch: bool, output: Path | None
) -> None:
    from rich.console import Console
    from rich.table import Table

    from typoguard.exposure.classify import count_by_status, group_by_provider

    fh = output.open("w", encoding="utf-8") if output else None
    try:
        console = Console(file=fh, width=200) if fh else Console()
        if fh is None and not console.is_terminal:
            console = Console(width=200)
        per: dict[str, dict[Status, int]] = {}
        for r in results:
            per.setdefault(r.protected, dict.fromkeys(Status, 0))[r.status] += 1
        summary = Table(title="look-alikes by status", header_style="bold")
        summary.add_column("protected")
        for s in Status:
            summary.add_column(s.value, justify="right")
        for domain, counts in per.items():
            summary.add_row(domain, *(str(counts[s]) for s in Status))
        total = count_by_status(results)
        summary.add_row("[bold]all[/]", *(f"[bold]{total[s]}[/]" for s in Status))
        console.print(summary)
        if watch:
            if changes:
                ch = Table(title="changed since the last run", header_style="bold")
                for col in ("look-alike", "of", "before", "now", "mail hosts"):
                    ch.add_column(col)
                for c in changes:
                    ch.add_row(
                        c.lookalike,
                        c.protected,
                        c.before.value if c.before else "not scanned",
                        c.after.value,
                        ", ".join(c.mail_hosts),
                    )
                console.print(ch)
            else:
                console.print("no change since the last run")
        groups = group_by_provider(results)
        if groups:
            gt = Table(
                title="who receives the mail (one provider behind many look-alikes is a finding)",
                header_style="bold",
            )
            for col in ("provider", "look-alikes", "imitating", "mail hosts"):
                gt.add_column(col, overflow="fold")
            for g in groups:
                gt.add_row(
                    g.provider, str(len(g.lookalikes)), ", ".join(g.protected), ", ".join(g.mail_hosts)
                )
            console.print(gt)
        rows = [r for r in results if show_all or r.status is not Status.UNREGISTERED]
        if rows:
            t = Table(title="look-alikes" if show_all else "registered look-alikes", header_style="bold")
            for col in ("look-alike", "of", "kind", "score", "status", "mail hosts", "note"):
                t.add_column(col, overflow="fold")
            for r in sorted(rows, key=lambda r: (r.status.rank, r.protected, -r.score, r.lookalike)):
                t.add_row(
                    r.lookalike,
                    r.protected,
                    r.kind,
                    f"{r.score:.2f}",
                    UNKNOWN_LABEL if r.status is Status.UNKNOWN else r.status.value,
                    ", ".join(r.mail_hosts),
                    r.error,
                )
            console.print(t)
    finally:
        if fh:
            fh.close()


# --------------------------------------------------------------------------- export
_ACTIONS = ("warn", "hold", "reject")
_REGISTERED = tuple(s.value for s in Status if s is not Status.UNREGISTERED)


@click.command()
@protect_options
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(
        [
            "postfix-access",
            "postfix-transport",
            "rspamd-multimap",
            "exchange-powershell",
            "list",
            "client-bundle",  # not a block list: the detector's data for mail clients (docs/clients.md)
        ]
    ),
)
@click.option(
    "--exposure",
    "exposure_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=False),
    help="Block the look-alikes of an `exposure --json` result instead of the index's.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in Status]),
    help="With --exposure: only look-alikes in this status (repeatable) [default: every registered one].",
)
@click.option(
    "--min-action",
    type=click.Choice(_ACTIONS),
    default="reject",
    show_default=True,
    help="Without --exposure: the mildest verdict of the policy a look-alike must get to be listed.",
)
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option(
    "--allow-incomplete",
    is_flag=True,
    help="With --exposure: write a list from results with failed look-ups, marked INCOMPLETE "
    "[default: refuse, exit 4].",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here, not stdout."
)
@click.argument("domains", nargs=-1)
def export(  # noqa: PLR0917 - click passes options as arguments
    config_path: Path | None,
    protect: tuple[str, ...],
    protect_files: tuple[Path, ...],
    fmt: str,
    exposure_file: Path | None,
    statuses: tuple[str, ...],
    min_action: str,
    min_score: float,
    allow_incomplete: bool,
    output: Path | None,
    domains: tuple[str, ...],
) -> None:
    """Write a block list of the look-alikes of DOMAINs (default: the protected domains) for another MTA.

    From the index (every look-alike the policy would at least --min-action), or from exposure results
    (--exposure FILE). See docs/export.md for where each format goes.
    """
    from typoguard.exposure.export import FORMATTERS, BlockEntry

    if fmt == "client-bundle":
        if exposure_file is not None or min_score:
            raise UsageFailure("--format client-bundle carries the whole index: no --exposure or --min-score")
        from typoguard.exposure.client_bundle import bundle_text

        _emit(bundle_text(guard_from_options(config_path, (*protect, *domains), protect_files)), output)
        return
    if statuses and exposure_file is None:
        raise UsageFailure("--status needs --exposure FILE")
    if allow_incomplete and exposure_file is None:
        raise UsageFailure("--allow-incomplete needs --exposure FILE")
    marker = ""
    if exposure_file is not None:
        wanted = set(statuses or _REGISTERED)
        only = {d.lower().rstrip(".") for d in domains}
        results, meta = _read_exposure(exposure_file)
        entries = [
            BlockEntry(r.lookalike, r.protected, r.kind, r.score)
            for r in results
            if r.status.value in wanted and r.score >= min_score and (not only or r.protected in only)
        ]
        marker = _incomplete(exposure_file, results, meta, wanted, allow_incomplete)
    else:
        from typoguard.core.verdict import Action
        from typoguard.exposure.scan import candidates

        guard = guard_from_options(config_path, (*protect, *domains), protect_files)
        floor = _ACTIONS.index(min_action)
        entries = []
        for c in candidates(guard.index, _domains(guard, domains), min_score=min_score):
            verdict = guard.check(c.lookalike)
            action = verdict.action
            if action in (Action.ALLOW, Action.INVALID) or _ACTIONS.index(action.value) < floor:
                continue
            entries.append(BlockEntry(c.lookalike, verdict.intended or c.protected, c.kind, c.score))
    text = FORMATTERS[fmt](entries)
    if marker and fmt == "list":  # one domain a line, nothing else: the marker cannot go in the file
        click.echo(f"typoguard: {marker}", err=True)
    elif marker:
        text = f"# {marker}\n{text}"
    _emit(text, output)


def _incomplete(
    path: Path, results: Sequence[Exposure], meta: dict[str, Any], wanted: set[str], allow: bool
) -> str:
    """The INCOMPLETE marker for results with failed look-ups ("" if none); refuses them unless ``allow``.

    Refusing writes nothing, so the block list in place (last run's complete one) stays in service.
    """
    from typoguard.exposure.classify import failed_lookups

    failed, distinct = failed_lookups(results)
    if not failed:
        return ""
    run = meta.get("generated_at") or "?"
    if not allow:
        raise IncompleteExit(
            f"exposure results {path} are incomplete: {failed} of {distinct} look-ups failed in the run "
            f"of {run} (status unknown); a block list from them would look complete but is not. Nothing "
            "written. Run `typoguard exposure` again, or pass --allow-incomplete to write the list marked "
            "INCOMPLETE."
        )
    listed = (
        "listed here (status unknown: they may accept mail)"
        if Status.UNKNOWN.value in wanted
        else "NOT listed (--status leaves unknown out)"
    )
    return (
        f"INCOMPLETE: {failed} of {distinct} look-ups failed in the exposure run of {run}; those "
        f"look-alikes are {listed}."
    )


def _read_exposure(path: Path) -> tuple[list[Exposure], dict[str, Any]]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageFailure(f"cannot read exposure results {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise UsageFailure(f"{path} is not the output of `typoguard exposure --json`")
    try:
        return [Exposure.from_dict(r) for r in doc["results"]], doc
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageFailure(f"exposure results {path} are damaged: {exc!r}") from None


COMMANDS: list[click.Command] = [exposure, export]
