"""``typoguard <command>``: the command-line face.

Exit codes are a contract other tools script against: 0 all allowed, 1 something flagged or invalid,
2 usage or configuration error (``common.py``).
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import click
import orjson

from typoguard.cli.common import (
    CONFIG_FILE,
    EXIT_FLAGGED,
    EXIT_OK,
    UsageFailure,
    format_option,
    guard_from_options,
    protect_options,
    read_config,
)
from typoguard.config import Config
from typoguard.core.names import printable as _printable  # safe to print or encode
from typoguard.core.verdict import Action, Assessment, Verdict
from typoguard.errors import TypoguardError

# Commands of other areas live in their own modules (each with a ``COMMANDS`` list) and are imported only
# when used, so ``typoguard check`` does not pay for the store, audit or DNS code at start-up.
LAZY_COMMANDS: dict[str, str] = {
    "db": "typoguard.cli.store",
    "allow": "typoguard.cli.store",
    "block": "typoguard.cli.store",
    "overrides": "typoguard.cli.store",
    "correspondents": "typoguard.cli.store",
    "decisions": "typoguard.cli.store",
    "held": "typoguard.cli.store",
    "learn": "typoguard.cli.store",
    "audit": "typoguard.cli.audit",
    "exposure": "typoguard.cli.exposure",
    "export": "typoguard.cli.exposure",
    "token": "typoguard.cli.web",
    "http": "typoguard.cli.web",
    "relay": "typoguard.cli.relay",
    "sink": "typoguard.cli.sink",
    "milter": "typoguard.cli.milter",
    "config": "typoguard.cli.config",
    "watch": "typoguard.cli.watch",
}


def _module_exists(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = {name for name, module in LAZY_COMMANDS.items() if _module_exists(module)}
        return sorted(set(super().list_commands(ctx)) | lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        module_name = LAZY_COMMANDS.get(cmd_name)
        if command is not None or module_name is None or not _module_exists(module_name):
            return command
        import importlib

        module = importlib.import_module(module_name)
        return {c.name: c for c in module.COMMANDS}.get(cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="typoguard")
def main() -> None:
    """typoguard: stop mail to look-alike domains (army.ml for army.mil) before it leaves."""


# --------------------------------------------------------------------------- check
@main.command()
@protect_options
@format_option
@click.argument("recipients", nargs=-1)
def check(
    config_path: Path | None,
    protect: tuple[str, ...],
    protect_files: tuple[Path, ...],
    fmt: str,
    recipients: tuple[str, ...],
) -> None:
    """Check RECIPIENTs (addresses or bare domains); '-' reads them from stdin, one per line.

    Exit 0 if all are allowed, 1 if any is flagged or invalid, 2 on usage errors.
    """
    if not recipients:
        raise UsageFailure("give recipients to check, or - to read them from standard input")
    if "-" in recipients and len(recipients) > 1:
        raise UsageFailure("'-' (standard input) cannot be combined with recipients on the command line")
    if recipients == ("-",) and sys.stdin is None:  # started with it closed (<&-): fd 0 may be another file
        raise UsageFailure("'-' reads standard input, and standard input is closed")
    guard = guard_from_options(config_path, protect, protect_files)
    guard.detector.for_batch()
    check_one = guard.check
    if recipients != ("-",):
        verdicts = [check_one(r) for r in recipients]
        flagged = _write_json([verdicts], sys.stdout.buffer) if fmt == "json" else _write_text_table(verdicts)
        sys.exit(EXIT_FLAGGED if flagged else EXIT_OK)
    batches = ([check_one(r) for r in batch] for batch in _stdin_batches())
    if fmt == "json":
        flagged = _write_json(batches, sys.stdout.buffer)
    else:
        flagged = _write_text_stream(batches, sys.stdout)
    sys.exit(EXIT_FLAGGED if flagged else EXIT_OK)


MAX_LINE_BYTES = 64 * 1024  # of a recipient line on standard input; the rest of a longer line is skipped


def _stdin_batches() -> Iterator[list[str]]:
    """Lines from standard input, in batches of what is available now.

    Reading whatever the pipe holds (not a fixed-size buffer) lets a tool that writes one address and waits
    get its answer at once, while a bulk pipe is still processed thousands of lines per system call. A line
    is kept up to ``MAX_LINE_BYTES`` (an address is at most 254 octets): the rest of a longer one is read
    and dropped, so a line of gigabytes costs neither memory nor time, and is one invalid recipient.
    """
    fd = sys.stdin.fileno()
    pending = b""
    skipping = False  # in the rest of an over-long line
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            chunk, skipping = chunk[end + 1 :], False
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if len(pending) > MAX_LINE_BYTES:
            lines.append(pending[:MAX_LINE_BYTES])
            pending, skipping = b"", True
        yield [_line_text(raw) for raw in lines]
    if pending:
        yield [_line_text(pending)]


def _line_text(raw: bytes) -> str:
    return raw[:MAX_LINE_BYTES].rstrip(b"\r").decode("utf-8", "surrogateescape").strip()


def _write_json(batches: Iterable[list[Verdict]], out: IO[bytes]) -> bool:
    """One JSON object per verdict, flushed per batch; all but the recipient encoded once per assessment."""
    tails: dict[int, tuple[Assessment, bytes]] = {}
    flagged = False
    for batch in batches:
        flagged = _write_json_batch(batch, out, tails) or flagged
        out.flush()
    return flagged


def _write_json_batch(
    verdicts: list[Verdict], out: IO[bytes], tails: dict[int, tuple[Assessment, bytes]]
) -> bool:
    flagged = False
    chunk: list[bytes] = []
    for v in verdicts:
        a = v.assessment
        entry = tails.get(id(a))
        if entry is None or entry[0] is not a:
            body = v.to_dict()
            del body["recipient"]
            entry = (a, b"," + orjson.dumps(body)[1:] + b"\n")
            if len(tails) > 1 << 16:
                tails.clear()
            tails[id(a)] = entry
        if a.action is not Action.ALLOW:
            flagged = True
        try:
            rcpt = orjson.dumps(v.recipient)
        except orjson.JSONEncodeError:
            rcpt = orjson.dumps(_printable(v.recipient))
        chunk.append(b'{"recipient":' + rcpt + entry[1])
    out.write(b"".join(chunk))
    return flagged


_STYLE = {
    Action.ALLOW: "green",
    Action.WARN: "yellow",
    Action.HOLD: "magenta",
    Action.REJECT: "bold red",
    Action.INVALID: "red",
}


def _write_text_table(verdicts: list[Verdict]) -> bool:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for col in ("recipient", "action", "did you mean", "kind", "score", "why"):
        table.add_column(col, overflow="fold")
    for v in verdicts:
        table.add_row(
            _printable(v.recipient),
            f"[{_STYLE[v.action]}]{v.action.value}[/]",
            v.intended or "",
            v.kind or "",
            f"{v.score:.2f}" if v.intended else "",
            v.reason,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    return any(v.flagged for v in verdicts)


def _write_text_stream(batches: Iterable[list[Verdict]], out: IO[str]) -> bool:
    flagged = False
    out.write(f"{'ACTION':<8} {'RECIPIENT':<40} {'DID YOU MEAN':<24} {'SCORE':>5}  WHY\n")
    for batch in batches:
        for v in batch:
            flagged = flagged or v.flagged
            score = f"{v.score:.2f}" if v.intended else ""
            out.write(
                f"{v.action.value:<8} {_printable(v.recipient):<40} {v.intended or '-':<24} {score:>5}  "
                f"{_printable(v.reason)}\n"
            )
        out.flush()
    return flagged


# --------------------------------------------------------------------------- variants
@main.command()
@click.option(
    "--format", "fmt", type=click.Choice(["list", "json", "csv"]), default="list", show_default=True
)
@click.option("--model", "models", multiple=True, metavar="NAME", help="Only these typo models (repeatable).")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N variants per domain.")
@click.argument("domains", nargs=-1, required=True)
def variants(
    fmt: str, models: tuple[str, ...], min_score: float, limit: int | None, domains: tuple[str, ...]
) -> None:
    """List the look-alikes of DOMAINs with kind and score, best first (for feeding other tools)."""
    from typoguard.config import ProtectConfig
    from typoguard.core.names import normalise_domain
    from typoguard.guard import Guard

    try:
        parsed = [normalise_domain(d) for d in domains]
        config = Config(protect=ProtectConfig(domains=tuple(d.ascii for d in parsed), models=models or None))
        index = Guard.from_config(config).index  # the same index `check` builds, so scores agree
    except TypoguardError as exc:
        raise UsageFailure(str(exc)) from None
    out = sys.stdout
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(["domain", "variant", "unicode", "kind", "score"])
    for d in parsed:
        n = 0
        for name, kind, score in index.variants_of(d):
            if score < min_score or index.is_protected(name):
                continue
            uname = _unicode_of(name)
            if fmt == "list":
                out.write(name + "\n")
            elif fmt == "json":
                out.write(
                    orjson.dumps(
                        {"domain": d.ascii, "variant": name, "unicode": uname, "kind": kind, "score": score}
                    ).decode()
                    + "\n"
                )
            elif writer:
                writer.writerow([d.ascii, name, uname, kind, score])
            n += 1
            if limit is not None and n >= limit:
                break
    out.flush()


def _unicode_of(name: str) -> str:
    if "xn--" not in name:
        return name
    import idna

    try:
        return str(idna.decode(name))
    except idna.IDNAError:
        return name


# --------------------------------------------------------------------------- serve
@main.command()
@click.option("--config", "config_path", type=CONFIG_FILE, required=True)
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(["policyd", "http"]),
    help="Run only these services (default: every service the config enables).",
)
def serve(config_path: Path, only: tuple[str, ...]) -> None:
    """Run the services the config enables until SIGTERM: the Postfix policy service (with the decision
    store's writer, overrides and history when [store] is enabled) and the HTTP API ([http] enabled)."""
    from typoguard.policyd.serve import run

    sys.exit(run(read_config(config_path), config_path=config_path, only=only))


if __name__ == "__main__":  # pragma: no cover
    main()
